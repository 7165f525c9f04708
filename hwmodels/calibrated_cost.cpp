#include "hwmodels/calibrated_cost.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moesim::hw {
namespace {

// A strictly ascending axis of positive numbers, stored as logs.
std::vector<double> log_axis(const Json& v, const std::string& path) {
  if (!v.is_array() || v.empty()) throw_config_error(path, "expected a non-empty array");
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const double x = expect_number(v[i], join_path(path, i), 1e-300, 1e300);
    if (!out.empty() && std::log(x) <= out.back()) {
      throw_config_error(join_path(path, i), "values must be strictly ascending");
    }
    out.push_back(std::log(x));
  }
  return out;
}

// Position of x on `axis`: lower index and weight of the upper neighbour,
// clamped to the ends (constant extrapolation).
struct Bracket {
  size_t lo;
  double w;
};
Bracket bracket(const std::vector<double>& axis, double x) {
  if (axis.size() == 1 || x <= axis.front()) return {0, 0.0};
  if (x >= axis.back()) return {axis.size() - 1, 0.0};
  const size_t hi = std::upper_bound(axis.begin(), axis.end(), x) - axis.begin();
  const size_t lo = hi - 1;
  return {lo, (x - axis[lo]) / (axis[hi] - axis[lo])};
}

}  // namespace

CalibratedCostModel::CalibratedCostModel(const Json& calibration, const std::string& source) {
  ConfigObject root(calibration, source);
  if (root.string("format") != "moesim-calibration") {
    throw_config_error(root.field_path("format"), "expected \"moesim-calibration\"");
  }
  root.integer("version", 1, 1);
  device_ = root.string("device");
  root.value("machine");
  if (root.has("quick")) root.boolean("quick");
  if (root.has("seconds")) root.number("seconds", 0, 1e9);
  peak_flops_per_s_ = root.number("peak_gemm_flops_per_s", 1e-300, 1e300);
  launch_overhead_s_ = root.number("launch_overhead_s", 0, 1);

  ConfigObject gemm = root.object("gemm");
  gemm.choice("dtype", {"fp32"});
  log_m_ = log_axis(gemm.value("m"), gemm.field_path("m"));
  log_n_ = log_axis(gemm.value("n"), gemm.field_path("n"));
  log_k_ = log_axis(gemm.value("k"), gemm.field_path("k"));
  const Json& table = gemm.value("flops_per_s");
  const std::string tpath = gemm.field_path("flops_per_s");
  auto expect_len = [](const Json& v, size_t n, const std::string& path) {
    if (!v.is_array() || v.size() != n) {
      throw_config_error(path, fmt::format("expected an array of {} entries", n));
    }
  };
  expect_len(table, log_m_.size(), tpath);
  for (size_t i = 0; i < log_m_.size(); ++i) {
    const std::string pi = join_path(tpath, i);
    expect_len(table[i], log_n_.size(), pi);
    for (size_t j = 0; j < log_n_.size(); ++j) {
      const std::string pj = join_path(pi, j);
      expect_len(table[i][j], log_k_.size(), pj);
      for (size_t l = 0; l < log_k_.size(); ++l) {
        log_flops_.push_back(
            std::log(expect_number(table[i][j][l], join_path(pj, l), 1e-300, 1e300)));
      }
    }
  }
  gemm.finish();

  ConfigObject mem = root.object("memory_bound");
  log_bytes_ = log_axis(mem.value("bytes"), mem.field_path("bytes"));
  const Json& bw = mem.value("bytes_per_s");
  expect_len(bw, log_bytes_.size(), mem.field_path("bytes_per_s"));
  for (size_t i = 0; i < bw.size(); ++i) {
    log_bytes_per_s_.push_back(
        std::log(expect_number(bw[i], join_path(mem.field_path("bytes_per_s"), i), 1e-300, 1e300)));
  }
  if (mem.has("samples")) mem.value("samples");
  mem.finish();
  root.finish();
}

CalibratedCostModel CalibratedCostModel::from_file(const std::string& path) {
  return CalibratedCostModel(load_json_file(path), path);
}

double CalibratedCostModel::gemm_flops_per_s(int64_t m, int64_t n, int64_t k) const {
  const Bracket bm = bracket(log_m_, std::log(static_cast<double>(m)));
  const Bracket bn = bracket(log_n_, std::log(static_cast<double>(n)));
  const Bracket bk = bracket(log_k_, std::log(static_cast<double>(k)));
  const size_t nn = log_n_.size(), nk = log_k_.size();
  double acc = 0;
  for (int di = 0; di < 2; ++di) {
    const double wi = di ? bm.w : 1 - bm.w;
    if (wi == 0) continue;
    for (int dj = 0; dj < 2; ++dj) {
      const double wj = dj ? bn.w : 1 - bn.w;
      if (wj == 0) continue;
      for (int dl = 0; dl < 2; ++dl) {
        const double wl = dl ? bk.w : 1 - bk.w;
        if (wl == 0) continue;
        acc += wi * wj * wl * log_flops_[((bm.lo + di) * nn + bn.lo + dj) * nk + bk.lo + dl];
      }
    }
  }
  return std::exp(acc);
}

double CalibratedCostModel::gemm_seconds(int64_t m, int64_t n, int64_t k, DType) const {
  if (m <= 0 || n <= 0 || k <= 0) return 0.0;
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * k;
  return flops / gemm_flops_per_s(m, n, k);
}

double CalibratedCostModel::grouped_gemm_seconds(std::span<const int64_t> m_per_group, int64_t n,
                                                 int64_t k, DType dtype) const {
  // The CPU kernel runs one BLAS call per non-empty group, so the groups'
  // times add up, each at its own (small-m) efficiency.
  double s = 0;
  for (int64_t m : m_per_group) s += gemm_seconds(m, n, k, dtype);
  return s;
}

double CalibratedCostModel::memory_bound_seconds(double bytes) const {
  if (!(bytes > 0)) return 0.0;
  const Bracket b = bracket(log_bytes_, std::log(bytes));
  double lbw = log_bytes_per_s_[b.lo];
  if (b.w > 0) lbw += b.w * (log_bytes_per_s_[b.lo + 1] - lbw);
  return bytes / std::exp(lbw);
}

double CalibratedCostModel::fused_kernel_seconds(double flops, double bytes, DType) const {
  return std::max(flops / peak_flops_per_s_, memory_bound_seconds(bytes));
}

}  // namespace moesim::hw
