#pragma once
// MoE model configurations: the catalog's presets (workloads/models/*.json,
// each number with its source) and the quantities derived from them.
// Parameter totals and FLOPs are computed from the shapes, never stored, so a
// user's override of any shape changes them consistently.

#include <string>
#include <vector>

#include "sim/core/config.h"

namespace moesim::workloads {

enum class AttentionKind { kMha, kGqa, kMla };
enum class Activation { kSwiGlu, kGelu };

struct MoeModelConfig {
  std::string name;
  std::string description;
  int layers = 0;
  int64_t hidden = 0;
  AttentionKind attention = AttentionKind::kMha;
  int heads = 0;
  int kv_heads = 0;
  int64_t head_dim = 0;
  // Multi-head latent attention (DeepSeek-V2/V3).
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0,
          v_head_dim = 0;
  int64_t dense_ffn = 0;   // FFN width of the dense layers
  int64_t expert_ffn = 0;  // FFN width of one routed expert
  int routed_experts = 0;
  int shared_experts = 0;
  int64_t shared_expert_ffn = 0;  // width of one shared expert
  int top_k = 0;
  int router_groups = 1, router_topk_groups = 1;  // group-limited routing (DeepSeek)
  std::string router_scoring = "softmax";
  int first_k_dense = 0;  // the first k layers are dense
  int moe_every = 1;      // then every n-th layer is MoE (the last of each n)
  int64_t vocab = 0;
  bool tied_embeddings = false;
  Activation activation = Activation::kSwiGlu;
  std::string dtype = "bf16";
  double published_total_params = 0, published_active_params = 0;  // 0 = not published
  bool published_approximate = false;

  bool is_moe_layer(int layer) const;
  int moe_layer_count() const;

  // Parameter counts (elements).
  double attention_params_per_layer() const;  // projections + the layer's two norms
  double ffn_params(int64_t width) const;     // one FFN of the given width
  double dense_ffn_params() const { return ffn_params(dense_ffn); }
  double expert_params() const { return ffn_params(expert_ffn); }
  double shared_expert_params() const { return shared_experts * ffn_params(shared_expert_ffn); }
  double router_params() const { return static_cast<double>(hidden) * routed_experts; }
  double embedding_params() const { return static_cast<double>(vocab) * hidden; }
  double output_params() const { return tied_embeddings ? 0 : embedding_params(); }
  double total_params() const;
  double active_params() const;
  // Forward FLOPs per token at `seq_len` (causal): 2 per multiply-add over the
  // active matmul parameters (embedding lookup excluded, output head
  // included), plus the attention scores and the weighted values:
  // 2 x 2 x heads x (qk_dim + v_dim) / 2 x seq_len / 2 per layer.
  double flops_per_token(int64_t seq_len) const;
  int64_t qk_head_dim() const;
  int64_t v_dim() const;
  bool operator==(const MoeModelConfig&) const = default;
};

// `value`: a preset name, {"preset": name, ...overrides} or an inline object.
MoeModelConfig resolve_model(const Json& value, const std::string& path);
Json model_json(const MoeModelConfig& m, int64_t seq_len = 4096);  // with derived totals

struct CatalogEntry {
  std::string name, description;
};
std::vector<CatalogEntry> list_models();

}  // namespace moesim::workloads
