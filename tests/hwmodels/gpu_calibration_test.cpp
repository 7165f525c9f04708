// GpuCalibratedCostModel and its tables: the shipped table loads and every
// published point is reproduced exactly; between points the throughput is the
// log-log interpolation and never leaves its neighbours' range; outside what
// was measured the roofline prices the operation, to the last bit; bad tables
// are one-line errors naming the entry.

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

#include <catch2/catch.hpp>

#include "hwmodels/gpu.h"
#include "hwmodels/gpu_calibration.h"
#include "hwmodels/roofline_cost.h"
#include "sim/core/error.h"

using moesim::Json;
using namespace moesim::hw;

namespace {

GpuSpec h100() {
  return resolve_gpu(Json("h100-sxm"), "gpu");
}

// A small table: one FP8 GEMM curve over m in {64, 4096} at (n, k) = (1024, 2048),
// one BF16 grouped curve, one attention curve; throughput quadruples over m.
Json small_table() {
  Json j = {{"format", "moesim-gpu-calibration"}, {"version", 1}, {"applies_to", {"h100-sxm"}}};
  j["sources"] = {{"bench", {{"url", "https://example.org/bench"}, {"measured_on", "H100"}}}};
  j["gemm"] = Json::array({{{"source", "bench"},
                            {"dtype", "fp8"},
                            {"m", 64},
                            {"n", 1024},
                            {"k", 2048},
                            {"tflops", 100}},
                           {{"source", "bench"},
                            {"dtype", "fp8"},
                            {"m", 4096},
                            {"n", 1024},
                            {"k", 2048},
                            {"tflops", 400}}});
  j["grouped_gemm"] = Json::array({{{"source", "bench"},
                                    {"layout", "contiguous"},
                                    {"dtype", "bf16"},
                                    {"groups", 4},
                                    {"m_per_group", 256},
                                    {"n", 1024},
                                    {"k", 2048},
                                    {"tflops", 300}},
                                   {{"source", "bench"},
                                    {"layout", "masked"},
                                    {"dtype", "bf16"},
                                    {"groups", 2},
                                    {"m_per_group", 1024},
                                    {"n", 1024},
                                    {"k", 2048},
                                    {"tflops", 600}}});
  j["attention"] = Json::array({{{"source", "bench"},
                                 {"pass", "forward"},
                                 {"dtype", "fp16"},
                                 {"head_dim", 128},
                                 {"causal", true},
                                 {"seq_len", 1024},
                                 {"tflops", 400}},
                                {{"source", "bench"},
                                 {"pass", "forward"},
                                 {"dtype", "fp16"},
                                 {"head_dim", 128},
                                 {"causal", true},
                                 {"seq_len", 16384},
                                 {"tflops", 600}}});
  return j;
}

GpuCalibration builtin_h100() {
  auto table = builtin_gpu_calibration("h100-sxm");
  REQUIRE(table.has_value());
  return *table;
}

}  // namespace

TEST_CASE("the shipped table covers H100 and H800, and every point names a known source") {
  const GpuCalibration table = builtin_h100();
  CHECK(table.applies_to == std::vector<std::string>{"h100-sxm", "h800"});
  CHECK(builtin_gpu_calibration("h800").has_value());
  CHECK_FALSE(builtin_gpu_calibration("h200").has_value());  // faster HBM: not the same GPU
  CHECK(builtin_gpu_calibration_names() == std::vector<std::string>{"h100-sxm", "h800"});
  // DeepGEMM: 18 dense + 4 contiguous + 6 masked; MAMF: 2; FlashAttention-3: 3 head dims x
  // causal/non-causal x 6 lengths, less the one bar label hidden by the figure's legend;
  // Megatron-Core MoE report Table 9: forward and backward at 4k and 16k.
  CHECK(table.gemm.size() == 20);
  CHECK(table.grouped_gemm.size() == 10);
  CHECK(table.attention.size() == 35 + 4);
  // DeepGEMM PR #95: 9 dense and 4 K-grouped weight-gradient points.
  CHECK(table.wgrad_gemm.size() == 9);
  CHECK(table.grouped_wgrad_gemm.size() == 4);
  for (const auto& p : table.gemm) CHECK_FALSE(table.sources.at(p.source).url.empty());
  for (const auto& [id, s] : table.sources) CHECK_FALSE(s.measured_on.empty());
  // Spot checks against the sources as read (DeepGEMM README @327ec92f; FA3 Figure 5).
  CHECK(table.gemm[15].m == 4096);
  CHECK(table.gemm[15].n == 7168);
  CHECK(table.gemm[15].k == 16384);
  CHECK(table.gemm[15].flops_per_s == 1520e12);
  CHECK(table.attention[34].flops_per_s == 642e12);        // head_dim 256, causal, 16k
  const AttentionPoint& mla_bwd = table.attention.back();  // Table 9, Hopper, 16k backward
  CHECK((mla_bwd.backward && mla_bwd.head_dim == 192 && mla_bwd.value_head_dim == 128));
  CHECK(mla_bwd.flops_per_s == 523e12);
}

