#pragma once
// MoE model configurations: the catalog's presets (workloads/models/*.json,
// each number with its source) and the quantities derived from them.
// Parameter totals and FLOPs are computed from the shapes, never stored, so a
// user's override of any shape changes them consistently.

#include <cstdint>
#include <string>
#include <vector>

#include "sim/core/config.h"

namespace moesim::workloads {

// Expert ids are u16 in .moetrace files; a token's top-k copies are held in
// fixed arrays of 64 by the generators (the largest published top-k is 8-16).
inline constexpr int kMaxRoutedExperts = 65535;
inline constexpr int kMaxTopK = 64;
// MTP depths: DeepSeek-V3 trains 1 (its report studies 1 and 2); a model
// file asking for more is almost certainly a typo.
inline constexpr int kMaxMtpLayers = 8;

enum class AttentionKind { kMha, kGqa, kMla };
enum class Activation { kSwiGlu, kGelu };
// Attention limited to recent tokens on some layers ("attention.window").
enum class AttentionWindow {
  kNone,     // every layer attends to the whole context
  kSliding,  // a token attends to the last window_tokens tokens, itself included
             // (gpt-oss, Mistral; the HF mask keeps keys with q - window < k <= q)
  kChunked,  // the context is cut into chunks of window_tokens; a token attends to the
             // tokens of its own chunk up to itself (Llama 4's local attention)
};

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
  // Windowed attention: on windowed layers (all but the full-attention ones)
  // attention reaches window_tokens back. window_full_every = n keeps full
  // attention on the last layer of each n (layers n-1, 2n-1, ...; the
  // moe_layers.every convention); 0 = every layer windowed. gpt-oss: sliding
  // 128, full every 2nd layer; Llama 4: chunked 8192, full every 4th.
  AttentionWindow window = AttentionWindow::kNone;
  int64_t window_tokens = 0;
  int window_full_every = 0;
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
  // Multi-token prediction modules (DeepSeek-V3 section 2.2; config.json
  // num_nextn_predict_layers), trained with the model (Megatron-Core's
  // --mtp-num-layers, multi_token_prediction.py): module k norms the
  // embedding of token i+k and the hidden state of token i, projects their
  // concatenation (eh_proj, 2 x hidden -> hidden), runs one transformer
  // layer of the last layer's kind, and puts the result through the shared
  // output head and a loss of its own. Left out of total_params and
  // active_params (the published counts leave them out: DeepSeek-V3's 671B
  // are the main model's) and out of serving (they only draft tokens for
  // speculative decoding, which moesim does not model).
  int mtp_layers = 0;
  int64_t vocab = 0;
  bool tied_embeddings = false;
  Activation activation = Activation::kSwiGlu;
  std::string dtype = "bf16";
  // Storage bits per routed-expert weight when the experts are kept in another
  // format than the other weights (gpt-oss: MXFP4, 4 bits per value plus one
  // 8-bit scale per 32 values = 4.25); 0 = the dtype's width.
  double expert_weight_bits = 0;
  double published_total_params = 0, published_active_params = 0;  // 0 = not published
  bool published_approximate = false;
  // The published active count leaves out the input embedding (a table
  // lookup, no matmul) but keeps the output head, as gpt-oss's model card does.
  bool published_active_excludes_embedding = false;

  // Layers 0..layers-1 are the model's; layers..layers+mtp_layers-1 are its
  // MTP modules' transformer layers, of the last layer's kind.
  bool is_moe_layer(int layer) const;
  int moe_layer_count() const;  // the model's, MTP modules left out
  // True when `layer` attends through the window (false for every layer
  // without a window). REQUIRES 0 <= layer < layers.
  bool is_windowed_layer(int layer) const;
  int windowed_layer_count() const;

