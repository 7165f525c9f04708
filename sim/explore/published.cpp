#include "sim/explore/published.h"

#include <cmath>
#include <functional>
#include <limits>
#include <span>

#include <fmt/format.h>

#include "sim/core/parallel_for.h"
#include "sim/scenario/run.h"

namespace moesim::explore {
namespace {

struct Published {
  const char* example;
  const char* layout;
  double step_time_s;
  double tflops_per_gpu;
  const char* role;
  // Long-context rows run the 128K example at another length: seq_len
  // tokens, cp = seq_len / 16K, dp = 8 / cp (the readme's NNODES 32, GBS 256);
  // 0 runs the example as it is.
  int64_t seq_len = 0;
  // Megatron-Core's --moe-router-force-load-balancing: random router logits
  // (moe_utils.py apply_random_logits, "only for benchmark"), i.e. uniform
  // routing in place of the example's generator.
  bool forced_balance = false;
};

constexpr Published kQwen3[] = {
    {"qwen3-235b-h100-256gpu-a2a.json", "all-to-all TP2 EP8 PP32 VPP3 DP4", 24.2, 200,
     "prediction"},
    {"qwen3-235b-h100-256gpu-deepep.json", "DeepEP TP2 EP32 PP8 VPP4 DP16", 19.7, 245,
     "prediction"},
    {"qwen3-235b-h100-256gpu-deepep-a2a-overlap.json", "DeepEP TP2 EP32 PP8 VPP4 +1f1b overlap",
     17.6, 276, "prediction"},
    {"qwen3-235b-h100-256gpu-deepep-tp4.json", "DeepEP TP4 EP8 PP8 VPP4 DP8", 29.0, 167,
     "reference"},
    {"qwen3-235b-h100-256gpu-deepep-fsdp.json", "DeepEP TP2 EP8 FSDP DP128 MBS4", 17.6, 276,
     "reference"},
    // The long-context table (same readme, "Long Context"): 131,072 tokens,
    // TP4 CP8 EP8 PP8 VPP4, GBS 256, selective recompute "layernorm moe",
    // 357 TFLOPS per GPU dropless. The table gives no step time; 269.7 s is
    // Megatron-LM's num_floating_point_operations (training.py, causal
    // attention counted half since March 2025) for 256 x 131,072 tokens,
    // 3 x 244.9 GFLOP per token forward, over 357 TFLOP/s x 256 GPUs (moesim
    // counts the same model FLOPs to 0.05%). Nothing in moesim is fitted to
    // it: a prediction of context parallelism and whole-MoE-layer recompute.
    {"qwen3-235b-h100-128k-cp8.json", "DeepEP TP4 CP8 EP8 PP8 VPP4 seq 128K", 269.7, 357,
     "prediction"},
    // The rest of the same long-context table, every row a prediction: the
    // shorter lengths dropless, and each length with forced balance. Step
    // times as for the 128K row: Megatron-LM's FLOPs for 256 sequences
    // (forward per token: 68.27 GFLOP at 16K, 93.50 at 32K, 143.97 at 64K,
    // 244.9 at 128K; times 3) over the published TFLOPS x 256 GPUs.
    {"qwen3-235b-h100-128k-cp8.json", "DeepEP TP4 CP1 EP8 PP8 VPP4 seq 16K", 14.2, 237,
     "prediction", 16384},
    // The calibration row: the examples' routing (sequence:S) takes its S
    // from this row's imbalance cost (kCalibration below).
    {"qwen3-235b-h100-128k-cp8.json", "DeepEP TP4 CP2 EP8 PP8 VPP4 seq 32K", 33.2, 277,
     "calibration", 32768},
    {"qwen3-235b-h100-128k-cp8.json", "DeepEP TP4 CP4 EP8 PP8 VPP4 seq 64K", 88.5, 320,
     "prediction", 65536},
    {"qwen3-235b-h100-128k-cp8.json", "DeepEP TP4 CP1 EP8 PP8 VPP4 seq 16K forced balance", 11.4,
     295, "prediction", 16384, true},
    {"qwen3-235b-h100-128k-cp8.json", "DeepEP TP4 CP2 EP8 PP8 VPP4 seq 32K forced balance", 27.4,
     335, "prediction", 32768, true},
    {"qwen3-235b-h100-128k-cp8.json", "DeepEP TP4 CP4 EP8 PP8 VPP4 seq 64K forced balance", 76.9,
     368, "prediction", 65536, true},
    {"qwen3-235b-h100-128k-cp8.json", "DeepEP TP4 CP8 EP8 PP8 VPP4 seq 128K forced balance", 247.6,
     389, "prediction", 131072, true},
};

// The one calibrated figure: every Qwen3 example routes as sequence:S
// (Qwen3's router is trained with global-batch load balancing, so each
// sequence prefers its own experts: workloads/routing_generator.h), and S is
// the value that makes this row's imbalance cost, its dropless step over its
// forced-balance step, the published 335 / 277 TFLOPS = 1.209. At 32K an
// EP8 group holds the tensor- and context-parallel ranks of one sequence, so
// the row sees one sequence's preference unmixed.
constexpr const char* kCalibrationRow = "DeepEP TP4 CP2 EP8 PP8 VPP4 seq 32K";
constexpr double kCalibrationImbalanceCost = 335.0 / 277.0;

// The training scenarios of every table, simulated side by side: each row
// adds its scenario and what to do with the prediction, run() simulates
// `jobs` at a time (a 128K Qwen3 step takes about 3 GB while it runs) and then
// hands every result to its row in the order the rows were added, on the
// calling thread, so the tables come out the same for any `jobs`.
class TrainingBatch {
 public:
  using Metrics = std::optional<exec::TrainingMetrics>;  // empty: does not fit
  void add(Json doc, std::function<void(const Metrics&)> done) {
    docs_.push_back(std::move(doc));
    done_.push_back(std::move(done));
  }
  void run(int jobs) {
    std::vector<Metrics> metrics(docs_.size());
    parallel_for(docs_.size(), jobs,
                 [&](size_t i) { metrics[i] = scenario::run_training(docs_[i]).metrics; });
    for (size_t i = 0; i < docs_.size(); ++i) done_[i](metrics[i]);
  }

