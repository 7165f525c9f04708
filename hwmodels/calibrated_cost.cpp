#include "hwmodels/calibrated_cost.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "hwmodels/log_interpolation.h"
#include "sim/core/error.h"

namespace moesim::hw {

namespace {

void expect_len(const Json& v, size_t n, const std::string& path) {
  if (!v.is_array() || v.size() != n) {
    throw_config_error(path, fmt::format("expected an array of {} entries", n));
  }
}

// Validates one GEMM table ("gemm" or an entry of "gemm_by_dtype").
CalibratedCostModel::GemmTable parse_gemm_table(ConfigObject& gemm) {
  CalibratedCostModel::GemmTable t;
  t.dtype = *dtype_from_name(gemm.choice("dtype", {"fp32", "tf32", "bf16", "fp16", "fp8"}));
  t.log_m = log_axis_from_json(gemm.value("m"), gemm.field_path("m"));
  t.log_n = log_axis_from_json(gemm.value("n"), gemm.field_path("n"));
  t.log_k = log_axis_from_json(gemm.value("k"), gemm.field_path("k"));
  const Json& table = gemm.value("flops_per_s");
  const std::string tpath = gemm.field_path("flops_per_s");
  expect_len(table, t.log_m.size(), tpath);
  for (size_t i = 0; i < t.log_m.size(); ++i) {
    const std::string pi = join_path(tpath, i);
    expect_len(table[i], t.log_n.size(), pi);
    for (size_t j = 0; j < t.log_n.size(); ++j) {
      const std::string pj = join_path(pi, j);
      expect_len(table[i][j], t.log_k.size(), pj);
      for (size_t l = 0; l < t.log_k.size(); ++l) {
        t.log_flops.push_back(
            std::log(expect_number(table[i][j][l], join_path(pj, l), 1e-300, 1e300)));
      }
    }
  }
  gemm.finish();
  return t;
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
  // Descriptions and checks for the reader of the file, not read here.
  for (const char* key : {"units", "grouped_gemm", "not_measured", "timing"}) {
    if (root.has(key)) root.value(key);
  }
  if (root.has("quick")) root.boolean("quick");
  if (root.has("seconds")) root.number("seconds", 0, 1e9);
  peak_flops_per_s_ = root.number("peak_gemm_flops_per_s", 1e-300, 1e300);
  launch_overhead_s_ = root.number("launch_overhead_s", 0, 1);

  ConfigObject gemm = root.object("gemm");
  gemm_.push_back(parse_gemm_table(gemm));
  if (root.has("gemm_by_dtype")) {
    const Json& more = root.value("gemm_by_dtype");
    const std::string mpath = root.field_path("gemm_by_dtype");
    if (!more.is_array()) throw_config_error(mpath, "expected an array of GEMM tables");
    for (size_t i = 0; i < more.size(); ++i) {
      ConfigObject table(more[i], join_path(mpath, i));
      gemm_.push_back(parse_gemm_table(table));
      for (size_t j = 0; j + 1 < gemm_.size(); ++j) {
        if (gemm_[j].dtype == gemm_.back().dtype) {
          throw_config_error(
              table.field_path("dtype"),
              fmt::format("a second {} table (one per dtype)", dtype_name(gemm_.back().dtype)));
        }
      }
    }
  }

  ConfigObject mem = root.object("memory_bound");
  const Json& bytes_json = mem.value("bytes");
  log_axis_from_json(bytes_json, mem.field_path("bytes"));  // validates: positive, ascending
  const Json& bw = mem.value("bytes_per_s");
  expect_len(bw, bytes_json.size(), mem.field_path("bytes_per_s"));
  std::vector<double> bytes, bytes_per_s;
  for (size_t i = 0; i < bw.size(); ++i) {
    bytes.push_back(bytes_json[i].get<double>());
    bytes_per_s.push_back(
        expect_number(bw[i], join_path(mem.field_path("bytes_per_s"), i), 1e-300, 1e300));
  }
  memory_bytes_per_s_.emplace(bytes, bytes_per_s);
  if (mem.has("samples")) mem.value("samples");
  mem.finish();
  root.finish();
}

CalibratedCostModel CalibratedCostModel::from_file(const std::string& path) {
  return CalibratedCostModel(load_json_file(path), path);
}

const CalibratedCostModel::GemmTable& CalibratedCostModel::table_for(DType dtype) const {
  for (const GemmTable& t : gemm_) {
    if (t.dtype == dtype) return t;
  }
  return gemm_.front();
}

std::vector<DType> CalibratedCostModel::gemm_dtypes() const {
  std::vector<DType> out;
  for (const GemmTable& t : gemm_) out.push_back(t.dtype);
  return out;
}

double CalibratedCostModel::gemm_flops_per_s(int64_t m, int64_t n, int64_t k) const {
  return gemm_flops_per_s(m, n, k, gemm_.front().dtype);
}

double CalibratedCostModel::gemm_flops_per_s(int64_t m, int64_t n, int64_t k, DType dtype) const {
  const GemmTable& t = table_for(dtype);
  const LogBracket bm = bracket_log(t.log_m, std::log(static_cast<double>(m)));
  const LogBracket bn = bracket_log(t.log_n, std::log(static_cast<double>(n)));
  const LogBracket bk = bracket_log(t.log_k, std::log(static_cast<double>(k)));
  const size_t nn = t.log_n.size(), nk = t.log_k.size();
  double acc = 0;
  for (int di = 0; di < 2; ++di) {
    const double wi = di ? bm.upper_weight : 1 - bm.upper_weight;
    if (wi == 0) continue;
    for (int dj = 0; dj < 2; ++dj) {
      const double wj = dj ? bn.upper_weight : 1 - bn.upper_weight;
      if (wj == 0) continue;
      for (int dl = 0; dl < 2; ++dl) {
        const double wl = dl ? bk.upper_weight : 1 - bk.upper_weight;
        if (wl == 0) continue;
        acc += wi * wj * wl *
               t.log_flops[((bm.lower_index + di) * nn + bn.lower_index + dj) * nk +
                           bk.lower_index + dl];
      }
    }
  }
  return std::exp(acc);
}

double CalibratedCostModel::gemm_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const {
  if (m <= 0 || n <= 0 || k <= 0) return 0.0;
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * k;
  return flops / gemm_flops_per_s(m, n, k, dtype);
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
  return bytes / memory_bytes_per_s_->at(bytes);
}

double CalibratedCostModel::fused_kernel_seconds(double flops, double bytes, DType) const {
  return std::max(flops / peak_flops_per_s_, memory_bound_seconds(bytes));
}

}  // namespace moesim::hw