TEST_CASE("every published point is reproduced exactly by the calibrated model") {
  const GpuCalibration table = builtin_h100();
  const GpuSpec gpu = h100();
  const GpuCalibratedCostModel model(gpu, table);
  for (const GemmPoint& p : table.gemm) {
    const auto rate = model.gemm_flops_per_s(p.m, p.n, p.k, p.dtype);
    REQUIRE(rate.has_value());
    CHECK(*rate == Approx(p.flops_per_s).epsilon(1e-12));
    CHECK(model.gemm_seconds(p.m, p.n, p.k, p.dtype) ==
          Approx(p.flops() / p.flops_per_s + gpu.launch_overhead_s).epsilon(1e-12));
  }
  for (const GemmPoint& p : table.grouped_gemm) {
    const auto rate = model.grouped_gemm_flops_per_s(p.m, p.n, p.k, p.dtype);
    REQUIRE(rate.has_value());
    CHECK(*rate == Approx(p.flops_per_s).epsilon(1e-12));
    const std::vector<int64_t> groups(p.groups, p.m);
    CHECK(model.grouped_gemm_seconds(groups, p.n, p.k, p.dtype) ==
          Approx(p.flops() / p.flops_per_s + gpu.launch_overhead_s).epsilon(1e-12));
  }
  // Attention: every MHA forward point; the backward/forward pair (MLA's,
  // cuDNN) prices no kernel of its own but its ratio, checked below.
  for (const AttentionPoint& p : table.attention) {
    if (p.backward || p.value_head_dim != p.head_dim) continue;
    const auto rate = model.attention_flops_per_s(p.head_dim, p.causal, p.seq_len, p.dtype);
    REQUIRE(rate.has_value());
    CHECK(*rate == Approx(p.flops_per_s).epsilon(1e-12));
  }
  // Weight gradients: m = input features, n = output features, k = tokens.
  for (const GemmPoint& p : table.wgrad_gemm) {
    CHECK(model.wgrad_gemm_seconds(p.k, p.n, p.m, p.dtype) ==
          Approx(p.flops() / p.flops_per_s + gpu.launch_overhead_s).epsilon(1e-12));
  }
  for (const GemmPoint& p : table.grouped_wgrad_gemm) {
    const std::vector<int64_t> groups(p.groups, p.k);
    CHECK(model.grouped_wgrad_gemm_seconds(groups, p.n, p.m, p.dtype) ==
          Approx(p.flops() / p.flops_per_s + gpu.launch_overhead_s).epsilon(1e-12));
  }
}

