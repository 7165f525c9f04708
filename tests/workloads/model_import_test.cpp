// moesim models import: HuggingFace config.json files of the five MoE
// conventions (tests/data/hf/, the published configs) read into catalog
// entries that match the hand-written ones in workloads/models/.

#include <filesystem>

#include <catch2/catch.hpp>

#include "sim/core/config.h"
#include "sim/core/error.h"
#include "workloads/model_config.h"
#include "workloads/model_import.h"

namespace moesim::workloads {
namespace {

namespace fs = std::filesystem;
const fs::path kHf = fs::path(MOESIM_SOURCE_DIR) / "tests" / "data" / "hf";

Json fixture(const std::string& file) {
  return load_json_file((kHf / file).string());
}

ImportedModel import_fixture(const std::string& file) {
  return import_hf_config(fixture(file), file);
}

// The imported model with the catalog's identity and published figures, so
// that == compares the geometry only.
MoeModelConfig as_catalog(MoeModelConfig m, const std::string& preset) {
  const MoeModelConfig c = resolve_model(Json(preset), "model");
  m.name = c.name;
  m.description = c.description;
  m.published_total_params = c.published_total_params;
  m.published_active_params = c.published_active_params;
  m.published_approximate = c.published_approximate;
  m.published_active_excludes_embedding = c.published_active_excludes_embedding;
  return m;
}

TEST_CASE("each convention imports to the catalog's entry", "[workloads][import]") {
  const struct {
    const char* file;
    const char* preset;
    const char* convention;
  } cases[] = {
      {"mixtral-8x7b.config.json", "mixtral-8x7b", "Mixtral"},
      {"qwen3-30b-a3b.config.json", "qwen3-30b-a3b", "Qwen-MoE"},
      {"deepseek-v3.config.json", "deepseek-v3", "DeepSeek"},
      {"kimi-k2.config.json", "kimi-k2", "DeepSeek"},
      {"gpt-oss-120b.config.json", "gpt-oss-120b", "gpt-oss"},
      {"llama-4-maverick.config.json", "llama-4-maverick", "Llama 4"},
  };
  for (const auto& c : cases) {
    INFO(c.file);
    const ImportedModel imported = import_fixture(c.file);
    CHECK(imported.convention == c.convention);
    const MoeModelConfig catalog = resolve_model(Json(c.preset), "model");
    CHECK(as_catalog(imported.model, c.preset) == catalog);
    // Written as a catalog entry and read back: the same model, sources kept.
    const Json entry =
        parse_json(catalog_entry_json(imported.model, imported.sources).dump(), c.file);
    CHECK(resolve_model(entry, "model") == imported.model);
    CHECK(entry["sources"]["config"].get<std::string>().find(c.file) != std::string::npos);
  }
}

TEST_CASE("imported geometry: windows, placements, MLA and expert format", "[workloads][import]") {
  const MoeModelConfig oss = import_fixture("gpt-oss-120b.config.json").model;
  CHECK(oss.window == AttentionWindow::kSliding);
  CHECK(oss.window_tokens == 128);
  CHECK(oss.window_full_every == 2);
  CHECK(oss.expert_weight_bits == 4.25);  // quantization_config.quant_method mxfp4
  CHECK(oss.head_dim == 64);              // not hidden / heads = 45
  const MoeModelConfig maverick = import_fixture("llama-4-maverick.config.json").model;
  CHECK(maverick.window == AttentionWindow::kChunked);
  CHECK(maverick.window_tokens == 8192);
  CHECK(maverick.window_full_every == 4);
  CHECK(maverick.first_k_dense == 0);
  CHECK(maverick.moe_every == 2);
  CHECK(maverick.moe_layer_count() == 24);
  CHECK(maverick.dense_ffn == 16384);  // intermediate_size_mlp
  CHECK(maverick.shared_experts == 1);
  const MoeModelConfig kimi = import_fixture("kimi-k2.config.json").model;
  CHECK(kimi.attention == AttentionKind::kMla);
  CHECK(kimi.kv_elements_per_token_per_layer() == 576);
  CHECK(kimi.router_groups == 1);
  CHECK(kimi.router_scoring == "sigmoid");
  CHECK(kimi.first_k_dense == 1);
  const ImportedModel v3 = import_fixture("deepseek-v3.config.json");
  CHECK(v3.model.router_groups == 8);
  CHECK(v3.model.router_topk_groups == 4);
  CHECK(v3.model.mtp_layers == 1);  // num_nextn_predict_layers
  CHECK(v3.sources.contains("mtp"));
  CHECK(v3.sources.contains("quantization"));
  // The name comes from model_type without _name_or_path.
  CHECK(v3.model.name == "deepseek-v3");
}

TEST_CASE("OpenAI's original gpt-oss format: num_experts and experts_per_token",
          "[workloads][import]") {
  const ImportedModel original = import_fixture("gpt-oss-120b.original.config.json");
  CHECK(original.convention == "gpt-oss");
  MoeModelConfig m = original.model;
  CHECK(m.expert_weight_bits == 0);  // no quantization_config in that file
  m.expert_weight_bits = 4.25;
  CHECK(as_catalog(m, "gpt-oss-120b") == resolve_model(Json("gpt-oss-120b"), "model"));
}

TEST_CASE("Qwen-MoE and DeepSeek placements map to first_k_dense + every", "[workloads][import]") {
  Json qwen = fixture("qwen3-30b-a3b.config.json");
  qwen["mlp_only_layers"] = Json::array({0, 1});
  MoeModelConfig m = import_hf_config(qwen, "q.json").model;
  CHECK(m.first_k_dense == 2);
  CHECK(m.moe_every == 1);
  CHECK(m.moe_layer_count() == 46);
  CHECK(m.dense_ffn == 6144);
  qwen["mlp_only_layers"] = Json::array();
  qwen["decoder_sparse_step"] = 2;  // (l + 1) % 2 == 0: layers 1, 3, ...
  m = import_hf_config(qwen, "q.json").model;
  CHECK(m.first_k_dense == 0);
  CHECK(m.moe_every == 2);
  CHECK(m.is_moe_layer(1));
  CHECK(!m.is_moe_layer(0));
  qwen["shared_expert_intermediate_size"] = 5632;
  m = import_hf_config(qwen, "q.json").model;
  CHECK(m.shared_experts == 1);
  CHECK(m.shared_expert_ffn == 5632);
  // Mixtral with a sliding window (Mistral's convention): every layer windowed.
  Json mixtral = fixture("mixtral-8x7b.config.json");
  mixtral["sliding_window"] = 4096;
  m = import_hf_config(mixtral, "m.json").model;
  CHECK(m.window == AttentionWindow::kSliding);
  CHECK(m.window_full_every == 0);
  CHECK(m.windowed_layer_count() == 32);
  CHECK(m.kv_cache_tokens(31, 10000) == 4096);
  // DeepSeek: l >= first_k_dense_replace and l % moe_layer_freq == 0;
  // 1 and 2 -> layers 2, 4, 6, ...: first 1 dense, then the last of each 2.
  Json ds = fixture("deepseek-v3.config.json");
  ds["first_k_dense_replace"] = 1;
  ds["moe_layer_freq"] = 2;
  m = import_hf_config(ds, "d.json").model;
  CHECK(m.first_k_dense == 1);
  CHECK(m.moe_every == 2);
  CHECK(m.is_moe_layer(2));
  CHECK(!m.is_moe_layer(1));
  CHECK(!m.is_moe_layer(3));
  // Llama 4 with an explicit moe_layers list and layer_types.
  Json llama = fixture("llama-4-maverick.config.json");
  llama["text_config"]["moe_layers"] = Json::array({3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47});
  m = import_hf_config(llama, "l.json").model;
  CHECK(m.moe_every == 4);
  CHECK(m.first_k_dense == 0);
  // NVIDIA TensorRT-LLM's two-layer Maverick test config: interval 2, MoE on layer 1.
  Json two = fixture("llama-4-maverick.config.json");
  two["text_config"]["num_hidden_layers"] = 2;
  two["text_config"]["no_rope_layer_interval"] = 2;
  m = import_hf_config(two, "l.json").model;
  CHECK(m.window_full_every == 2);
  CHECK(!m.is_moe_layer(0));
  CHECK(m.is_moe_layer(1));
  two["text_config"]["num_hidden_layers"] = 4;
  two["text_config"].erase("no_rope_layer_interval");
  m = import_hf_config(two, "l.json").model;
  CHECK(m.window_full_every == 4);  // one full layer, the 4th
  CHECK(m.windowed_layer_count() == 3);
  two["text_config"]["no_rope_layers"] = Json::array({0, 0, 0, 0});  // all NoPE: all full
  CHECK(import_hf_config(two, "l.json").model.window == AttentionWindow::kNone);
  llama["text_config"]["no_rope_layers"] = Json::array();  // empty: the interval applies
  CHECK(import_hf_config(llama, "l.json").model.window_full_every == 4);
  llama["text_config"]["attention_chunk_size"] = nullptr;  // null: transformers' default
  CHECK(import_hf_config(llama, "l.json").model.window_tokens == 8192);
}

TEST_CASE("a missing field is a one-line error naming it and the convention",
          "[workloads][import]") {
  const auto without = [](const std::string& file, const std::string& key) {
    Json config = fixture(file);
    if (config.contains("text_config")) {
      config["text_config"].erase(key);
    } else {
      config.erase(key);
    }
    return config;
  };
  CHECK_THROWS_WITH(
      import_hf_config(without("mixtral-8x7b.config.json", "num_hidden_layers"), "config.json"),
      "config.json: num_hidden_layers: required (Mixtral convention)");
  CHECK_THROWS_WITH(
      import_hf_config(without("qwen3-30b-a3b.config.json", "moe_intermediate_size"), "c.json"),
      "c.json: moe_intermediate_size: required (Qwen-MoE convention)");
  CHECK_THROWS_WITH(import_hf_config(without("qwen3-30b-a3b.config.json", "head_dim"), "c.json"),
                    "c.json: head_dim: required (Qwen-MoE convention)");
  CHECK_THROWS_WITH(import_hf_config(without("kimi-k2.config.json", "kv_lora_rank"), "c.json"),
                    "c.json: kv_lora_rank: required (DeepSeek convention)");
  CHECK_THROWS_WITH(
      import_hf_config(without("kimi-k2.config.json", "first_k_dense_replace"), "c.json"),
      "c.json: first_k_dense_replace: required (DeepSeek convention)");
  CHECK_THROWS_WITH(import_hf_config(without("deepseek-v3.config.json", "scoring_func"), "c.json"),
                    "c.json: scoring_func: required (DeepSeek convention)");
  CHECK_THROWS_WITH(import_hf_config(without("deepseek-v3.config.json", "n_group"), "c.json"),
                    "c.json: n_group: required (DeepSeek convention)");
  Json oss = without("gpt-oss-120b.config.json", "num_local_experts");
  CHECK_THROWS_WITH(import_hf_config(oss, "c.json"),
                    "c.json: num_local_experts or num_experts: required (gpt-oss convention)");
  CHECK_THROWS_WITH(
      import_hf_config(without("llama-4-maverick.config.json", "num_local_experts"), "c.json"),
      "c.json: text_config.num_local_experts: required (Llama 4 convention)");
  CHECK_THROWS_WITH(
      import_hf_config(without("llama-4-maverick.config.json", "intermediate_size_mlp"), "c.json"),
      "c.json: text_config.intermediate_size_mlp: required (Llama 4 convention)");
  Json nested = fixture("llama-4-maverick.config.json");
  nested.erase("text_config");
  CHECK_THROWS_WITH(import_hf_config(nested, "c.json"),
                    "c.json: text_config: required (Llama 4 convention)");
  // A null is absent, as transformers reads it.
  Json null_layers = fixture("mixtral-8x7b.config.json");
  null_layers["num_hidden_layers"] = nullptr;
  CHECK_THROWS_WITH(import_hf_config(null_layers, "c.json"),
                    "c.json: num_hidden_layers: required (Mixtral convention)");
}

TEST_CASE("what moesim cannot express is an error, not an approximation", "[workloads][import]") {
  Json qwen = fixture("qwen3-30b-a3b.config.json");
  qwen["mlp_only_layers"] = Json::array({0, 5});
  CHECK_THROWS_WITH(import_hf_config(qwen, "c.json"),
                    Catch::StartsWith("c.json: mlp_only_layers: MoE layers 1, 2, 3, 4, 6, 7, 8, "
                                      "9, ... are not the first k layers dense") &&
                        Catch::Contains("cannot express this placement"));
  qwen["mlp_only_layers"] = Json::array();
  qwen["use_sliding_window"] = true;
  CHECK_THROWS_WITH(import_hf_config(qwen, "c.json"),
                    Catch::StartsWith("c.json: use_sliding_window: true is not supported"));
  Json oss = fixture("gpt-oss-120b.config.json");
  oss["layer_types"][0] = "full_attention";  // full on layer 0 and every odd layer
  CHECK_THROWS_WITH(import_hf_config(oss, "c.json"),
                    Catch::StartsWith("c.json: layer_types: full-attention layers 0, 1, 3, 5"));
  oss["layer_types"] = Json::array({"sliding_attention"});
  CHECK_THROWS_WITH(import_hf_config(oss, "c.json"),
                    "c.json: layer_types: 1 entries for 36 layers");
  Json llama = fixture("llama-4-maverick.config.json");
  llama["text_config"]["moe_layers"] = Json::array({1, 2, 47});
  CHECK_THROWS_WITH(import_hf_config(llama, "c.json"),
                    Catch::StartsWith("c.json: text_config.moe_layers: MoE layers 1, 2, 47"));
  Json ds = fixture("deepseek-v3.config.json");
  ds["first_k_dense_replace"] = 61;  // no MoE layer left
  CHECK_THROWS_WITH(import_hf_config(ds, "c.json"),
                    "c.json: first_k_dense_replace: no layer is MoE: not a Mixture-of-Experts "
                    "model");
}

TEST_CASE("bad values and unknown conventions are one-line errors", "[workloads][import]") {
  Json mixtral = fixture("mixtral-8x7b.config.json");
  mixtral["num_experts_per_tok"] = 9;
  CHECK_THROWS_WITH(import_hf_config(mixtral, "c.json"),
                    "c.json: num_experts_per_tok: 9 exceeds num_local_experts (8)");
  mixtral["num_experts_per_tok"] = 2;
  mixtral["num_key_value_heads"] = 5;
  CHECK_THROWS_WITH(import_hf_config(mixtral, "c.json"),
                    "c.json: num_key_value_heads: 5 must divide num_attention_heads (32)");
  mixtral["num_key_value_heads"] = "8";
  CHECK_THROWS_WITH(import_hf_config(mixtral, "c.json"),
                    Catch::StartsWith("c.json: num_key_value_heads: expected"));
  mixtral["num_key_value_heads"] = 8;
  mixtral["torch_dtype"] = "int4";
  CHECK_THROWS_WITH(import_hf_config(mixtral, "c.json"),
                    Catch::StartsWith("c.json: torch_dtype: 'int4' is not one of"));
  CHECK_THROWS_WITH(import_hf_config(Json{{"model_type", "llama"}}, "c.json"),
                    Catch::StartsWith("c.json: model_type: 'llama' is not an MoE convention"));
  CHECK_THROWS_WITH(import_hf_config(Json{{"hidden_size", 8}}, "c.json"),
                    Catch::StartsWith("c.json: model_type: required"));
  CHECK_THROWS_WITH(import_hf_config(Json::array(), "c.json"),
                    Catch::StartsWith("c.json: expected a config.json object"));
  Json qwen = fixture("qwen3-30b-a3b.config.json");
  qwen["mlp_only_layers"] = Json::array({99});
  CHECK_THROWS_WITH(import_hf_config(qwen, "c.json"),
                    Catch::StartsWith("c.json: mlp_only_layers[0]: expected"));
  Json oss = fixture("gpt-oss-120b.config.json");
  oss["layer_types"][3] = "local_attention";
  CHECK_THROWS_WITH(import_hf_config(oss, "c.json"),
                    "c.json: layer_types[3]: 'local_attention' is not sliding_attention or "
                    "full_attention");
  Json llama = fixture("llama-4-maverick.config.json");
  llama["text_config"]["layer_types"] = Json::array();
  CHECK_THROWS_WITH(import_hf_config(llama, "c.json"),
                    "c.json: text_config.layer_types: 0 entries for 48 layers");
}

}  // namespace
}  // namespace moesim::workloads