  // KV cache (elements are of the KV dtype, which the caller chooses).
  // Elements one layer stores per cached token: MLA keeps the compressed
  // latent and the shared RoPE key, kv_lora_rank + qk_rope_head_dim, for all
  // heads together (DeepSeek-V2 paper, section 2.1); MHA/GQA keep a key and a
  // value per KV head, 2 x kv_heads x head_dim. Under tensor parallelism GQA
  // heads are split across ranks while the MLA latent is not: the caller divides.
  int64_t kv_elements_per_token_per_layer() const;
  // Tokens of KV layer `layer` must keep for a sequence of `context` tokens:
  // the keys the newest token attends to. Full attention: context; sliding:
  // min(context, window); chunked: the tokens of the newest token's chunk,
  // context - floor((context - 1) / chunk) x chunk. REQUIRES 0 <= layer < layers,
  // context >= 0.
  int64_t kv_cache_tokens(int layer, int64_t context) const;
  // Bytes one token adds to the cache over all layers while it is inside
  // every layer's window: layers x kv_elements_per_token_per_layer() x bytes.
  double kv_bytes_per_token(double bytes_per_element) const;
  // Bytes a sequence of `context` tokens holds over all layers,
  // sum over layers of kv_cache_tokens x kv_elements_per_token_per_layer() x bytes.
  double kv_cache_bytes(int64_t context, double bytes_per_element) const;

  // Weight storage: every weight at the dtype's width except the routed
  // experts, at routed_expert_weight_bits().
  double dtype_bits() const;  // bf16/fp16 16, fp32 32, fp8 8
  double routed_expert_weight_bits() const;
  double weight_bytes() const;  // all parameters of total_params()

  // Parameter counts (elements).
  double attention_params_per_layer() const;  // projections + the layer's two norms
  double ffn_params(int64_t width) const;     // one FFN of the given width
  double dense_ffn_params() const { return ffn_params(dense_ffn); }
  double expert_params() const { return ffn_params(expert_ffn); }
  double shared_expert_params() const { return shared_experts * ffn_params(shared_expert_ffn); }
  double router_params() const { return static_cast<double>(hidden) * routed_experts; }
  // Layer `layer`'s dense FFN, or its MoE block (routed experts, all of them
  // or the top_k a token uses when `active`, with shared experts and router).
  double ffn_side_params(int layer, bool active) const;
  double embedding_params() const { return static_cast<double>(vocab) * hidden; }
  double output_params() const { return tied_embeddings ? 0 : embedding_params(); }
  double total_params() const;
  double active_params() const;
  // One MTP module's own parameters beside its transformer layer: eh_proj
  // (2 x hidden -> hidden) and three norms (embedding, hidden state, output).
  double mtp_module_params() const {
    const double h = static_cast<double>(hidden);
    return 2 * h * h + 3 * h;
  }
  // Parameters of all MTP modules: each its transformer layer and
  // mtp_module_params(); the embedding and output head are the model's,
  // shared.
  double mtp_params() const;
  // Forward FLOPs per token at `seq_len` (causal): 2 per multiply-add over the
  // active matmul parameters (embedding lookup excluded, output head
  // included), plus the attention scores and the weighted values:
  // 2 x heads x (qk_dim + v_dim) x (keys a query attends to, on average) per
  // layer; that mean is seq_len / 2 on full-attention layers and
  // mean_attended_tokens(seq_len) on windowed ones.
  double flops_per_token(int64_t seq_len) const;
  // What the MTP modules add per token and forward pass, counted the same
  // way: each its transformer layer, eh_proj and a pass through the output
  // head (Megatron-Core's num_floating_point_operations counts the same).
  double mtp_flops_per_token(int64_t seq_len) const;
  // Keys a query of a `seq_len`-token sequence attends to on a windowed layer,
  // averaged over the positions (continuous form, as seq_len / 2 is for full
  // attention): sliding W < L: W - W^2 / 2L; chunked C: (q C^2 + r^2) / 2L for
  // L = qC + r; L / 2 when L fits in one window.
  double mean_attended_tokens(int64_t seq_len) const;
  int64_t qk_head_dim() const;
  int64_t v_dim() const;
  bool operator==(const MoeModelConfig&) const = default;
};

// `value`: a preset name, {"preset": name, ...overrides} or an inline object.
MoeModelConfig resolve_model(const Json& value, const std::string& path);
Json model_json(const MoeModelConfig& m, int64_t seq_len = 4096);  // with derived totals
// The catalog entry of `m` (the format of workloads/models/*.json), fields in
// reading order, with `sources` (an object of strings) as its "sources":
// resolve_model of the result gives back `m`.
nlohmann::ordered_json catalog_entry_json(const MoeModelConfig& m, const Json& sources);

struct CatalogEntry {
  std::string name, description;
};
std::vector<CatalogEntry> list_models();

}  // namespace moesim::workloads
