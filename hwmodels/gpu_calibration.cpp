#include "hwmodels/gpu_calibration.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "hwmodels/calibrated_cost.h"
#include "sim/core/embedded.h"
#include "sim/core/error.h"

namespace moesim::hw {
namespace gpu_calibration_files {
std::span<const moesim::EmbeddedFile> embedded_files();  // hwmodels/calibration/*.json
}

namespace {

constexpr int64_t kMaxDimension = int64_t{1} << 40;

DType dtype_field(ConfigObject& o) {
  return *dtype_from_name(o.choice("dtype", {"fp32", "tf32", "bf16", "fp16", "fp8"}));
}

std::string source_field(ConfigObject& o, const GpuCalibration& c) {
  const std::string id = o.string("source");
  if (!c.sources.contains(id)) {
    std::string known;
    for (const auto& [name, s] : c.sources) known += (known.empty() ? "" : ", ") + name;
    throw_config_error(o.field_path("source"),
                       fmt::format("unknown source '{}' (sources: {})", id, known));
  }
  return id;
}

// Throws if `key` was already seen, naming both entries.
template <typename Key>
void check_unique(std::map<Key, size_t>& seen, const Key& key, const std::string& list, size_t i,
                  const std::string& path, const char* what) {
  const auto [it, inserted] = seen.emplace(key, i);
  if (!inserted) {
    throw_config_error(path, fmt::format("duplicates {}[{}] (same {})", list, it->second, what));
  }
}

// The four GEMM point lists. Forward GEMMs: m tokens (per group), n output
// and k input features; weight gradients: m input and n output features, k
// tokens (per group).
enum class GemmList { kDense, kGrouped, kWgrad, kGroupedWgrad };

void parse_gemm_points(const Json& list, const std::string& path, GemmList kind,
                       GpuCalibration& out) {
  if (!list.is_array()) throw_config_error(path, "expected an array of points");
  const bool grouped = kind == GemmList::kGrouped || kind == GemmList::kGroupedWgrad;
  const bool wgrad = kind == GemmList::kWgrad || kind == GemmList::kGroupedWgrad;
  static constexpr const char* kNames[] = {"gemm", "grouped_gemm", "wgrad_gemm",
                                           "grouped_wgrad_gemm"};
  const std::string name = kNames[static_cast<int>(kind)];
  // The per-group size is m for a forward GEMM, k for a weight gradient.
  const char* per_group = wgrad ? "k_per_group" : "m_per_group";
  std::map<std::tuple<DType, int64_t, int64_t, int64_t>, size_t> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    ConfigObject o(list[i], join_path(path, i));
    GemmPoint p;
    p.source = source_field(o, out);
    p.layout = kind == GemmList::kGrouped ? o.choice("layout", {"contiguous", "masked"})
               : kind == GemmList::kDense ? "dense"
               : grouped                  ? "k_grouped"
                                          : "wgrad";
    p.dtype = dtype_field(o);
    if (grouped) p.groups = o.integer("groups", 1, 1 << 20);
    p.m = o.integer(grouped && !wgrad ? per_group : "m", 1, kMaxDimension);
    p.n = o.integer("n", 1, kMaxDimension);
    p.k = o.integer(grouped && wgrad ? per_group : "k", 1, kMaxDimension);
    p.flops_per_s = o.number("tflops", 1e-6, 1e6) * 1e12;
    p.bytes_per_s = o.number_or("gb_per_s", 0, 0, 1e9) * 1e9;
    o.finish();
    check_unique(seen, std::tuple{p.dtype, p.m, p.n, p.k}, name, i, o.path(),
                 grouped ? (wgrad ? "dtype, m, n, k_per_group" : "dtype, m_per_group, n, k")
                         : "dtype, m, n, k");
    std::vector<GemmPoint>* lists[] = {&out.gemm, &out.grouped_gemm, &out.wgrad_gemm,
                                       &out.grouped_wgrad_gemm};
    lists[static_cast<int>(kind)]->push_back(std::move(p));
  }
}

void parse_attention_points(const Json& list, const std::string& path, GpuCalibration& out) {
  if (!list.is_array()) throw_config_error(path, "expected an array of points");
  std::map<std::tuple<DType, int64_t, int64_t, bool, bool, int64_t>, size_t> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    ConfigObject o(list[i], join_path(path, i));
    AttentionPoint p;
    p.source = source_field(o, out);
    p.backward = o.choice("pass", {"forward", "backward"}) == "backward";
    p.dtype = dtype_field(o);
    p.head_dim = o.integer("head_dim", 1, 1 << 16);
    p.value_head_dim = o.integer_or("value_head_dim", p.head_dim, 1, 1 << 16);
    p.causal = o.boolean("causal");
    p.seq_len = o.integer("seq_len", 1, kMaxDimension);
    p.flops_per_s = o.number("tflops", 1e-6, 1e6) * 1e12;
    o.finish();
    check_unique(
        seen, std::tuple{p.dtype, p.head_dim, p.value_head_dim, p.causal, p.backward, p.seq_len},
        "attention", i, o.path(), "dtype, head_dim, value_head_dim, causal, pass, seq_len");
    out.attention.push_back(std::move(p));
  }
}

