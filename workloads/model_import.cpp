#include "workloads/model_import.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace moesim::workloads {
namespace {

// One object of a config.json, read with the convention's error messages:
// "<source>: <prefix><key>: required (<convention> convention)". A JSON null
// counts as absent, as transformers treats it.
class HfFields {
 public:
  HfFields(const Json& object, std::string source, std::string prefix, std::string convention)
      : object_(object),
        source_(std::move(source)),
        prefix_(std::move(prefix)),
        convention_(std::move(convention)) {}

  const std::string& convention() const { return convention_; }
  const std::string& source() const { return source_; }
  std::string field(std::string_view key) const { return join_path(prefix_, key); }
  std::string path(std::string_view key) const { return source_ + ": " + field(key); }
  [[noreturn]] void fail(std::string_view key, const std::string& message) const {
    throw_config_error(path(key), message);
  }

  const Json* find(std::string_view key) const {
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const Json& require(std::string_view key) const {
    const Json* v = find(key);
    if (v == nullptr) fail(key, fmt::format("required ({} convention)", convention_));
    return *v;
  }
  // The first of `keys` present (alternative names of one field).
  std::string_view require_one_of(std::initializer_list<std::string_view> keys) const {
    for (std::string_view k : keys) {
      if (has(k)) return k;
    }
    std::string names;
    for (std::string_view k : keys) names += (names.empty() ? "" : " or ") + field(k);
    throw_config_error(source_ + ": " + names,
                       fmt::format("required ({} convention)", convention_));
  }
  int64_t integer(std::string_view key, int64_t min, int64_t max) const {
    return expect_integer(require(key), path(key), min, max);
  }
  int64_t integer_or(std::string_view key, int64_t fallback, int64_t min, int64_t max) const {
    return has(key) ? integer(key, min, max) : fallback;
  }
  bool boolean_or(std::string_view key, bool fallback) const {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(key, "expected true or false, got " + describe_json(*v));
    return v->get<bool>();
  }
  std::string string_or(std::string_view key, std::string fallback) const {
    const Json* v = find(key);
    return v == nullptr ? fallback : expect_string(*v, path(key));
  }
  const Json& array(std::string_view key) const {
    const Json& v = require(key);
    if (!v.is_array()) fail(key, "expected an array, got " + describe_json(v));
    return v;
  }

 private:
  const Json& object_;
  std::string source_, prefix_, convention_;
};

// Limits as the catalog's (workloads/model_config.cpp).
constexpr int64_t kMaxLayers = 10000, kMaxWidth = int64_t{1} << 24, kMaxHeads = 1 << 16;

std::string list_layers(const std::vector<bool>& set) {
  std::string out;
  int listed = 0;
  for (size_t l = 0; l < set.size(); ++l) {
    if (!set[l]) continue;
    if (listed == 8) return out + ", ...";
    out += (listed++ == 0 ? "" : ", ") + std::to_string(l);
  }
  return out.empty() ? "none" : out;
}

// Layer l is in the set iff l >= k and (l - k) % n == n - 1 (the catalog's
// moe_layers convention). Returns {k, n}, or {-1, -1} when no pair fits.
std::pair<int, int> first_k_then_every(const std::vector<bool>& set) {
  const int layers = static_cast<int>(set.size());
  std::vector<int> members;
  for (int l = 0; l < layers; ++l) {
    if (set[l]) members.push_back(l);
  }
  if (members.empty()) return {-1, -1};
  const auto fits = [&](int k, int n) {
    for (int l = 0; l < layers; ++l) {
      if (set[l] != (l >= k && (l - k) % n == n - 1)) return false;
    }
    return true;
  };
  const int first = members[0];
  if (members.size() >= 2) {
    const int n = members[1] - first;
    return first - (n - 1) >= 0 && fits(first - (n - 1), n) ? std::pair{first - (n - 1), n}
                                                            : std::pair{-1, -1};
  }
  // One member: the next one (first + n) must fall past the last layer.
  for (int n = std::max(1, layers - first); n <= first + 1; ++n) {
    if (fits(first - (n - 1), n)) return {first - (n - 1), n};
  }
  return {-1, -1};
}

void set_moe_layers(const std::vector<bool>& moe, const HfFields& f, std::string_view key,
                    MoeModelConfig& m) {
  const auto [first_k, every] = first_k_then_every(moe);
  if (every < 0) {
    if (std::none_of(moe.begin(), moe.end(), [](bool b) { return b; })) {
      f.fail(key, "no layer is MoE: not a Mixture-of-Experts model");
    }
    f.fail(key, fmt::format("MoE layers {} are not the first k layers dense and then the last "
                            "of each n; moesim cannot express this placement",
                            list_layers(moe)));
  }
  m.first_k_dense = first_k;
  m.moe_every = every;
}

// `windowed`: the layers attending through the window; the others attend to
// the whole context and must be the last of each n (layers n-1, 2n-1, ...).
void set_window(const std::vector<bool>& windowed, AttentionWindow kind, int64_t tokens,
                const HfFields& f, std::string_view key, MoeModelConfig& m) {
  if (std::none_of(windowed.begin(), windowed.end(), [](bool b) { return b; })) return;
  const auto first_full = std::find(windowed.begin(), windowed.end(), false);
  int full_every = 0;
  if (first_full != windowed.end()) {
    full_every = static_cast<int>(first_full - windowed.begin()) + 1;
    bool fits = full_every >= 2;
    for (size_t l = 0; fits && l < windowed.size(); ++l) {
      fits = windowed[l] != (static_cast<int>(l) % full_every == full_every - 1);
    }
    if (!fits) {
      std::vector<bool> full(windowed.size());
      for (size_t l = 0; l < windowed.size(); ++l) full[l] = !windowed[l];
      f.fail(key, fmt::format("full-attention layers {} are not the last of each n layers; "
                              "moesim cannot express this attention pattern",
                              list_layers(full)));
    }
  }
  m.window = kind;
  m.window_tokens = tokens;
  m.window_full_every = full_every;
}

// Fields every convention shares (the Llama layout of attention).
void read_common(const HfFields& f, bool head_dim_required, MoeModelConfig& m) {
  m.layers = static_cast<int>(f.integer("num_hidden_layers", 1, kMaxLayers));
  m.hidden = f.integer("hidden_size", 1, 1 << 20);
  m.heads = static_cast<int>(f.integer("num_attention_heads", 1, kMaxHeads));
  m.kv_heads = static_cast<int>(f.integer_or("num_key_value_heads", m.heads, 1, m.heads));
  if (m.heads % m.kv_heads != 0) {
    f.fail("num_key_value_heads",
           fmt::format("{} must divide num_attention_heads ({})", m.kv_heads, m.heads));
  }
  if (head_dim_required || f.has("head_dim")) {
    m.head_dim = f.integer("head_dim", 1, kMaxHeads);
  } else if (m.hidden % m.heads == 0) {
    m.head_dim = m.hidden / m.heads;
  } else {
    f.fail("head_dim", fmt::format("required: hidden_size ({}) is not a multiple of "
                                   "num_attention_heads ({})",
                                   m.hidden, m.heads));
  }
  m.attention = m.kv_heads == m.heads ? AttentionKind::kMha : AttentionKind::kGqa;
  m.vocab = f.integer("vocab_size", 1, kMaxWidth);
  m.tied_embeddings = f.boolean_or("tie_word_embeddings", false);
  m.activation = Activation::kSwiGlu;
}

void read_experts(const HfFields& f, std::string_view experts_key, std::string_view top_k_key,
                  MoeModelConfig& m) {
  m.routed_experts = static_cast<int>(f.integer(experts_key, 1, kMaxRoutedExperts));
  m.top_k = static_cast<int>(f.integer(top_k_key, 1, kMaxTopK));
  if (m.top_k > m.routed_experts) {
    f.fail(top_k_key,
           fmt::format("{} exceeds {} ({})", m.top_k, f.field(experts_key), m.routed_experts));
  }
}

// The dense FFN width: required when some layer is dense, else the expert's
// (unused; the catalog's all-MoE entries carry one).
void read_dense_ffn(const HfFields& f, std::string_view key, MoeModelConfig& m) {
  const bool needed = m.moe_layer_count() < m.layers;
  m.dense_ffn = needed || f.has(key) ? f.integer(key, 1, kMaxWidth) : m.expert_ffn;
}

std::string read_dtype(const HfFields& f) {
  const std::string key = f.has("torch_dtype") ? "torch_dtype" : "dtype";
  const std::string name = f.string_or(key, "bfloat16");
  if (name == "bfloat16") return "bf16";
  if (name == "float16") return "fp16";
  if (name == "float32") return "fp32";
  f.fail(key, "'" + name + "' is not one of bfloat16, float16, float32");
}

// A "layer_types" list: true for the layers of type `windowed`, false for
// "full_attention"; any other entry is an error.
std::vector<bool> read_layer_types(const HfFields& f, int layers, const std::string& windowed) {
  const Json& types = f.array("layer_types");
  if (types.size() != static_cast<size_t>(layers)) {
    f.fail("layer_types", fmt::format("{} entries for {} layers", types.size(), layers));
  }
  std::vector<bool> out(types.size());
  for (size_t l = 0; l < types.size(); ++l) {
    const std::string t = expect_string(types[l], join_path(f.path("layer_types"), l));
    if (t != windowed && t != "full_attention") {
      f.fail(join_path("layer_types", l), "'" + t + "' is not " + windowed + " or full_attention");
    }
    out[l] = t == windowed;
  }
  return out;
}

std::vector<bool> all_layers(int layers) {
  return std::vector<bool>(static_cast<size_t>(layers), true);
}

void read_mixtral(const HfFields& f, MoeModelConfig& m, Json& notes) {
  read_common(f, false, m);
  read_experts(f, "num_local_experts", "num_experts_per_tok", m);
  m.expert_ffn = f.integer("intermediate_size", 1, kMaxWidth);
  m.dense_ffn = m.expert_ffn;
  set_moe_layers(all_layers(m.layers), f, "num_local_experts", m);
  if (f.has("sliding_window")) {
    set_window(all_layers(m.layers), AttentionWindow::kSliding,
               f.integer("sliding_window", 1, int64_t{1} << 40), f, "sliding_window", m);
  }
  notes["layers"] = "every layer MoE (Mixtral)";
}

void read_qwen_moe(const HfFields& f, const std::string& model_type, MoeModelConfig& m,
                   Json& notes) {
  // Qwen3 sets head_dim apart from hidden / heads (30B-A3B: 128, not 64).
  read_common(f, model_type == "qwen3_moe", m);
  read_experts(f, "num_experts", "num_experts_per_tok", m);
  m.expert_ffn = f.integer("moe_intermediate_size", 1, kMaxWidth);
  const int64_t step = f.integer_or("decoder_sparse_step", 1, 1, m.layers);
  std::vector<bool> moe(static_cast<size_t>(m.layers));
  for (int l = 0; l < m.layers; ++l) moe[l] = (l + 1) % step == 0;
  if (f.has("mlp_only_layers")) {
    const Json& dense = f.array("mlp_only_layers");
    for (size_t i = 0; i < dense.size(); ++i) {
      moe[expect_integer(dense[i], join_path(f.path("mlp_only_layers"), i), 0, m.layers - 1)] =
          false;
    }
  }
  set_moe_layers(moe, f, f.has("mlp_only_layers") ? "mlp_only_layers" : "decoder_sparse_step", m);
  read_dense_ffn(f, "intermediate_size", m);
  const int64_t shared = f.integer_or("shared_expert_intermediate_size", 0, 0, kMaxWidth);
  m.shared_experts = shared > 0 ? 1 : 0;
  m.shared_expert_ffn = shared > 0 ? shared : m.expert_ffn;
  if (f.boolean_or("use_sliding_window", false)) {
    f.fail("use_sliding_window",
           "true is not supported (Qwen applies the window from layer "
           "max_window_layers on, which moesim cannot express)");
  }
  notes["layers"] =
      "MoE iff layer not in mlp_only_layers and (layer + 1) % decoder_sparse_step == 0";
  if (shared > 0) notes["shared_expert_gate"] = "the shared expert's sigmoid gate (hidden x 1)";
}

void read_deepseek(const HfFields& f, const std::string& model_type, MoeModelConfig& m,
                   Json& notes) {
  read_common(f, false, m);
  read_experts(f, "n_routed_experts", "num_experts_per_tok", m);
  m.attention = AttentionKind::kMla;
  m.kv_heads = m.heads;
  m.head_dim = 0;
  m.q_lora_rank = f.integer_or("q_lora_rank", 0, 0, 1 << 20);
  m.kv_lora_rank = f.integer("kv_lora_rank", 1, 1 << 20);
  m.qk_nope_head_dim = f.integer("qk_nope_head_dim", 1, kMaxHeads);
  m.qk_rope_head_dim = f.integer("qk_rope_head_dim", 0, kMaxHeads);
  m.v_head_dim = f.integer("v_head_dim", 1, kMaxHeads);
  m.expert_ffn = f.integer("moe_intermediate_size", 1, kMaxWidth);
  m.shared_experts = static_cast<int>(f.integer("n_shared_experts", 0, 1024));
  m.shared_expert_ffn = m.expert_ffn;
  const int64_t first_dense = f.integer("first_k_dense_replace", 0, m.layers);
  const int64_t freq = f.integer_or("moe_layer_freq", 1, 1, m.layers);
  std::vector<bool> moe(static_cast<size_t>(m.layers));
  for (int l = 0; l < m.layers; ++l) moe[l] = l >= first_dense && l % freq == 0;
  set_moe_layers(moe, f, "first_k_dense_replace", m);
  read_dense_ffn(f, "intermediate_size", m);
  // Group-limited routing: the groups matter only to the group-based methods.
  const std::string method = f.string_or("topk_method", "greedy");
  if (method == "noaux_tc" || method == "group_limited_greedy") {
    m.router_groups = static_cast<int>(f.integer("n_group", 1, m.routed_experts));
    m.router_topk_groups = static_cast<int>(f.integer("topk_group", 1, m.router_groups));
    if (m.routed_experts % m.router_groups != 0) {
      f.fail("n_group", fmt::format("{} must divide n_routed_experts ({})", m.router_groups,
                                    m.routed_experts));
    }
  }
  // DeepSeek-V2 scores with a softmax; V3 and Kimi K2 default to a sigmoid.
  const std::string scoring = model_type == "deepseek_v2" ? f.string_or("scoring_func", "softmax")
                                                          : expect_string(f.require("scoring_func"),
                                                                          f.path("scoring_func"));
  if (scoring != "softmax" && scoring != "sigmoid") {
    f.fail("scoring_func", "'" + scoring + "' is not softmax or sigmoid");
  }
  m.router_scoring = scoring;
  notes["layers"] = "MoE iff layer >= first_k_dense_replace and layer % moe_layer_freq == 0";
  m.mtp_layers = static_cast<int>(f.integer_or("num_nextn_predict_layers", 0, 0, kMaxMtpLayers));
  if (m.mtp_layers > 0) {
    notes["mtp"] =
        "num_nextn_predict_layers: multi-token-prediction modules, trained with the model "
        "(not served: they only draft tokens for speculative decoding)";
  }
  notes["routing"] = fmt::format("topk_method {}; routed_scaling_factor not modelled", method);
}

void read_gpt_oss(const HfFields& f, MoeModelConfig& m, Json& notes) {
  read_common(f, true, m);
  read_experts(f, f.require_one_of({"num_local_experts", "num_experts"}),
               f.require_one_of({"num_experts_per_tok", "experts_per_token"}), m);
  m.expert_ffn = f.integer("intermediate_size", 1, kMaxWidth);
  m.dense_ffn = m.expert_ffn;
  set_moe_layers(all_layers(m.layers), f, "num_local_experts", m);
  if (f.has("sliding_window")) {
    const int64_t window = f.integer("sliding_window", 1, int64_t{1} << 40);
    // Without layer_types, sliding on even layers (OpenAI's model.py:
    // sliding_window if layer_idx % 2 == 0; transformers' GptOssConfig default).
    std::vector<bool> sliding(static_cast<size_t>(m.layers));
    for (int l = 0; l < m.layers; ++l) sliding[l] = l % 2 == 0;
    if (f.has("layer_types")) sliding = read_layer_types(f, m.layers, "sliding_attention");
    set_window(sliding, AttentionWindow::kSliding, window, f,
               f.has("layer_types") ? "layer_types" : "sliding_window", m);
  }
  if (const Json* q = f.find("quantization_config");
      q != nullptr && q->is_object() && q->value("quant_method", "") == "mxfp4") {
    // MXFP4: 4-bit E2M1 values, one 8-bit E8M0 scale per 32 (OCP MX v1.0).
    m.expert_weight_bits = 4.25;
    notes["expert_weight_bits"] = "quantization_config mxfp4: 4 bits + an 8-bit scale per 32";
  }
  notes["ignored"] = "attention sinks, q/k/v/o, expert and router biases, SwiGLU clamp";
}

void read_llama4(const HfFields& f, MoeModelConfig& m, Json& notes) {
  read_common(f, false, m);
  read_experts(f, "num_local_experts", "num_experts_per_tok", m);
  m.expert_ffn = f.integer("intermediate_size", 1, kMaxWidth);
  m.shared_experts = 1;  // Llama4TextMoe always adds one shared expert
  m.shared_expert_ffn = m.expert_ffn;
  m.router_scoring = "sigmoid";
  std::vector<bool> moe(static_cast<size_t>(m.layers), false);
  if (f.has("moe_layers")) {
    const Json& list = f.array("moe_layers");
    for (size_t i = 0; i < list.size(); ++i) {
      moe[expect_integer(list[i], join_path(f.path("moe_layers"), i), 0, m.layers - 1)] = true;
    }
  } else {
    const int64_t step = f.integer_or("interleave_moe_layer_step", 1, 1, m.layers);
    for (int64_t l = step - 1; l < m.layers; l += step) moe[l] = true;  // transformers' rule
  }
  set_moe_layers(moe, f, f.has("moe_layers") ? "moe_layers" : "interleave_moe_layer_step", m);
  read_dense_ffn(f, "intermediate_size_mlp", m);
  // Chunked attention on the RoPE layers, full attention on the NoPE ones
  // (transformers configuration_llama4.py: layer_types from no_rope_layers,
  // itself from no_rope_layer_interval when absent or empty).
  const int64_t chunk = f.integer_or("attention_chunk_size", 8192, 1, int64_t{1} << 40);
  std::vector<bool> chunked(static_cast<size_t>(m.layers));
  std::string_view key = "no_rope_layer_interval";
  if (f.has("layer_types")) {
    key = "layer_types";
    chunked = read_layer_types(f, m.layers, "chunked_attention");
  } else if (f.has("no_rope_layers") && !f.array("no_rope_layers").empty()) {
    key = "no_rope_layers";  // 1 = RoPE (chunked), 0 = NoPE (full)
    const Json& rope = f.array(key);
    if (rope.size() < static_cast<size_t>(m.layers)) {
      f.fail(key, fmt::format("{} entries for {} layers", rope.size(), m.layers));
    }
    for (size_t l = 0; l < chunked.size(); ++l) {
      chunked[l] = expect_integer(rope[l], join_path(f.path(key), l), 0, 1) == 1;
    }
  } else {
    const int64_t interval = f.integer_or(key, 4, 1, kMaxLayers);
    for (int l = 0; l < m.layers; ++l) chunked[l] = (l + 1) % interval != 0;
  }
  set_window(chunked, AttentionWindow::kChunked, chunk, f, key, m);
  notes["layers"] = "MoE layers from moe_layers or interleave_moe_layer_step; one shared expert";
  notes["ignored"] = "vision tower and projector, attention temperature tuning, q/k norm";
}

// `_name_or_path`'s last part in lower case ("meta-llama/Llama-4-Scout" -> "llama-4-scout").
std::string default_name(const Json& config, const std::string& model_type) {
  std::string name = model_type;
  if (const auto it = config.find("_name_or_path"); it != config.end() && it->is_string()) {
    const std::string path = it->get<std::string>();
    const std::string last = path.substr(path.find_last_of('/') + 1);
    if (!last.empty()) name = last;
  }
  std::transform(name.begin(), name.end(), name.begin(), [](char c) {
    return c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return name.empty() ? "imported-model" : name;
}

}  // namespace

ImportedModel import_hf_config(const Json& config, const std::string& source) {
  if (!config.is_object()) {
    throw_config_error(source, "expected a config.json object, got " + describe_json(config));
  }
  const HfFields top(config, source, "", "HuggingFace");
  std::string model_type = top.string_or("model_type", "");
  // OpenAI's original gpt-oss config.json has no model_type; experts_per_token is its own.
  if (model_type.empty() && top.has("experts_per_token")) model_type = "gpt_oss";
  if (model_type.empty()) {
    top.fail("model_type",
             "required (one of mixtral, qwen2_moe, qwen3_moe, deepseek_v2, "
             "deepseek_v3, kimi_k2, gpt_oss, llama4)");
  }
  ImportedModel out;
  Json notes = Json::object();
  MoeModelConfig& m = out.model;
  if (model_type == "mixtral") {
    out.convention = "Mixtral";
    read_mixtral(HfFields(config, source, "", out.convention), m, notes);
  } else if (model_type == "qwen2_moe" || model_type == "qwen3_moe") {
    out.convention = "Qwen-MoE";
    read_qwen_moe(HfFields(config, source, "", out.convention), model_type, m, notes);
  } else if (model_type == "deepseek_v2" || model_type == "deepseek_v3" ||
             model_type == "kimi_k2") {
    out.convention = "DeepSeek";
    read_deepseek(HfFields(config, source, "", out.convention), model_type, m, notes);
  } else if (model_type == "gpt_oss") {
    out.convention = "gpt-oss";
    read_gpt_oss(HfFields(config, source, "", out.convention), m, notes);
  } else if (model_type == "llama4" || model_type == "llama4_text") {
    out.convention = "Llama 4";
    const bool nested = model_type == "llama4";
    if (nested) {
      const Json& text = HfFields(config, source, "", out.convention).require("text_config");
      if (!text.is_object())
        top.fail("text_config", "expected an object, got " + describe_json(text));
      read_llama4(HfFields(text, source, "text_config", out.convention), m, notes);
    } else {
      read_llama4(HfFields(config, source, "", out.convention), m, notes);
    }
  } else {
    top.fail("model_type", fmt::format("'{}' is not an MoE convention moesim reads (mixtral, "
                                       "qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3, kimi_k2, "
                                       "gpt_oss, llama4)",
                                       model_type));
  }
  if (const Json* q = top.find("quantization_config");
      q != nullptr && q->is_object() && m.expert_weight_bits == 0) {
    notes["quantization"] = fmt::format(
        "quantization_config {}: not applied, weights counted at the dtype (a run's "
        "workload.dtype sets the precision)",
        q->value("quant_method", "?"));
  }
  // Without shared experts the width is the catalog's default, the expert's.
  if (m.shared_experts == 0) m.shared_expert_ffn = m.expert_ffn;
  m.dtype = read_dtype(top);
  m.name = default_name(config, model_type);
  m.description = fmt::format("imported from {} ({} convention, model_type {})", source,
                              out.convention, model_type);
  out.sources = Json::object();
  out.sources["config"] = fmt::format(
      "{} (model_type {}, read with the {} convention by "
      "moesim models import)",
      source, model_type, out.convention);
  for (const auto& [key, value] : notes.items()) out.sources[key] = value;
  // The catalog's own validation: an imported entry loads as any other does.
  out.model = resolve_model(Json::parse(catalog_entry_json(m, out.sources).dump()),
                            source + ": imported model");
  return out;
}

}  // namespace moesim::workloads
