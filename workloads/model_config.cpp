#include "workloads/model_config.h"

#include <algorithm>
#include <cstdint>
#include <span>

#include <fmt/format.h>

#include "sim/core/embedded.h"

namespace moesim::workloads {
namespace catalog {
std::span<const moesim::EmbeddedFile> embedded_files();
}

namespace {

Json load_model_preset(const std::string& name, const std::string& path) {
  for (const EmbeddedFile& f : catalog::embedded_files()) {
    if (f.name == name + ".json") return parse_json(f.content, "model preset " + name);
  }
  std::string known;
  for (const auto& e : list_models()) known += (known.empty() ? "" : ", ") + e.name;
  throw_config_error(path, fmt::format("unknown model '{}' (known: {})", name, known));
}

// "attention.window": {"kind": "sliding"|"chunked", "tokens": N, "full_every": n}.
void read_attention_window(ConfigObject w, MoeModelConfig& m) {
  m.window = w.choice("kind", {"sliding", "chunked"}) == "sliding" ? AttentionWindow::kSliding
                                                                   : AttentionWindow::kChunked;
  m.window_tokens = w.integer("tokens", 1, int64_t{1} << 40);
  m.window_full_every = static_cast<int>(w.integer_or("full_every", 0, 0, m.layers));
  if (m.window_full_every == 1) {
    throw_config_error(w.field_path("full_every"),
                       "1 would give every layer full attention; remove the window instead "
                       "(0 = every layer windowed, n >= 2 = full attention on the last of each n)");
  }
  w.finish();
}

template <class JsonType>
JsonType window_json(const MoeModelConfig& m) {
  JsonType w;
  w["kind"] = m.window == AttentionWindow::kSliding ? "sliding" : "chunked";
  w["tokens"] = m.window_tokens;
  w["full_every"] = m.window_full_every;
  return w;
}

const char* attention_kind_name(AttentionKind kind) {
  return kind == AttentionKind::kMha ? "mha" : kind == AttentionKind::kGqa ? "gqa" : "mla";
}

// The model's geometry as a catalog entry spells it, in the catalog's field
// order: the report's `model` (sorted keys, derived counts added) and
// `models import` (this order, sources added) both start from it. Optional
// fields are written only where the model has them, so the entries and
// reports of the other models keep their bytes.
template <class JsonType>
JsonType geometry_json(const MoeModelConfig& m) {
  JsonType j;
  j["name"] = m.name;
  j["description"] = m.description;
  j["layers"] = m.layers;
  j["hidden"] = m.hidden;
  JsonType a;
  a["kind"] = attention_kind_name(m.attention);
  a["heads"] = m.heads;
  if (m.attention == AttentionKind::kMla) {
    a["q_lora_rank"] = m.q_lora_rank;
    a["kv_lora_rank"] = m.kv_lora_rank;
    a["qk_nope_head_dim"] = m.qk_nope_head_dim;
    a["qk_rope_head_dim"] = m.qk_rope_head_dim;
    a["v_head_dim"] = m.v_head_dim;
  } else {
    a["kv_heads"] = m.kv_heads;
    a["head_dim"] = m.head_dim;
  }
  if (m.window != AttentionWindow::kNone) a["window"] = window_json<JsonType>(m);
  j["attention"] = a;
  j["dense_ffn"] = m.dense_ffn;
  j["expert_ffn"] = m.expert_ffn;
  j["routed_experts"] = m.routed_experts;
  j["shared_experts"] = m.shared_experts;
  j["shared_expert_ffn"] = m.shared_expert_ffn;
  j["top_k"] = m.top_k;
  j["router"] = {{"groups", m.router_groups},
                 {"topk_groups", m.router_topk_groups},
                 {"scoring", m.router_scoring}};
  j["moe_layers"] = {{"first_k_dense", m.first_k_dense}, {"every", m.moe_every}};
  if (m.mtp_layers > 0) j["mtp_layers"] = m.mtp_layers;
  j["vocab"] = m.vocab;
  j["tied_embeddings"] = m.tied_embeddings;
  j["activation"] = m.activation == Activation::kSwiGlu ? "swiglu" : "gelu";
  j["dtype"] = m.dtype;
  if (m.expert_weight_bits > 0) j["expert_weight_bits"] = m.expert_weight_bits;
  return j;
}

}  // namespace

bool MoeModelConfig::is_moe_layer(int layer) const {
  if (layer >= layers) return is_moe_layer(layers - 1);  // an MTP module's layer
  if (routed_experts == 0 || layer < first_k_dense) return false;
  return (layer - first_k_dense) % moe_every == moe_every - 1;
}

int MoeModelConfig::moe_layer_count() const {
  int n = 0;
  for (int l = 0; l < layers; ++l) n += is_moe_layer(l) ? 1 : 0;
  return n;
}

bool MoeModelConfig::is_windowed_layer(int layer) const {
  if (window == AttentionWindow::kNone) return false;
  return window_full_every == 0 || layer % window_full_every != window_full_every - 1;
}

int MoeModelConfig::windowed_layer_count() const {
  if (window == AttentionWindow::kNone) return 0;
  return window_full_every == 0 ? layers : layers - layers / window_full_every;
}

int64_t MoeModelConfig::kv_elements_per_token_per_layer() const {
  return attention == AttentionKind::kMla ? kv_lora_rank + qk_rope_head_dim
                                          : 2 * int64_t{kv_heads} * head_dim;
}

int64_t MoeModelConfig::kv_cache_tokens(int layer, int64_t context) const {
  if (context <= 0 || !is_windowed_layer(layer)) return std::max<int64_t>(context, 0);
  if (window == AttentionWindow::kSliding) return std::min(context, window_tokens);
  return context - (context - 1) / window_tokens * window_tokens;  // chunked
}

double MoeModelConfig::kv_bytes_per_token(double bytes_per_element) const {
  return static_cast<double>(layers) * kv_elements_per_token_per_layer() * bytes_per_element;
}

double MoeModelConfig::kv_cache_bytes(int64_t context, double bytes_per_element) const {
  // Windowed layers all keep the same count, so two products cover every layer.
  const int windowed = windowed_layer_count();
  double tokens = static_cast<double>(layers - windowed) * std::max<int64_t>(context, 0);
  // Layer 0 is windowed whenever any layer is (full_every is 0 or >= 2).
  if (windowed > 0) tokens += static_cast<double>(windowed) * kv_cache_tokens(0, context);
  return tokens * kv_elements_per_token_per_layer() * bytes_per_element;
}

double MoeModelConfig::dtype_bits() const {
  if (dtype == "fp32") return 32;
  if (dtype == "fp8") return 8;
  return 16;  // bf16, fp16
}

double MoeModelConfig::routed_expert_weight_bits() const {
  return expert_weight_bits > 0 ? expert_weight_bits : dtype_bits();
}

double MoeModelConfig::weight_bytes() const {
  const double routed = static_cast<double>(moe_layer_count()) * routed_experts * expert_params();
  return ((total_params() - routed) * dtype_bits() + routed * routed_expert_weight_bits()) / 8;
}

int64_t MoeModelConfig::qk_head_dim() const {
  return attention == AttentionKind::kMla ? qk_nope_head_dim + qk_rope_head_dim : head_dim;
}
int64_t MoeModelConfig::v_dim() const {
  return attention == AttentionKind::kMla ? v_head_dim : head_dim;
}

double MoeModelConfig::attention_params_per_layer() const {
  const double h = static_cast<double>(hidden);
  const double norms = 2 * h;
  if (attention == AttentionKind::kMla) {
    const double q = q_lora_rank > 0 ? h * q_lora_rank + q_lora_rank +
                                           static_cast<double>(q_lora_rank) * heads * qk_head_dim()
                                     : h * heads * qk_head_dim();
    const double kv_a = h * (kv_lora_rank + qk_rope_head_dim) + kv_lora_rank;
    const double kv_b = static_cast<double>(kv_lora_rank) * heads * (qk_nope_head_dim + v_head_dim);
    const double o = static_cast<double>(heads) * v_head_dim * h;
    return q + kv_a + kv_b + o + norms;
  }
  const double q = h * heads * head_dim, kv = 2 * h * kv_heads * head_dim;
  const double o = static_cast<double>(heads) * head_dim * h;
  return q + kv + o + norms;
}

double MoeModelConfig::ffn_params(int64_t width) const {
  return (activation == Activation::kSwiGlu ? 3.0 : 2.0) * hidden * width;
}

// The FFN side of layer `layer`: a dense FFN, or the MoE block's routed
// experts (all of them, or the top_k a token uses), shared experts and router.
double MoeModelConfig::ffn_side_params(int layer, bool active) const {
  if (!is_moe_layer(layer)) return dense_ffn_params();
  return (active ? top_k : routed_experts) * expert_params() + shared_expert_params() +
         router_params();
}

double MoeModelConfig::total_params() const {
  double p = embedding_params() + output_params() + hidden;  // + final norm
  for (int l = 0; l < layers; ++l) p += attention_params_per_layer() + ffn_side_params(l, false);
  return p;
}

double MoeModelConfig::active_params() const {
  double p = embedding_params() + output_params() + hidden;
  for (int l = 0; l < layers; ++l) p += attention_params_per_layer() + ffn_side_params(l, true);
  return p;
}

double MoeModelConfig::mtp_params() const {
  return mtp_layers *
         (attention_params_per_layer() + ffn_side_params(layers, false) + mtp_module_params());
}

double MoeModelConfig::mtp_flops_per_token(int64_t seq_len) const {
  if (mtp_layers == 0) return 0;
  const double h = static_cast<double>(hidden);
  // The layer's matmuls (its two norms are not), eh_proj, the output head.
  const double matmul =
      attention_params_per_layer() - 2 * h + ffn_side_params(layers, true) + 2 * h * h + h * vocab;
  const double keys = is_windowed_layer(layers - 1) ? mean_attended_tokens(seq_len)
                                                    : static_cast<double>(seq_len) / 2;
  const double attention = 2.0 * heads * static_cast<double>(qk_head_dim() + v_dim()) * keys;
  return mtp_layers * (2 * matmul + attention);
}

double MoeModelConfig::flops_per_token(int64_t seq_len) const {
  // Matmul parameters a token touches: active minus the embedding lookup and
  // the norms (not matmuls).
  const double matmul = active_params() - embedding_params() - hidden -
                        layers * 2.0 * static_cast<double>(hidden) +
                        (tied_embeddings ? embedding_params() : 0);
  // Full-attention layers first, in the form the reports were made with.
  const int windowed = windowed_layer_count();
  const double per_key = 2.0 * heads * static_cast<double>(qk_head_dim() + v_dim());
  double attention = (layers - windowed) * 2.0 * heads *
                     static_cast<double>(qk_head_dim() + v_dim()) * seq_len / 2;
  if (windowed > 0) attention += windowed * per_key * mean_attended_tokens(seq_len);
  return 2 * matmul + attention;
}

double MoeModelConfig::mean_attended_tokens(int64_t seq_len) const {
  const double length = static_cast<double>(seq_len), span = static_cast<double>(window_tokens);
  if (window == AttentionWindow::kNone || seq_len <= window_tokens) return length / 2;
  if (window == AttentionWindow::kSliding) return span - span * span / (2 * length);
  const double whole = static_cast<double>(seq_len / window_tokens);
  const double rest = static_cast<double>(seq_len % window_tokens);
  return (whole * span * span + rest * rest) / (2 * length);
}

MoeModelConfig resolve_model(const Json& value, const std::string& path) {
  Json doc;
  if (value.is_string()) {
    doc = load_model_preset(value.get<std::string>(), path);
  } else if (value.is_object()) {
    if (value.contains("preset")) {
      if (!value["preset"].is_string()) {
        throw_config_error(join_path(path, "preset"),
                           "expected a model name, got " + describe_json(value["preset"]));
      }
      doc = load_model_preset(value["preset"].get<std::string>(), join_path(path, "preset"));
      Json patch = value;
      patch.erase("preset");
      merge_json_into(doc, patch);
    } else {
      doc = value;
    }
  } else {
    throw_config_error(path, "expected a model name or an object, got " + describe_json(value));
  }
  ConfigObject o(doc, path);
  MoeModelConfig m;
  m.name = o.string_or("name", "custom-model");
  m.description = o.string_or("description", "");
  m.layers = static_cast<int>(o.integer("layers", 1, 10000));
  m.hidden = o.integer("hidden", 1, 1 << 20);
  {
    ConfigObject a = o.object("attention");
    const std::string kind = a.choice("kind", {"mha", "gqa", "mla"});
    m.attention = kind == "mha"   ? AttentionKind::kMha
                  : kind == "gqa" ? AttentionKind::kGqa
                                  : AttentionKind::kMla;
    m.heads = static_cast<int>(a.integer("heads", 1, 1 << 16));
    if (m.attention == AttentionKind::kMla) {
      m.q_lora_rank = a.integer_or("q_lora_rank", 0, 0, 1 << 20);
      m.kv_lora_rank = a.integer("kv_lora_rank", 1, 1 << 20);
      m.qk_nope_head_dim = a.integer("qk_nope_head_dim", 1, 1 << 16);
      m.qk_rope_head_dim = a.integer("qk_rope_head_dim", 0, 1 << 16);
      m.v_head_dim = a.integer("v_head_dim", 1, 1 << 16);
      m.kv_heads = m.heads;
    } else {
      m.kv_heads = static_cast<int>(a.integer_or("kv_heads", m.heads, 1, m.heads));
      if (!a.has("head_dim") && m.hidden < m.heads) {
        throw_config_error(a.field_path("head_dim"),
                           fmt::format("required: hidden ({}) is smaller than heads ({}), so "
                                       "the default hidden / heads would be 0",
                                       m.hidden, m.heads));
      }
      m.head_dim = a.integer_or("head_dim", m.hidden / m.heads, 1, 1 << 16);
      if (m.heads % m.kv_heads != 0) {
        throw_config_error(a.field_path("kv_heads"),
                           fmt::format("must divide heads ({}), got {}", m.heads, m.kv_heads));
      }
    }
    if (a.has("window")) read_attention_window(a.object("window"), m);
    a.finish();
  }
  m.dense_ffn = o.integer_or("dense_ffn", 4 * m.hidden, 1, int64_t{1} << 24);
  // MoE models only (the generators route tokens); expert ids are u16 in traces.
  m.routed_experts = static_cast<int>(o.integer("routed_experts", 1, kMaxRoutedExperts));
  m.expert_ffn = o.integer_or("expert_ffn", m.dense_ffn, 1, int64_t{1} << 24);
  m.shared_experts = static_cast<int>(o.integer_or("shared_experts", 0, 0, 1024));
  m.shared_expert_ffn = o.integer_or("shared_expert_ffn", m.expert_ffn, 1, int64_t{1} << 24);
  m.top_k = static_cast<int>(o.integer("top_k", 1, kMaxTopK));
  if (m.top_k > m.routed_experts) {
    throw_config_error(o.field_path("top_k"),
                       fmt::format("{} exceeds routed_experts ({}): a token picks distinct experts",
                                   m.top_k, m.routed_experts));
  }
  if (o.has("router")) {
    ConfigObject r = o.object("router");
    m.router_groups = static_cast<int>(r.integer_or("groups", 1, 1, std::max(1, m.routed_experts)));
    m.router_topk_groups =
        static_cast<int>(r.integer_or("topk_groups", m.router_groups, 1, m.router_groups));
    m.router_scoring = r.choice_or("scoring", "softmax", {"softmax", "sigmoid"});
    r.finish();
    if (m.routed_experts % m.router_groups != 0) {
      throw_config_error(join_path(path, "router.groups"),
                         fmt::format("must divide routed_experts ({})", m.routed_experts));
    }
  }
  {
    ConfigObject ml = o.object("moe_layers");
    m.first_k_dense = static_cast<int>(ml.integer_or("first_k_dense", 0, 0, m.layers));
    m.moe_every = static_cast<int>(ml.integer_or("every", 1, 1, m.layers));
    ml.finish();
  }
  m.mtp_layers = static_cast<int>(o.integer_or("mtp_layers", 0, 0, kMaxMtpLayers));
  m.vocab = o.integer("vocab", 1, int64_t{1} << 24);
  m.tied_embeddings = o.boolean_or("tied_embeddings", false);
  m.activation = o.choice_or("activation", "swiglu", {"swiglu", "gelu"}) == "swiglu"
                     ? Activation::kSwiGlu
                     : Activation::kGelu;
  m.dtype = o.choice_or("dtype", "bf16", {"bf16", "fp16", "fp32", "fp8"});
  m.expert_weight_bits = o.number_or("expert_weight_bits", 0, 1, 32);
  if (o.has("published")) {
    ConfigObject p = o.object("published");
    m.published_total_params = p.number_or("total_params", 0, 0, 1e15);
    m.published_active_params = p.number_or("active_params", 0, 0, 1e15);
    m.published_approximate = p.boolean_or("approximate", false);
    m.published_active_excludes_embedding = p.boolean_or("active_excludes_embedding", false);
    p.finish();
  }
  o.value("sources");
  o.finish();
  return m;
}

Json model_json(const MoeModelConfig& m, int64_t seq_len) {
  Json j = geometry_json<Json>(m);
  j["moe_layer_count"] = m.moe_layer_count();
  // Written only for models with MTP modules, so reports of the others keep their bytes.
  if (m.mtp_layers > 0) j["mtp_params"] = m.mtp_params();
  j["total_params"] = m.total_params();
  j["active_params"] = m.active_params();
  j["flops_per_token"] = m.flops_per_token(seq_len);
  j["flops_per_token_seq_len"] = seq_len;
  return j;
}

nlohmann::ordered_json catalog_entry_json(const MoeModelConfig& m, const Json& sources) {
  using Ordered = nlohmann::ordered_json;
  Ordered j = geometry_json<Ordered>(m);
  Ordered published = Ordered::object();
  if (m.published_total_params > 0) published["total_params"] = m.published_total_params;
  if (m.published_active_params > 0) published["active_params"] = m.published_active_params;
  if (m.published_approximate) published["approximate"] = true;
  if (m.published_active_excludes_embedding) published["active_excludes_embedding"] = true;
  if (!published.empty()) j["published"] = published;
  j["sources"] = Ordered::parse(sources.dump());
  return j;
}

std::vector<CatalogEntry> list_models() {
  std::vector<CatalogEntry> out;
  for (const EmbeddedFile& f : catalog::embedded_files()) {
    const Json doc = parse_json(f.content, std::string(f.name));
    out.push_back({doc.value("name", ""), doc.value("description", "")});
  }
  return out;
}

}  // namespace moesim::workloads