// DeepGEMM's FP32-accumulating weight-gradient kernels (PR #95) against its
// forward kernels of the same layers: the routed experts' up-projection
// (7,168 in, 4,096 out) at 8,192 tokens per expert runs at 1,044 TFLOPS, not
// the forward 1,346; token counts beyond the curve hold its ends; a shape
// without a wgrad curve is priced as its forward GEMM, and a model without
// wgrad tables (the roofline) does the same.
TEST_CASE("weight-gradient GEMMs: their own curves, held ends, forward pricing elsewhere") {
  const GpuSpec gpu = h100();
  const GpuCalibratedCostModel model(gpu, builtin_h100());
  const auto fp8 = DType::kFp8;
  const std::vector<int64_t> experts(4, 8192);
  const double flops = 4 * 2.0 * 8192 * 4096 * 7168;
  CHECK(model.grouped_wgrad_gemm_seconds(experts, 4096, 7168, fp8) ==
        Approx(flops / 1044e12 + gpu.launch_overhead_s));
  CHECK(model.grouped_gemm_seconds(experts, 4096, 7168, fp8) ==
        Approx(flops / 1346e12 + gpu.launch_overhead_s));
  // Beyond the measured 4,096-8,192 tokens: the nearest end's rate.
  const std::vector<int64_t> many(1, 16384), few(1, 1024);
  CHECK(model.grouped_wgrad_gemm_seconds(many, 4096, 7168, fp8) ==
        Approx(2.0 * 16384 * 4096 * 7168 / 1044e12 + gpu.launch_overhead_s));
  CHECK(model.grouped_wgrad_gemm_seconds(few, 4096, 7168, fp8) ==
        Approx(2.0 * 1024 * 4096 * 7168 / 939e12 + gpu.launch_overhead_s));
  // Dense: the output projection (16,384 in, 7,168 out) over 4,096 tokens.
  CHECK(model.wgrad_gemm_seconds(4096, 7168, 16384, fp8) ==
        Approx(2.0 * 4096 * 7168 * 16384 / 994e12 + gpu.launch_overhead_s));
  // No wgrad curve for this shape, or for BF16: the forward GEMM's price.
  CHECK(model.wgrad_gemm_seconds(4096, 7168, 1000, fp8) ==
        model.gemm_seconds(4096, 7168, 1000, fp8));
  CHECK(model.wgrad_gemm_seconds(4096, 7168, 16384, DType::kBf16) ==
        model.gemm_seconds(4096, 7168, 16384, DType::kBf16));
  const std::vector<int64_t> bf16_experts(4, 8192);
  CHECK(model.grouped_wgrad_gemm_seconds(bf16_experts, 4096, 7168, DType::kBf16) ==
        model.grouped_gemm_seconds(bf16_experts, 4096, 7168, DType::kBf16));
  const RooflineCostModel roofline(gpu);
  CHECK(roofline.wgrad_gemm_seconds(4096, 7168, 16384, fp8) ==
        roofline.gemm_seconds(4096, 7168, 16384, fp8));
}

TEST_CASE("between points: log-log interpolation, within the neighbours, time rising with size") {
  const GpuCalibratedCostModel model(h100(), parse_gpu_calibration(small_table(), "t.json"));
  // m = 512 is the log-space midpoint of 64 and 4096: the geometric mean of 100 and 400.
  CHECK(*model.gemm_flops_per_s(512, 1024, 2048, DType::kFp8) == Approx(200e12));
  // Both layouts sit on one grouped curve: m_per_group 512 halfway between 256 and 1024.
  CHECK(*model.grouped_gemm_flops_per_s(512, 1024, 2048, DType::kBf16) ==
        Approx(std::sqrt(300e12 * 600e12)));

  // On every shipped curve: throughput stays between the neighbouring points and a
  // GEMM never gets cheaper as m grows.
  const GpuCalibration table = builtin_h100();
  const GpuCalibratedCostModel shipped(h100(), table);
  for (const GemmPoint& p : table.gemm) {
    double last_s = 0;
    for (int64_t m = 64; m <= 4096; m += 37) {
      const auto rate = shipped.gemm_flops_per_s(m, p.n, p.k, p.dtype);
      if (!rate) continue;
      CHECK(*rate >= 206e12 * (1 - 1e-12));  // the lowest point of any covering curve
      CHECK(*rate <= 1520e12 * (1 + 1e-12));
      const double s = shipped.gemm_seconds(m, p.n, p.k, p.dtype);
      CHECK(s >= last_s);
      last_s = s;
    }
  }
  for (const AttentionPoint& p : table.attention) {
    if (p.backward || p.value_head_dim != p.head_dim) continue;
    const auto lo = shipped.attention_flops_per_s(p.head_dim, p.causal, 512, p.dtype);
    const auto hi = shipped.attention_flops_per_s(p.head_dim, p.causal, 16384, p.dtype);
    const auto mid = shipped.attention_flops_per_s(p.head_dim, p.causal, 3000, p.dtype);
    REQUIRE((lo && hi && mid));
    CHECK(*mid >= std::min(*lo, *hi));
    CHECK(*mid <= std::max(*lo, *hi));
  }
}