// Sources: free-form descriptions, but each must say where it is and what it
// was measured on, so every point can be traced.
void parse_sources(const Json& sources, const std::string& path, GpuCalibration& out) {
  if (!sources.is_object() || sources.empty()) {
    throw_config_error(path, "expected a non-empty object of sources");
  }
  for (const auto& [id, value] : sources.items()) {
    ConfigObject o(value, join_path(path, id));
    GpuCalibrationSource s;
    s.url = o.string("url");
    s.measured_on = o.string("measured_on");
    for (const auto& [field, v] : value.items()) {
      if (!v.is_string()) throw_config_error(o.field_path(field), "expected a string");
      o.value(field);
    }
    o.finish();
    s.fields = value;
    out.sources.emplace(id, std::move(s));
  }
}

std::optional<LogLogCurve> parse_memory_bound(ConfigObject mem) {
  const Json& bytes = mem.value("bytes");
  log_axis_from_json(bytes, mem.field_path("bytes"));  // positive, ascending
  const Json& rate = mem.value("bytes_per_s");
  if (!rate.is_array() || rate.size() != bytes.size()) {
    throw_config_error(mem.field_path("bytes_per_s"),
                       fmt::format("expected an array of {} entries", bytes.size()));
  }
  std::vector<double> x, y;
  for (size_t i = 0; i < rate.size(); ++i) {
    x.push_back(bytes[i].get<double>());
    y.push_back(expect_number(rate[i], join_path(mem.field_path("bytes_per_s"), i), 1e-300, 1e300));
  }
  mem.finish();
  return LogLogCurve(x, y);
}

MlaDecodePoint parse_mla_decode(ConfigObject o, const GpuCalibration& c) {
  MlaDecodePoint p;
  p.source = source_field(o, c);
  p.dtype = dtype_field(o);
  p.flops_per_s = o.number("tflops", 1e-6, 1e6) * 1e12;
  p.bytes_per_s = o.number("gb_per_s", 1e-6, 1e9) * 1e9;
  o.finish();
  return p;
}

// Groups points into curves: key -> (continuous size, throughput), ascending.
template <typename Key>
std::map<Key, LogLogCurve> make_curves(const std::map<Key, std::map<double, double>>& points) {
  std::map<Key, LogLogCurve> out;
  for (const auto& [key, xy] : points) {
    std::vector<double> x, y;
    for (const auto& [size, rate] : xy) {
      x.push_back(size);
      y.push_back(rate);
    }
    out.emplace(key, LogLogCurve(x, y));
  }
  return out;
}

