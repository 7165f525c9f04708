#pragma once
// Importing a HuggingFace config.json of an MoE model as a catalog entry
// (`moesim models import`).
//
// Five field conventions are read, chosen by "model_type" (notes/serving.md 5.2):
//
//  convention   model_type                    experts / top-k / expert FFN
//  Mixtral      mixtral                       num_local_experts / num_experts_per_tok /
//                                             intermediate_size; every layer MoE
//  Qwen-MoE     qwen2_moe, qwen3_moe          num_experts / num_experts_per_tok /
//                                             moe_intermediate_size; layer l is MoE iff
//                                             l not in mlp_only_layers and
//                                             (l + 1) % decoder_sparse_step == 0;
//                                             shared_expert_intermediate_size: one shared expert
//  DeepSeek     deepseek_v2, deepseek_v3,     n_routed_experts / num_experts_per_tok /
//               kimi_k2                       moe_intermediate_size; layer l is MoE iff
//                                             l >= first_k_dense_replace and
//                                             l % moe_layer_freq == 0; n_shared_experts of
//                                             moe_intermediate_size; MLA ranks; n_group,
//                                             topk_group, scoring_func
//  gpt-oss      gpt_oss (or none, with        num_local_experts or num_experts /
//               experts_per_token: OpenAI's   num_experts_per_tok or experts_per_token /
//               original format)              intermediate_size; every layer MoE;
//                                             layer_types + sliding_window; MXFP4 experts
//  Llama 4      llama4 (fields under          num_local_experts / num_experts_per_tok /
//               text_config), llama4_text     intermediate_size, one shared expert of the same
//                                             width; moe_layers or interleave_moe_layer_step;
//                                             dense layers intermediate_size_mlp; chunked
//                                             attention (attention_chunk_size) on the RoPE
//                                             layers (layer_types, no_rope_layers or
//                                             no_rope_layer_interval)
//
// Sources: transformers' configuration_*.py and modeling_*.py of each family
// (the MoE-layer rules above are their decoder layers' tests), OpenAI's gpt-oss
// reference model.py (sliding window on even layers).
//
// Fields are read under the names above; a field with one default in every
// release of its family (decoder_sparse_step 1, mlp_only_layers [],
// moe_layer_freq 1, num_key_value_heads = heads, tie_word_embeddings false,
// interleave_moe_layer_step 1, no_rope_layer_interval 4, attention_chunk_size
// 8192) may be absent; a field whose default differs between releases
// (first_k_dense_replace, n_shared_experts, scoring_func in DeepSeek-V3) is
// required. Every MoE of these families has gated (SwiGLU-style) FFNs.
// Fields moesim does not model (rope scaling, biases, attention sinks, MTP
// layers, vision towers) are ignored and named in the entry's "sources".

#include <string>

#include "sim/core/config.h"
#include "workloads/model_config.h"

namespace moesim::workloads {

struct ImportedModel {
  MoeModelConfig model;    // validated as a catalog entry is
  std::string convention;  // "Mixtral", "Qwen-MoE", "DeepSeek", "gpt-oss", "Llama 4"
  Json sources;            // the entry's "sources": what was read, what was left out
};

// Reads `config` (a parsed config.json). `source` names it in errors and in
// the sources. Errors are moesim::Error, one line, naming the field:
//   "<source>: num_hidden_layers: required (Mixtral convention)"
//   "<source>: mlp_only_layers: MoE layers 1, 2, 4, ... are not the first k layers dense
//    and then the last of each n; moesim cannot express this placement"
// The model's name is the last part of "_name_or_path" in lower case, or the
// model_type; callers may replace it.
ImportedModel import_hf_config(const Json& config, const std::string& source);

}  // namespace moesim::workloads