TEST_CASE("outside the measured range the roofline prices the operation") {
  const GpuSpec gpu = h100();
  const RooflineCostModel roofline(gpu);
  const GpuCalibratedCostModel model(gpu, builtin_h100());
  // Below the smallest and above the largest measured m of a DeepGEMM curve.
  CHECK_FALSE(model.gemm_flops_per_s(32, 4096, 7168, DType::kFp8).has_value());
  CHECK(model.gemm_seconds(32, 4096, 7168, DType::kFp8) ==
        roofline.gemm_seconds(32, 4096, 7168, DType::kFp8));
  CHECK(model.gemm_seconds(8192, 4096, 7168, DType::kFp8) ==
        roofline.gemm_seconds(8192, 4096, 7168, DType::kFp8));
  // An (n, k) no source measured, and a dtype no point has (FP8 points do not price BF16).
  CHECK(model.gemm_seconds(4096, 4000, 7168, DType::kFp8) ==
        roofline.gemm_seconds(4096, 4000, 7168, DType::kFp8));
  CHECK(model.gemm_seconds(4096, 4096, 7168, DType::kBf16) ==
        roofline.gemm_seconds(4096, 4096, 7168, DType::kBf16));
  // Grouped: each group by its own size; the one outside [256, 8192] by the roofline.
  const std::vector<int64_t> groups = {1000, 100, 0};
  const double rate = *model.grouped_gemm_flops_per_s(1000, 4096, 7168, DType::kFp8);
  CHECK(model.grouped_gemm_seconds(groups, 4096, 7168, DType::kFp8) ==
        Approx(gpu.launch_overhead_s + 2.0 * 1000 * 4096 * 7168 / rate +
               roofline.gemm_body_seconds(100, 4096, 7168, DType::kFp8)));
  // Attention in a dtype with no curve of its own or at its rate (FP32).
  AttentionShape fp32{.batch = 1, .heads = 16, .head_dim = 128, .seq_len = 4096};
  fp32.dtype = DType::kFp32;
  CHECK(model.attention_seconds(fp32.kernel()) ==
        roofline.fused_kernel_seconds(fp32.flops(), fp32.bytes(), fp32.dtype));
  // No memory-bound table is shipped: streaming kernels stay on the roofline.
  CHECK(model.memory_bound_seconds(1e9) == roofline.memory_bound_seconds(1e9));
}

TEST_CASE("BF16 uses FP16 points only where the GPU runs both at the same rate") {
  const GpuCalibration table = builtin_h100();
  const GpuSpec gpu = h100();
  const GpuCalibratedCostModel model(gpu, table);
  CHECK(*model.attention_flops_per_s(128, true, 4096, DType::kBf16) == Approx(579e12));
  CHECK_FALSE(model.attention_flops_per_s(128, true, 4096, DType::kFp32).has_value());
  GpuSpec odd = gpu;
  odd.peak_flops[static_cast<size_t>(DType::kBf16)] /= 2;
  const GpuCalibratedCostModel odd_model(odd, table);
  CHECK_FALSE(odd_model.attention_flops_per_s(128, true, 4096, DType::kBf16).has_value());
}