// Two dtypes are interchangeable on `gpu` when they store elements of the same
// size and the GPU's datasheet gives them the same peak (BF16 and FP16).
bool same_rate(const GpuSpec& gpu, DType a, DType b) {
  return a == b || (bytes_per_element(a) == bytes_per_element(b) && gpu.peak(a) > 0 &&
                    gpu.peak(a) == gpu.peak(b));
}

}  // namespace

GpuCalibration parse_gpu_calibration(const Json& table, const std::string& origin) {
  ConfigObject root(table, origin);
  if (root.string("format") != "moesim-gpu-calibration") {
    throw_config_error(root.field_path("format"), "expected \"moesim-gpu-calibration\"");
  }
  root.integer("version", 1, 1);
  GpuCalibration c;
  c.origin = origin;
  const Json& applies = root.value("applies_to");
  if (!applies.is_array() || applies.empty()) {
    throw_config_error(root.field_path("applies_to"), "expected a non-empty array of GPU names");
  }
  for (size_t i = 0; i < applies.size(); ++i) {
    c.applies_to.push_back(expect_string(applies[i], join_path(root.field_path("applies_to"), i)));
  }
  root.string_or("applies_to_note", "");
  parse_sources(root.value("sources"), root.field_path("sources"), c);
  const std::pair<const char*, GemmList> gemm_lists[] = {
      {"gemm", GemmList::kDense},
      {"grouped_gemm", GemmList::kGrouped},
      {"wgrad_gemm", GemmList::kWgrad},
      {"grouped_wgrad_gemm", GemmList::kGroupedWgrad}};
  for (const auto& [key, kind] : gemm_lists) {
    if (root.has(key)) parse_gemm_points(root.value(key), root.field_path(key), kind, c);
  }
  if (root.has("attention")) {
    parse_attention_points(root.value("attention"), root.field_path("attention"), c);
  }
  if (root.has("memory_bound"))
    c.memory_bytes_per_s = parse_memory_bound(root.object("memory_bound"));
  if (root.has("mla_decode")) c.mla_decode = parse_mla_decode(root.object("mla_decode"), c);
  root.finish();
  return c;
}