 private:
  std::vector<Json> docs_;
  std::vector<std::function<void(const Metrics&)>> done_;
};

// The example as the row ran it.
Json row_scenario(const Published& p, const std::function<Json(const std::string&)>& example) {
  Json doc = example(p.example);
  if (p.seq_len > 0) {
    const int64_t cp = p.seq_len / 16384;
    doc["workload"]["seq_len"] = p.seq_len;
    doc["parallel"]["cp"] = cp;
    doc["parallel"]["dp"] = 8 / cp;
  }
  if (p.forced_balance) doc["routing"]["generator"] = "uniform";
  return doc;
}

// How `doc` (row_scenario's) differs from the example, for the report.
std::string row_scenario_name(const Published& p, const Json& doc) {
  std::string name = std::string("examples/") + p.example;
  if (p.seq_len > 0) {
    name += fmt::format(" with workload.seq_len {}, parallel.cp {}, parallel.dp {}", p.seq_len,
                        doc["parallel"]["cp"].get<int64_t>(), doc["parallel"]["dp"].get<int64_t>());
  }
  if (p.forced_balance) name += ", routing.generator uniform";
  return name;
}

void add_deepseek_v3_production(const std::function<Json(const std::string&)>& example,
                                ProductionComparison& c, TrainingBatch& batch) {
  constexpr const char* kExample = "deepseek-v3-h800-2048gpu-dualpipe.json";
  constexpr double kGpuHoursPerTrillionTokens = 180e3, kGpus = 2048;
  c.source =
      "DeepSeek-V3 pre-training on 2,048 H800 (DeepSeek-V3 technical report, arXiv:2412.19437, "
      "section 1: 180K H800 GPU hours per trillion tokens)";
  c.scenario = std::string("examples/") + kExample;
  c.row = "DeepSeek-V3 DualPipe PP16 EP64 DP128, GBS 15360";
  c.published_gpu_hours_per_trillion_tokens = kGpuHoursPerTrillionTokens;
  Json doc = example(kExample);
  const double tokens_per_step =
      doc["workload"]["global_batch"].get<double>() * doc["workload"]["seq_len"].get<double>();
  // GPU seconds per token x tokens per step, over the GPUs: 19.9 s at
  // 15,360 x 4,096 tokens.
  c.published_step_time_s = kGpuHoursPerTrillionTokens * 3600 / 1e12 * tokens_per_step / kGpus;
  batch.add(std::move(doc), [&c, tokens_per_step](const TrainingBatch::Metrics& metrics) {
    if (!metrics) {
      c.status = "out_of_memory";
      return;
    }
    c.status = "ok";
    const double t = metrics->step_time_s;
    c.predicted_step_time_s = t;
    c.predicted_gpu_hours_per_trillion_tokens = t * kGpus / 3600 / tokens_per_step * 1e12;
    c.error = t / c.published_step_time_s - 1;
  });
}

// A row's prediction: status, step time, TFLOPS and error (nothing but the
// status when the layout does not fit).
void record_prediction(const TrainingBatch::Metrics& metrics, PublishedComparison& c) {
  c.status = metrics ? "ok" : "out_of_memory";
  if (!metrics) return;
  c.predicted_step_time_s = metrics->step_time_s;
  c.predicted_tflops_per_gpu = metrics->model_tflops_per_gpu;
  c.error = (metrics->step_time_s - c.published_step_time_s) / c.published_step_time_s;
}

// One force-balanced pre-training run as published: the example it runs, the
// published settings the example does not already have, and the published
// throughput (the step time is GBS x seq_len over tokens/s/GPU x GPUs).
struct ForceBalancedRow {
  const char* layout;
  const char* example;
  std::function<void(Json&)> recipe;
  double tokens_per_s_per_gpu, tflops_per_gpu;
};

// Every row runs its example with the recipe's settings and uniform routing
// (Megatron's --moe-router-force-load-balancing: random router logits).
void add_force_balanced_table(std::string source, std::span<const ForceBalancedRow> rows,
                              const std::function<Json(const std::string&)>& example,
                              PublishedTable& t, TrainingBatch& batch) {
  t.source = std::move(source);
  t.rows.resize(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const ForceBalancedRow& r = rows[i];
    Json doc = example(r.example);
    r.recipe(doc);
    doc["routing"]["generator"] = "uniform";
    PublishedComparison& c = t.rows[i];
    c.scenario = std::string("examples/") + r.example +
                 " with the recipe's settings and routing.generator uniform";
    c.layout = r.layout;
    const double gpus = doc["parallel"]["dp"].get<double>() * doc["parallel"]["tp"].get<double>() *
                        doc["parallel"]["pp"].get<double>();
    c.published_step_time_s = doc["workload"]["global_batch"].get<double>() *
                              doc["workload"]["seq_len"].get<double>() /
                              (r.tokens_per_s_per_gpu * gpus);
    c.published_tflops_per_gpu = r.tflops_per_gpu;
    c.role = "prediction";
    batch.add(std::move(doc), [&t, &c](const TrainingBatch::Metrics& metrics) {
      record_prediction(metrics, c);
      if (c.error) t.max_abs_error = std::max(t.max_abs_error, std::fabs(*c.error));
    });
  }
}

// Megatron-Bridge's published DGX-H100 MoE pre-training rows
// (NVIDIA-NeMo/Megatron-Bridge docs/performance-summary-archive.md): every
// MoE run force-balanced (the recipes set moe_router_force_load_balancing)
// and dropless, so they test the model apart from routing skew. Each row
// runs an example with the settings of the recipe the container shipped
// (scripts/performance, later src/megatron/bridge/perf_recipes).
void add_megatron_bridge_h100(const std::function<Json(const std::string&)>& example,
                              PublishedTable& t, TrainingBatch& batch) {
  const ForceBalancedRow rows[] = {
      // NeMo 25.09 (branch r0.1.0, configs/deepseek/deepseek_v3_llm_pretrain.yaml;
      // scripts/performance/run_script.py at v0.1.0rc4): flex dispatcher with
      // DeepEP, overlap_moe_expert_parallel_comm and delay_wgrad_compute,
      // overlap_grad_reduce off on H100; one MTP module (the recipe's
      // mtp_num_layers 1, the catalog's) and the layout "Et|(tt|)*30mL": the
      // example's. The 330 TFLOPS of DeepSeek's blockwise FP8 recipe, whose
      // tokens/s the table leaves out: 1,297 x 330 / 338 (the tensorwise
      // run's).
      {"DeepSeek-V3 FP8 TP2 PP8 VPP4 EP64 DP64, 1,024 GPUs", "deepseek-v3-h100-1024gpu.json",
       [](Json& d) {
         d["parallel"]["moe_a2a_overlap"] = "1f1b";
         d["parallel"]["overlap_grad_reduce"] = false;
       },
       1297.0 * 330 / 338, 330},
      // NeMo 25.11 (tag v0.2.0, configs/qwen3/workload_base_configs.py
      // QWEN3_235B_A22B_H100_FP8_CS_BASE_CONFIG): all-to-all dispatcher,
      // no recompute, moe_a2a_overlap on, FP8 tensorwise, GBS 2,048.
      {"Qwen3-235B FP8 TP2 PP8 VPP4 EP32 DP16, 256 GPUs",
       "qwen3-235b-h100-256gpu-deepep-a2a-overlap.json",
       [](Json& d) {
         d["workload"]["dtype"] = "fp8";
         d["parallel"]["a2a_algo"] = "direct";
         d["parallel"]["recompute"] = "none";
       },
       1575, 233},
      // NeMo 26.04.01 (perf_recipes/gpt_oss/h100/gpt_oss.py
      // gpt_oss_120b_pretrain_64gpu_h100_bf16_config): BF16, TP1 PP4 EP8,
      // no sequence parallelism, all-to-all dispatcher, selective recompute
      // of layernorm and moe_act, GBS 1,280: the example as it stands. The
      // model's attention sinks and expert biases are left out (under 0.05%
      // of the parameters).
      {"GPT-OSS-120B BF16 TP1 PP4 EP8 DP16, 64 GPUs", "gpt-oss-120b-h100-64gpu.json", [](Json&) {},
       5824, 158},
  };
  add_force_balanced_table(
      "Megatron-Bridge pre-training on DGX-H100, force-balanced routing "
      "(NVIDIA-NeMo/Megatron-Bridge docs/performance-summary-archive.md)",
      rows, example, t, batch);
}

// The H100 rows of the Megatron-Core MoE report (NVIDIA, arXiv:2603.07685,
// Megatron-Core v0.16), Table 11 ("All configurations use force-balanced
// routing"), with their settings from Table 17 and Appendix B.
void add_megatron_core_report_h100(const std::function<Json(const std::string&)>& example,
                                   PublishedTable& t, TrainingBatch& batch) {
  const ForceBalancedRow rows[] = {
      // Table 17: TP2 PP8 EP64 VPP4 (Table 20 prints PP4, which its
      // 32-stage layout contradicts), FP8 blockwise, DeepEP, recompute of
      // mlp, mla_up_proj, moe_act and layernorm (moesim's "selective"), EP
      // all-to-all overlap, no CUDA graphs; GBS 8,192: the example with the
      // overlap and the report's layout "Et*3|(tt|)*29m|L", which gives the
      // MTP module a virtual stage of its own.
      {"DeepSeek-V3 FP8 TP2 PP8 VPP4 EP64 DP64, 1,024 GPUs", "deepseek-v3-h100-1024gpu.json",
       [](Json& d) {
         d["parallel"]["moe_a2a_overlap"] = "1f1b";
         d["parallel"]["pipeline_layout"] = "Et*3|(tt|)*29m|L";
       },
       1412, 368},
      // Table 20 and B.2: BF16, TP2 PP8 EP32 VPP4, GBS 2,048, DeepEP,
      // recompute of moe_act and layernorm, 1F1B overlap on: the example as
      // it stands (the ModelZoo's run of the same layout took 17.6 s).
      {"Qwen3-235B BF16 TP2 PP8 VPP4 EP32 DP16, 256 GPUs",
       "qwen3-235b-h100-256gpu-deepep-a2a-overlap.json", [](Json&) {}, 2132, 320},
  };
  add_force_balanced_table(
      "Megatron-Core MoE report on H100, force-balanced routing (arXiv:2603.07685 Table 11)", rows,
      example, t, batch);
}

}  // namespace

PublishedValidation validate_published(const std::function<Json(const std::string&)>& example,
                                       int jobs) {
  PublishedValidation v;
  v.source =
      "Megatron-Core MoE, Qwen3-235B-A22B on 256 H100 (yanring/Megatron-MoE-ModelZoo, "
      "best_practice/Qwen3/readme.md)";
  TrainingBatch batch;
  const size_t rows = std::size(kQwen3);
  std::vector<int64_t> seq_lens;
  v.rows.resize(rows);
  for (size_t i = 0; i < rows; ++i) {
    const Published& p = kQwen3[i];
    Json doc = row_scenario(p, example);
    seq_lens.push_back(doc["workload"]["seq_len"].get<int64_t>());
    PublishedComparison& row = v.rows[i];
    row.scenario = row_scenario_name(p, doc);
    row.layout = p.layout;
    row.published_step_time_s = p.step_time_s;
    row.published_tflops_per_gpu = p.tflops_per_gpu;
    row.role = p.role;
    batch.add(std::move(doc),
              [&row](const TrainingBatch::Metrics& metrics) { record_prediction(metrics, row); });
  }
  add_deepseek_v3_production(example, v.production, batch);
  add_megatron_bridge_h100(example, v.bridge, batch);
  add_megatron_core_report_h100(example, v.core_report, batch);
  batch.run(jobs);

  // The target: the prediction rows (the two layouts of
  // shared/reference/measurements.md, the overlap run and the long-context
  // table); reference rows and the calibration row are not part of it.
  const double inf = std::numeric_limits<double>::infinity();
  double worst = 0;
  std::vector<double> predicted;
  for (const PublishedComparison& row : v.rows) {
    if (row.role == "prediction") worst = std::max(worst, row.error ? std::fabs(*row.error) : inf);
    predicted.push_back(row.predicted_step_time_s.value_or(inf));
  }
  // What routing imbalance costs, per length: the dropless step over the
  // forced-balance one, published against predicted.
  for (size_t forced = 0; forced < rows; ++forced) {
    if (!kQwen3[forced].forced_balance) continue;
    for (size_t dropless = 0; dropless < rows; ++dropless) {
      if (kQwen3[dropless].forced_balance || seq_lens[dropless] != seq_lens[forced] ||
          std::string(kQwen3[dropless].example) != kQwen3[forced].example) {
        continue;
      }
      v.imbalance.push_back({seq_lens[forced],
                             kQwen3[forced].tflops_per_gpu / kQwen3[dropless].tflops_per_gpu,
                             predicted[dropless] / predicted[forced]});
    }
  }
  v.calibration.field = "routing.generator";
  v.calibration.value = example(kQwen3[0].example)["routing"]["generator"].get<std::string>();
  v.calibration.row = kCalibrationRow;
  v.calibration.published_imbalance_cost = kCalibrationImbalanceCost;
  if (std::isfinite(worst)) v.max_abs_error = worst;
  v.within_20_percent = worst <= 0.2;
  v.faster_layout_ranked_faster = predicted[1] < predicted[0];
  return v;
}

}  // namespace moesim::explore