// Without a shape a fused kernel is the roofline's: attention, whose shape
// sets its rate, goes through attention_seconds instead (so a 4,096-token
// causal head-dim-128 kernel costs FA3's 579 TFLOPS there, not here).
TEST_CASE("fused kernels without a shape are the roofline's") {
  const GpuSpec gpu = h100();
  const GpuCalibratedCostModel model(gpu, builtin_h100());
  const RooflineCostModel roofline(gpu);
  for (int64_t seq : {512, 4096, 32768}) {
    const AttentionShape shape{.batch = 2, .heads = 16, .head_dim = 128, .seq_len = seq};
    CHECK(model.fused_kernel_seconds(shape.flops(), shape.bytes(), DType::kBf16) ==
          roofline.fused_kernel_seconds(shape.flops(), shape.bytes(), DType::kBf16));
  }
  const AttentionShape s{.batch = 1, .heads = 16, .head_dim = 128, .seq_len = 4096};
  CHECK(model.attention_seconds(s.kernel()) == Approx(s.flops() / 579e12 + gpu.launch_overhead_s));
  CHECK(model.fused_kernel_seconds(0, 0, DType::kBf16) == 0);
}

// Attention kernels by their shape. FlashAttention-3 (Figure 5) measured head
// dims 64, 128 and 256 forward: a head_dim between two is the log-log mix of
// their rates at the same length, one beyond them the nearest; lengths beyond
// 512-16k hold the curve's end. The backward runs at the forward's rate times
// cuDNN's measured backward/forward ratio on DeepSeek-V3's shape
// (Megatron-Core MoE report Table 9: 422/553 at 4k, 523/638 at 16k).
TEST_CASE("attention kernels: head dim, held lengths, backward at Table 9's ratio") {
  const GpuSpec gpu = h100();
  const GpuCalibratedCostModel model(gpu, builtin_h100());
  const auto bf16 = DType::kBf16;
  const auto rate = [&](int64_t head_dim, bool causal, int64_t span,
                        AttentionKernel::Pass pass = AttentionKernel::Pass::kForward) {
    return *model.attention_flops_per_s(head_dim, causal, span, bf16, pass);
  };
  CHECK(rate(64, true, 4096) == Approx(420e12));
  CHECK(rate(128, true, 4096) == Approx(579e12));
  // head_dim 90.5 = sqrt(64 x 128): the geometric mean of the two rates.
  CHECK(rate(91, true, 4096) ==
        Approx(std::exp((1 - std::log(91.0 / 64) / std::log(2.0)) * std::log(420e12) +
                        std::log(91.0 / 64) / std::log(2.0) * std::log(579e12))));
  CHECK(rate(32, true, 4096) == Approx(420e12));    // below 64: the 64 curve
  CHECK(rate(512, false, 4096) == Approx(736e12));  // above 256: the 256 curve
  CHECK(rate(128, true, 65536) == Approx(616e12));  // past 16k: held
  CHECK(rate(64, true, 128) == Approx(197e12));     // a 128-key window: the 512 end
  // Backward: forward x Table 9's ratio at the same length, held beyond 4k-16k.
  CHECK(rate(128, true, 4096, AttentionKernel::Pass::kBackward) == Approx(579e12 * 422 / 553));
  CHECK(rate(128, true, 16384, AttentionKernel::Pass::kBackward) == Approx(616e12 * 523 / 638));
  CHECK(rate(64, true, 1024, AttentionKernel::Pass::kBackward) == Approx(265e12 * 422 / 553));
  // Only causal backward was measured: a non-causal backward takes its ratio.
  CHECK(rate(128, false, 4096, AttentionKernel::Pass::kBackward) == Approx(638e12 * 422 / 553));
  // attention_seconds: FLOPs at that rate plus one launch.
  const AttentionKernel bwd{.flops = 1e12,
                            .bytes = 1e9,
                            .head_dim = 128,
                            .span = 4096,
                            .causal = true,
                            .pass = AttentionKernel::Pass::kBackward,
                            .dtype = bf16};
  CHECK(model.attention_seconds(bwd) ==
        Approx(1e12 / (579e12 * 422 / 553) + gpu.launch_overhead_s).epsilon(1e-12));
  // The roofline model has no shapes: the fused kernel of the same FLOPs and bytes.
  const RooflineCostModel roofline(gpu);
  CHECK(roofline.attention_seconds(bwd) == roofline.fused_kernel_seconds(1e12, 1e9, bf16));
}