std::vector<std::string> builtin_gpu_calibration_names() {
  std::vector<std::string> names;
  for (const EmbeddedFile& f : gpu_calibration_files::embedded_files()) {
    const GpuCalibration c =
        parse_gpu_calibration(parse_json(f.content, std::string(f.name)), std::string(f.name));
    names.insert(names.end(), c.applies_to.begin(), c.applies_to.end());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<GpuCalibration> builtin_gpu_calibration(const std::string& gpu_name) {
  // Parsed once per process: sweeps and searches build a cost model per point.
  static const std::vector<GpuCalibration> tables = [] {
    std::vector<GpuCalibration> parsed;
    for (const EmbeddedFile& f : gpu_calibration_files::embedded_files()) {
      const std::string origin = "built-in " + std::string(f.name);
      parsed.push_back(parse_gpu_calibration(parse_json(f.content, origin), origin));
    }
    return parsed;
  }();
  for (const GpuCalibration& c : tables) {
    if (std::find(c.applies_to.begin(), c.applies_to.end(), gpu_name) != c.applies_to.end()) {
      return c;
    }
  }
  return std::nullopt;
}

double AttentionShape::flops() const {
  const double s = static_cast<double>(seq_len);
  return 4.0 * batch * s * s * heads * head_dim * (causal ? 0.5 : 1.0);
}

double AttentionShape::bytes() const {
  return 4.0 * batch * static_cast<double>(seq_len) * heads * head_dim * bytes_per_element(dtype);
}

AttentionKernel AttentionShape::kernel() const {
  return {.flops = flops(),
          .bytes = bytes(),
          .head_dim = head_dim,
          .span = seq_len,
          .causal = causal,
          .pass = AttentionKernel::Pass::kForward,
          .dtype = dtype};
}

GpuCalibratedCostModel::GpuCalibratedCostModel(const GpuSpec& gpu, const GpuCalibration& c)
    : gpu_(gpu),
      roofline_(gpu),
      memory_bytes_per_s_(c.memory_bytes_per_s),
      mla_decode_(c.mla_decode) {
  std::map<CurveKey, std::map<double, double>> gemm, grouped, wgrad, grouped_wgrad;
  std::map<AttentionKey, std::map<double, double>> attention;
  for (const GemmPoint& p : c.gemm) gemm[{p.dtype, p.n, p.k}][p.m] = p.flops_per_s;
  for (const GemmPoint& p : c.grouped_gemm) grouped[{p.dtype, p.n, p.k}][p.m] = p.flops_per_s;
  for (const GemmPoint& p : c.wgrad_gemm) wgrad[{p.dtype, p.m, p.n}][p.k] = p.flops_per_s;
  for (const GemmPoint& p : c.grouped_wgrad_gemm) {
    grouped_wgrad[{p.dtype, p.m, p.n}][p.k] = p.flops_per_s;
  }
  for (const AttentionPoint& p : c.attention) {
    attention[{p.dtype, p.head_dim, p.value_head_dim, p.causal, p.backward}][p.seq_len] =
        p.flops_per_s;
  }
  gemm_ = make_curves(gemm);
  grouped_ = make_curves(grouped);
  attention_ = make_curves(attention);
  wgrad_ = make_curves(wgrad);
  grouped_wgrad_ = make_curves(grouped_wgrad);
}

std::optional<double> GpuCalibratedCostModel::lookup(const Curves& curves, int64_t a, int64_t b,
                                                     double x, DType dtype, bool hold_ends) const {
  // The query's own dtype first, then an interchangeable one.
  const auto usable = [&](Curves::const_iterator it) {
    return it != curves.end() && (hold_ends || it->second.covers(x));
  };
  if (const auto it = curves.find({dtype, a, b}); usable(it)) return it->second.at(x);
  for (DType t : kAllDTypes) {
    if (t == dtype || !same_rate(gpu_, t, dtype)) continue;
    const auto it = curves.find({t, a, b});
    if (usable(it)) return it->second.at(x);
  }
  return std::nullopt;
}

std::optional<double> GpuCalibratedCostModel::gemm_flops_per_s(int64_t m, int64_t n, int64_t k,
                                                               DType dtype) const {
  return lookup(gemm_, n, k, static_cast<double>(m), dtype);
}

std::optional<double> GpuCalibratedCostModel::grouped_gemm_flops_per_s(int64_t m_per_group,
                                                                       int64_t n, int64_t k,
                                                                       DType dtype) const {
  return lookup(grouped_, n, k, static_cast<double>(m_per_group), dtype);
}

std::optional<double> GpuCalibratedCostModel::attention_forward_rate(DType dtype, int64_t head_dim,
                                                                     bool causal,
                                                                     double span) const {
  // The MHA/GQA curves of this dtype and mask on either side of head_dim
  // (map order: ascending head_dim within a dtype).
  const AttentionCurves::value_type *lower = nullptr, *upper = nullptr;
  for (const auto& entry : attention_) {
    const auto& [key_dtype, hd, value_hd, key_causal, backward] = entry.first;
    if (key_dtype != dtype || hd != value_hd || key_causal != causal || backward) continue;
    if (hd <= head_dim) lower = &entry;
    if (hd >= head_dim && !upper) upper = &entry;
  }
  if (!lower && !upper) return std::nullopt;
  if (!lower || !upper || lower == upper) return (lower ? lower : upper)->second.at(span);
  // Log-log between the two measured head dims, as along a curve.
  const double lo = static_cast<double>(std::get<1>(lower->first)),
               hi = static_cast<double>(std::get<1>(upper->first));
  const double w = std::log(head_dim / lo) / std::log(hi / lo);
  return std::exp((1 - w) * std::log(lower->second.at(span)) +
                  w * std::log(upper->second.at(span)));
}

std::optional<double> GpuCalibratedCostModel::attention_backward_ratio(DType dtype, bool causal,
                                                                       double span) const {
  // A pair with the kernel's own mask first, then one with the other mask:
  // the backward's extra work (recomputing the scores, accumulating dK and
  // dV) is the same with or without it.
  for (const bool mask : {causal, !causal}) {
    for (const auto& [key, backward_curve] : attention_) {
      const auto& [key_dtype, hd, value_hd, key_causal, backward] = key;
      if (key_causal != mask || !backward) continue;
      if (key_dtype != dtype && !same_rate(gpu_, key_dtype, dtype)) continue;
      const auto forward = attention_.find({key_dtype, hd, value_hd, key_causal, false});
      if (forward != attention_.end()) return backward_curve.at(span) / forward->second.at(span);
    }
  }
  return std::nullopt;
}

std::optional<double> GpuCalibratedCostModel::attention_flops_per_s(
    int64_t head_dim, bool causal, int64_t span, DType dtype, AttentionKernel::Pass pass) const {
  // The query's own dtype first, then an interchangeable one (as lookup()).
  if (span < 1) return std::nullopt;
  const double x = static_cast<double>(span);
  std::optional<double> rate = attention_forward_rate(dtype, head_dim, causal, x);
  for (DType t : kAllDTypes) {
    if (rate) break;
    if (t != dtype && same_rate(gpu_, t, dtype))
      rate = attention_forward_rate(t, head_dim, causal, x);
  }
  if (!rate) return std::nullopt;
  if (pass == AttentionKernel::Pass::kBackward) {
    *rate *= attention_backward_ratio(dtype, causal, x).value_or(1.0);
  }
  return rate;
}

double GpuCalibratedCostModel::attention_seconds(const AttentionKernel& kernel) const {
  if (!(kernel.flops > 0)) return 0;
  const auto rate =
      attention_flops_per_s(kernel.head_dim, kernel.causal, kernel.span, kernel.dtype, kernel.pass);
  if (!rate) return roofline_.fused_kernel_seconds(kernel.flops, kernel.bytes, kernel.dtype);
  return kernel.flops / *rate + gpu_.launch_overhead_s;
}

std::optional<double> GpuCalibratedCostModel::wgrad_gemm_flops_per_s(int64_t tokens, int64_t out,
                                                                     int64_t in,
                                                                     DType dtype) const {
  return lookup(wgrad_, in, out, static_cast<double>(tokens), dtype, true);
}

std::optional<double> GpuCalibratedCostModel::grouped_wgrad_gemm_flops_per_s(
    int64_t tokens_per_group, int64_t out, int64_t in, DType dtype) const {
  return lookup(grouped_wgrad_, in, out, static_cast<double>(tokens_per_group), dtype, true);
}

double GpuCalibratedCostModel::gemm_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const auto rate = gemm_flops_per_s(m, n, k, dtype);
  if (!rate) return roofline_.gemm_seconds(m, n, k, dtype);
  return 2.0 * static_cast<double>(m) * n * k / *rate + gpu_.launch_overhead_s;
}

double GpuCalibratedCostModel::grouped_gemm_seconds(std::span<const int64_t> m_per_group, int64_t n,
                                                    int64_t k, DType dtype) const {
  // One launch; groups run back to back on the whole GPU, each at the rate
  // measured for its size (or the roofline's, outside the measured range).
  double s = gpu_.launch_overhead_s;
  for (int64_t m : m_per_group) {
    if (m <= 0 || n <= 0 || k <= 0) continue;
    const auto rate = grouped_gemm_flops_per_s(m, n, k, dtype);
    s += rate ? 2.0 * static_cast<double>(m) * n * k / *rate
              : roofline_.gemm_body_seconds(m, n, k, dtype);
  }
  return s;
}

double GpuCalibratedCostModel::wgrad_gemm_seconds(int64_t tokens, int64_t out, int64_t in,
                                                  DType dtype) const {
  if (tokens <= 0 || out <= 0 || in <= 0) return 0;
  const auto rate = wgrad_gemm_flops_per_s(tokens, out, in, dtype);
  if (!rate) return gemm_seconds(tokens, out, in, dtype);
  return 2.0 * static_cast<double>(tokens) * out * in / *rate + gpu_.launch_overhead_s;
}

double GpuCalibratedCostModel::grouped_wgrad_gemm_seconds(std::span<const int64_t> tokens_per_group,
                                                          int64_t out, int64_t in,
                                                          DType dtype) const {
  // One launch, as grouped_gemm_seconds; without a wgrad curve for the shape
  // each group runs at its forward rate.
  double s = gpu_.launch_overhead_s;
  for (int64_t tokens : tokens_per_group) {
    if (tokens <= 0 || out <= 0 || in <= 0) continue;
    auto rate = grouped_wgrad_gemm_flops_per_s(tokens, out, in, dtype);
    if (!rate) rate = grouped_gemm_flops_per_s(tokens, out, in, dtype);
    s += rate ? 2.0 * static_cast<double>(tokens) * out * in / *rate
              : roofline_.gemm_body_seconds(tokens, out, in, dtype);
  }
  return s;
}

double GpuCalibratedCostModel::memory_bound_seconds(double bytes) const {
  if (!(bytes > 0)) return 0;
  if (!memory_bytes_per_s_ || !memory_bytes_per_s_->covers(bytes)) {
    return roofline_.memory_bound_seconds(bytes);
  }
  return bytes / memory_bytes_per_s_->at(bytes) + gpu_.launch_overhead_s;
}

double GpuCalibratedCostModel::fused_kernel_seconds(double flops, double bytes, DType dtype) const {
  return roofline_.fused_kernel_seconds(flops, bytes, dtype);
}

double GpuCalibratedCostModel::mla_decode_seconds(double flops, double bytes, DType dtype) const {
  if (!mla_decode_ || !same_rate(gpu_, mla_decode_->dtype, dtype)) {
    return roofline_.fused_kernel_seconds(flops, bytes, dtype);
  }
  if (!(flops > 0) && !(bytes > 0)) return 0;
  return std::max(std::max(flops, 0.0) / mla_decode_->flops_per_s,
                  std::max(bytes, 0.0) / mla_decode_->bytes_per_s) +
         gpu_.launch_overhead_s;
}

std::unique_ptr<ComputeCostModel> make_compute_cost(const GpuSpec& gpu,
                                                    const std::string& calibration) {
  if (calibration.empty()) return std::make_unique<RooflineCostModel>(gpu);
  if (calibration == "auto") {
    if (auto table = builtin_gpu_calibration(gpu.name)) {
      return std::make_unique<GpuCalibratedCostModel>(gpu, *table);
    }
    return std::make_unique<RooflineCostModel>(gpu);
  }
  if (calibration == "builtin") {
    auto table = builtin_gpu_calibration(gpu.name);
    if (!table) {
      std::string known;
      for (const auto& n : builtin_gpu_calibration_names())
        known += (known.empty() ? "" : ", ") + n;
      throw Error(
          fmt::format("no built-in GPU calibration for '{}' (built-in: {})", gpu.name, known));
    }
    return std::make_unique<GpuCalibratedCostModel>(gpu, *table);
  }
  const Json doc = load_json_file(calibration);
  if (doc.is_object() && doc.contains("format") && doc["format"] == "moesim-calibration") {
    return std::make_unique<CalibratedCostModel>(doc, calibration);
  }
  const GpuCalibration table = parse_gpu_calibration(doc, calibration);
  if (std::find(table.applies_to.begin(), table.applies_to.end(), gpu.name) ==
      table.applies_to.end()) {
    std::string listed;
    for (const auto& n : table.applies_to) listed += (listed.empty() ? "" : ", ") + n;
    throw_config_error(join_path(calibration, "applies_to"),
                       fmt::format("lists {}, not this scenario's GPU '{}'", listed, gpu.name));
  }
  return std::make_unique<GpuCalibratedCostModel>(gpu, table);
}

}  // namespace moesim::hw
