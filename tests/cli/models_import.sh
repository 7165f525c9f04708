#!/usr/bin/env bash
# moesim models import as a user runs it: HuggingFace config.json files of the
# five conventions (tests/data/hf) become catalog entries a scenario can use;
# bad input is one line and exit 2, and never leaves or spoils an output file.
# Usage: models_import.sh MOESIM SOURCE_DIR
set -u
moesim=$1
src=$2
hf=$src/tests/data/hf
source "$(dirname "$0")/lib.sh"

# Each fixture imports; the entry's totals are the catalog entry's.
for pair in mixtral-8x7b:mixtral-8x7b qwen3-30b-a3b:qwen3-30b-a3b deepseek-v3:deepseek-v3 \
  kimi-k2:kimi-k2 gpt-oss-120b:gpt-oss-120b llama-4-maverick:llama-4-maverick; do
  file=${pair%%:*} preset=${pair##*:}
  expect 0 - "$moesim" models import "$hf/$file.config.json" -o "$tmp/$file.json" --name "$file"
  grep -q "convention" "$tmp/out" || { echo "FAIL: $file: no summary line"; fail=1; }
  expect 0 - "$moesim" models show "$preset" --json
  cp "$tmp/out" "$tmp/preset.json"
  python3 - "$tmp/$file.json" "$tmp/preset.json" "$file" <<'PY' || fail=1
import json, sys
entry, preset, name = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
for key in ("layers", "hidden", "attention", "routed_experts", "top_k", "expert_ffn", "vocab"):
    if entry[key] != preset[key]:
        print(f"FAIL: {name}: {key} {entry[key]} != catalog {preset[key]}")
        sys.exit(1)
assert entry["name"] == name and "sources" in entry, name
PY
done

# The imported entry runs as a scenario's model: the Mixtral example with the
# imported Mixtral gives the same step time as with the catalog's preset.
python3 - "$src/examples/mixtral-8x7b-h100-16gpu.json" "$tmp/mixtral-8x7b.json" "$tmp/s.json" <<'PY'
import json, sys
scenario = json.load(open(sys.argv[1]))
scenario["model"] = json.load(open(sys.argv[2]))
json.dump(scenario, open(sys.argv[3], "w"))
PY
expect 0 - "$moesim" run "$src/examples/mixtral-8x7b-h100-16gpu.json" --json
python3 -c "import json; print(json.load(open('$tmp/out'))['step_time_s'])" >"$tmp/preset_step"
expect 0 - "$moesim" run "$tmp/s.json" --json
python3 -c "import json; print(json.load(open('$tmp/out'))['step_time_s'])" >"$tmp/import_step"
grep -Eq '^[0-9.]+(e-?[0-9]+)?$' "$tmp/preset_step" || { echo "FAIL: no step time"; fail=1; }
cmp -s "$tmp/preset_step" "$tmp/import_step" ||
  { echo "FAIL: imported Mixtral steps in $(cat "$tmp/import_step") s, preset in $(cat "$tmp/preset_step") s"; fail=1; }

# Without -o the entry goes to stdout.
expect 0 - "$moesim" models import "$hf/gpt-oss-120b.original.config.json"
[ "$(json 'd["routed_experts"], d["top_k"], d["attention"]["window"]["full_every"]')" = "128 4 2" ] ||
  { echo "FAIL: original gpt-oss format"; fail=1; }

# Errors: one line naming the field, exit 2, no file left, an old file kept.
python3 - "$hf/mixtral-8x7b.config.json" "$tmp/nolayers.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
del config["num_hidden_layers"]
json.dump(config, open(sys.argv[2], "w"))
PY
expect 2 "nolayers.json: num_hidden_layers: required (Mixtral convention)" \
  "$moesim" models import "$tmp/nolayers.json" -o "$tmp/x.json"
[ -e "$tmp/x.json" ] && { echo "FAIL: failed import left a file"; fail=1; }
echo keep >"$tmp/old.json"
expect 2 "required (Mixtral convention)" "$moesim" models import "$tmp/nolayers.json" -o "$tmp/old.json"
[ "$(cat "$tmp/old.json")" = keep ] || { echo "FAIL: failed import replaced the old file"; fail=1; }
echo '{"model_type": "llama", "num_hidden_layers": 32}' >"$tmp/dense.json"
expect 2 "model_type: 'llama' is not an MoE convention" "$moesim" models import "$tmp/dense.json"
echo '{"model_type": "mixtral",' >"$tmp/broken.json"
expect 2 "broken.json" "$moesim" models import "$tmp/broken.json"
expect 2 "no-such.json" "$moesim" models import "$tmp/no-such.json"
expect 2 "missing config.json" "$moesim" models import
expect 2 "no-dir" "$moesim" models import "$hf/qwen3-30b-a3b.config.json" -o "$tmp/no-dir/q.json"
expect 2 "go with models import" "$moesim" models show mixtral-8x7b --name x
expect 0 - "$moesim" models --help
grep -q "models import config.json" "$tmp/out" || { echo "FAIL: import missing from --help"; fail=1; }
[ $fail = 0 ] && echo "models import cli: all checks passed"
exit $fail