TEST_CASE("MLA decode: a roofline of FlashMLA's published compute and memory rates") {
  const GpuSpec gpu = h100();
  const GpuCalibration table = builtin_h100();
  REQUIRE(table.mla_decode.has_value());
  CHECK(table.mla_decode->source == "flash-mla");
  CHECK(table.mla_decode->flops_per_s == 660e12);  // FlashMLA README @066b5ba6
  CHECK(table.mla_decode->bytes_per_s == 3000e9);
  const GpuCalibratedCostModel model(gpu, table);
  // DeepSeek-V3, 128 heads, one BF16 latent cache of 2,048 tokens for each of
  // 128 sequences: 2 x 128 x 1,088 FLOPs and 576 x 2 bytes per cached token.
  const double ctx = 128.0 * 2048;
  const double flops = 2.0 * ctx * 128 * 1088, bytes = ctx * 576 * 2;
  const double expect = std::max(flops / 660e12, bytes / 3000e9) + gpu.launch_overhead_s;
  CHECK(model.mla_decode_seconds(flops, bytes, DType::kBf16) == Approx(expect).epsilon(1e-12));
  CHECK(flops / 660e12 > bytes / 3000e9);  // this shape is compute-bound on Hopper
  // Memory-bound when a sequence's heads are few (here 16).
  CHECK(model.mla_decode_seconds(flops / 8, bytes, DType::kBf16) ==
        Approx(bytes / 3000e9 + gpu.launch_overhead_s).epsilon(1e-12));
  // Not the roofline's flat 554 TFLOPS for a fused kernel.
  CHECK(model.mla_decode_seconds(flops, bytes, DType::kBf16) <
        model.fused_kernel_seconds(flops, bytes, DType::kBf16));
  // An FP8 cache is not what the figures measured: the roofline prices it.
  const RooflineCostModel roofline(gpu);
  CHECK(model.mla_decode_seconds(flops, bytes / 2, DType::kFp8) ==
        roofline.fused_kernel_seconds(flops, bytes / 2, DType::kFp8));
  // A table without the kernel leaves it to the roofline too.
  const GpuCalibratedCostModel small(gpu, parse_gpu_calibration(small_table(), "t.json"));
  CHECK(small.mla_decode_seconds(flops, bytes, DType::kBf16) ==
        roofline.fused_kernel_seconds(flops, bytes, DType::kBf16));
  CHECK(model.mla_decode_seconds(0, 0, DType::kBf16) == 0);
}

TEST_CASE("bad GPU calibration tables are one-line errors naming the entry") {
  auto fails_with = [](const Json& j, const std::string& text) {
    CHECK_THROWS_WITH(parse_gpu_calibration(j, "t.json"), Catch::Contains(text));
  };
  Json j = small_table();
  j["gemm"][1]["source"] = "blog";
  fails_with(j, "t.json.gemm[1].source: unknown source 'blog' (sources: bench)");
  j = small_table();
  j["gemm"][1]["m"] = 64;
  fails_with(j, "t.json.gemm[1]: duplicates gemm[0] (same dtype, m, n, k)");
  j = small_table();
  j["grouped_gemm"][1]["m_per_group"] = 256;
  fails_with(j, "t.json.grouped_gemm[1]: duplicates grouped_gemm[0]");
  j = small_table();
  j["attention"][0]["tflops"] = -3;
  fails_with(j, "t.json.attention[0].tflops");
  j = small_table();
  j["attention"][1]["pass"] = "sideways";
  fails_with(j, "t.json.attention[1].pass");
  j = small_table();
  j["attention"][1]["value_head_dim"] = 0;
  fails_with(j, "t.json.attention[1].value_head_dim");
  j = small_table();
  j["gemm"][0]["typo"] = 1;
  fails_with(j, "t.json.gemm[0].typo: unknown field");
  j = small_table();
  j["grouped_gemm"][0]["layout"] = "ragged";
  fails_with(j, "t.json.grouped_gemm[0].layout");
  j = small_table();
  j["gemm"][0]["dtype"] = "int4";
  fails_with(j, "t.json.gemm[0].dtype");
  j = small_table();
  j["sources"]["bench"].erase("measured_on");
  fails_with(j, "t.json.sources.bench.measured_on");
  j = small_table();
  j["applies_to"] = Json::array();
  fails_with(j, "t.json.applies_to");
  j = small_table();
  j["format"] = "moesim-calibration";
  fails_with(j, "t.json.format: expected \"moesim-gpu-calibration\"");
  j = small_table();
  j["memory_bound"] = {{"bytes", {1e6, 1e9}}, {"bytes_per_s", {1e12}}};
  fails_with(j, "t.json.memory_bound.bytes_per_s: expected an array of 2 entries");
  j = small_table();
  j["mla_decode"] = {{"source", "bench"}, {"dtype", "bf16"}, {"tflops", 600}};
  fails_with(j, "t.json.mla_decode.gb_per_s");
  j["mla_decode"]["gb_per_s"] = 0;
  fails_with(j, "t.json.mla_decode.gb_per_s");
  j["mla_decode"]["gb_per_s"] = 3000;
  j["mla_decode"]["source"] = "blog";
  fails_with(j, "t.json.mla_decode.source: unknown source 'blog'");
}

TEST_CASE("make_compute_cost: roofline, built-in tables, or a file") {
  const GpuSpec gpu = h100();
  const RooflineCostModel roofline(gpu);
  const auto plain = make_compute_cost(gpu, "");
  CHECK(plain->gemm_seconds(4096, 4096, 7168, DType::kFp8) ==
        roofline.gemm_seconds(4096, 4096, 7168, DType::kFp8));
  const auto builtin = make_compute_cost(gpu, "builtin");
  CHECK(builtin->gemm_seconds(4096, 4096, 7168, DType::kFp8) ==
        Approx(2.0 * 4096 * 4096 * 7168 / 1410e12 + gpu.launch_overhead_s));
  CHECK_THROWS_WITH(make_compute_cost(resolve_gpu(Json("a100-sxm-80gb"), "gpu"), "builtin"),
                    "no built-in GPU calibration for 'a100-sxm-80gb' (built-in: h100-sxm, h800)");
  CHECK_THROWS_AS(make_compute_cost(gpu, "/nonexistent/table.json"), moesim::Error);
  // "auto": the tables where shipped, the roofline elsewhere.
  CHECK(make_compute_cost(gpu, "auto")->gemm_seconds(4096, 4096, 7168, DType::kFp8) ==
        builtin->gemm_seconds(4096, 4096, 7168, DType::kFp8));
  const GpuSpec a100 = resolve_gpu(Json("a100-sxm-80gb"), "gpu");
  CHECK(make_compute_cost(a100, "auto")->gemm_seconds(4096, 4096, 7168, DType::kBf16) ==
        RooflineCostModel(a100).gemm_seconds(4096, 4096, 7168, DType::kBf16));

  const std::string path = "gpu_calibration_test_table.json";
  Json j = small_table();
  { std::ofstream(path) << j.dump(); }
  const auto from_file = make_compute_cost(gpu, path);
  CHECK(from_file->gemm_seconds(64, 1024, 2048, DType::kFp8) ==
        Approx(2.0 * 64 * 1024 * 2048 / 100e12 + gpu.launch_overhead_s));
  CHECK_THROWS_WITH(make_compute_cost(resolve_gpu(Json("h800"), "gpu"), path),
                    Catch::Contains("applies_to: lists h100-sxm, not this scenario's GPU 'h800'"));
  // A grid from `moesim calibrate` (CalibratedCostModel's format) is accepted too.
  Json grid = {
      {"format", "moesim-calibration"},
      {"version", 1},
      {"device", "cuda"},
      {"machine", Json::object()},
      {"peak_gemm_flops_per_s", 1e15},
      {"launch_overhead_s", 0},
      {"gemm",
       {{"dtype", "fp32"}, {"m", {1}}, {"n", {1}}, {"k", {1}}, {"flops_per_s", {{{5e14}}}}}},
      {"memory_bound", {{"bytes", {1e6}}, {"bytes_per_s", {1e12}}}}};
  { std::ofstream(path) << grid.dump(); }
  CHECK(make_compute_cost(gpu, path)->gemm_seconds(10, 10, 10, DType::kBf16) ==
        Approx(2000.0 / 5e14));
  std::remove(path.c_str());
}
