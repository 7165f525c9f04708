// `moesim validate published`: predicted step times against published
// measurements (sim/explore/published.h), as a table or JSON.

#include <cmath>
#include <iostream>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/explore/published.h"
#include "sim/explore/published_comm.h"
#include "sim/explore/published_serving.h"

namespace moesim::cli {
namespace {

OrderedJson optional_number(const std::optional<double>& value) {
  return value ? OrderedJson(*value) : OrderedJson(nullptr);
}

OrderedJson production_json(const explore::ProductionComparison& c) {
  OrderedJson out;
  out["source"] = c.source;
  out["scenario"] = c.scenario;
  out["row"] = c.row;
  out["published_gpu_hours_per_trillion_tokens"] = c.published_gpu_hours_per_trillion_tokens;
  out["published_step_time_s"] = c.published_step_time_s;
  out["status"] = c.status;
  out["predicted_step_time_s"] = optional_number(c.predicted_step_time_s);
  out["predicted_gpu_hours_per_trillion_tokens"] =
      optional_number(c.predicted_gpu_hours_per_trillion_tokens);
  out["error"] = optional_number(c.error);
  out["role"] = "reference";
  return out;
}

// The step-time tables' header and rows: published and predicted seconds,
// the error, the row's role.
void print_step_header(const char* first_column) {
  std::cout << fmt::format("  {:<52} {:>10} {:>10} {:>8}  {}\n", first_column, "published",
                           "predicted", "error", "role");
}
void print_step_row(const std::string& name, double published_s,
                    const std::optional<double>& predicted_s, const std::string& status,
                    const std::optional<double>& error, const std::string& role) {
  std::cout << fmt::format("  {:<52} {:>9.1f}s {:>10} {:>8}  {}\n", name, published_s,
                           predicted_s ? fmt::format("{:.1f}s", *predicted_s) : status,
                           error ? fmt::format("{:+.1f}%", 100 * *error) : std::string("-"), role);
}

void print_production(const explore::ProductionComparison& c) {
  std::cout << "\n" << c.source << "\n";
  print_step_header("row");
  print_step_row(c.row, c.published_step_time_s, c.predicted_step_time_s, c.status, c.error,
                 "reference");
  if (c.predicted_gpu_hours_per_trillion_tokens) {
    std::cout << fmt::format(
        "  H800 GPU hours per trillion tokens: published {:.0f}K (a whole-run average), predicted "
        "{:.1f}K\n",
        c.published_gpu_hours_per_trillion_tokens / 1e3,
        *c.predicted_gpu_hours_per_trillion_tokens / 1e3);
  }
}

OrderedJson comparison_json(const explore::PublishedComparison& c) {
  OrderedJson row;
  row["scenario"] = c.scenario;
  row["layout"] = c.layout;
  row["published_step_time_s"] = c.published_step_time_s;
  row["published_tflops_per_gpu"] = c.published_tflops_per_gpu;
  row["role"] = c.role;
  if (!c.predicted_step_time_s) {
    row["predicted_step_time_s"] = nullptr;
    row["error"] = nullptr;
    row["status"] = c.status;
  } else {
    row["predicted_step_time_s"] = *c.predicted_step_time_s;
    row["predicted_tflops_per_gpu"] = *c.predicted_tflops_per_gpu;
    row["error"] = *c.error;
  }
  return row;
}

void print_comparison(const explore::PublishedComparison& c) {
  print_step_row(c.layout, c.published_step_time_s, c.predicted_step_time_s, c.status, c.error,
                 c.role);
}

OrderedJson table_json(const explore::PublishedTable& t) {
  OrderedJson out;
  out["source"] = t.source;
  OrderedJson rows = OrderedJson::array();
  for (const explore::PublishedComparison& c : t.rows) rows.push_back(comparison_json(c));
  out["rows"] = rows;
  out["max_abs_error"] = t.max_abs_error;
  return out;
}

void print_table(const explore::PublishedTable& t) {
  std::cout << "\n" << t.source << "\n";
  print_step_header("layout");
  for (const explore::PublishedComparison& c : t.rows) print_comparison(c);
  std::cout << fmt::format("  largest error: {:.1f}% (step time)\n", 100 * t.max_abs_error);
}

OrderedJson validation_json(const explore::PublishedValidation& v) {
  OrderedJson out;
  out["source"] = v.source;
  OrderedJson rows = OrderedJson::array();
  for (const explore::PublishedComparison& c : v.rows) rows.push_back(comparison_json(c));
  out["calibrated"] = OrderedJson::object();
  out["calibrated"][v.calibration.field] =
      OrderedJson{{"value", v.calibration.value},
                  {"row", v.calibration.row},
                  {"published_imbalance_cost", v.calibration.published_imbalance_cost}};
  out["layouts"] = rows;
  OrderedJson imbalance = OrderedJson::array();
  for (const explore::ImbalanceCost& c : v.imbalance) {
    imbalance.push_back(OrderedJson{
        {"seq_len", c.seq_len}, {"published", c.published}, {"predicted", c.predicted}});
  }
  out["imbalance_cost"] = imbalance;
  out["max_abs_error"] = v.max_abs_error ? OrderedJson(*v.max_abs_error) : OrderedJson(nullptr);
  out["within_20_percent"] = v.within_20_percent;
  out["faster_layout_ranked_faster"] = v.faster_layout_ranked_faster;
  out["production"] = production_json(v.production);
  out["megatron_bridge"] = table_json(v.bridge);
  out["megatron_core_report"] = table_json(v.core_report);
  return out;
}

OrderedJson comm_json(const std::vector<explore::CommTable>& tables) {
  OrderedJson out = OrderedJson::object();
  for (const explore::CommTable& t : tables) {
    OrderedJson table;
    table["source"] = t.source;
    OrderedJson rows = OrderedJson::array();
    for (const explore::CommComparison& r : t.rows) {
      rows.push_back(OrderedJson{{"row", r.row},
                                 {"metric", r.metric},
                                 {"published", r.published},
                                 {"predicted", r.predicted},
                                 {"error", r.error},
                                 {"bottleneck", r.bottleneck},
                                 {"published_bottleneck", r.published_bottleneck},
                                 {"role", r.role}});
      if (r.published_nic_load) rows.back()["published_nic_load"] = *r.published_nic_load;
      if (r.published_nvl_gbps) rows.back()["published_nvl_gbps"] = *r.published_nvl_gbps;
    }
    table["rows"] = rows;
    table["max_abs_error"] = optional_number(t.max_abs_error);
    out[t.name] = table;
  }
  return out;
}

void print_comm(const std::vector<explore::CommTable>& tables) {
  for (const explore::CommTable& t : tables) {
    std::cout << "\n" << t.source << "\n";
    std::cout << fmt::format("  {:<38} {:>10} {:>10} {:>8}  {:<12} {}\n", "row", "published",
                             "predicted", "error", "bottleneck", "role");
    for (const explore::CommComparison& r : t.rows) {
      const std::string bottleneck =
          r.published_bottleneck.empty() || r.published_bottleneck == r.bottleneck
              ? r.bottleneck
              : r.bottleneck + " (pub. " + r.published_bottleneck + ")";
      std::cout << fmt::format("  {:<38} {:>10.4g} {:>10.4g} {:>+7.1f}%  {:<12} {}\n", r.row,
                               r.published, r.predicted, 100 * r.error, bottleneck, r.role);
    }
    if (t.max_abs_error) {
      std::cout << fmt::format("  largest error over the prediction rows: {:.1f}% ({})\n",
                               100 * *t.max_abs_error, t.rows.front().metric);
    } else {
      std::cout << "  reference rows only, outside every target: what the model leaves out\n";
    }
    std::string loads, nvl;
    for (const explore::CommComparison& r : t.rows) {
      if (r.published_nic_load) {
        loads += fmt::format("{}{} {:.0f}%", loads.empty() ? "" : ", ", r.row,
                             100 * *r.published_nic_load);
      }
      if (r.published_nvl_gbps) {
        nvl += fmt::format("{}{} {:.0f}", nvl.empty() ? "" : ", ", r.row, *r.published_nvl_gbps);
      }
    }
    if (!loads.empty()) {
      std::cout << "  NIC load the published figure implies (DeepEP's RDMA metric counts the "
                   "sender's own node, which never crosses a NIC): "
                << loads << "\n";
    }
    if (!nvl.empty()) {
      std::cout << "  NVLink GB/s it implies (DeepEP's NVL metric): " << nvl
                << "; at EP16 DeepEP's maintainers name NVLink the bottleneck (over 140 GB/s "
                   "when RDMA reaches 43; deepseek-ai/DeepEP issue #285)\n";
    }
  }
}

OrderedJson layer_parts_json(const std::vector<explore::LayerPartComparison>& layer) {
  OrderedJson parts = OrderedJson::array();
  for (const explore::LayerPartComparison& r : layer) {
    parts.push_back(OrderedJson{
        {"part", r.part},
        {"profile_ms", r.profile_ms},
        {"unit_test_ms", r.unit_test_ms > 0 ? OrderedJson(r.unit_test_ms) : OrderedJson(nullptr)},
        {"predicted_ms", r.predicted_ms}});
  }
  return parts;
}

// ms with `decimals` places (decode's sub-millisecond layers take 3).
void print_layer_parts(const std::vector<explore::LayerPartComparison>& layer, int decimals = 2) {
  std::cout << fmt::format("  {:<58} {:>8} {:>10} {:>10}\n", "part", "profile", "unit test",
                           "predicted");
  for (const explore::LayerPartComparison& r : layer) {
    std::cout << fmt::format(
        "  {:<58} {:>8.{}f} {:>10} {:>10.{}f}\n", r.part, r.profile_ms, decimals,
        r.unit_test_ms > 0 ? fmt::format("{:.{}f}", r.unit_test_ms, decimals) : "", r.predicted_ms,
        decimals);
  }
}

OrderedJson serving_json(const explore::ServingValidation& v) {
  OrderedJson out;
  out["source"] = v.source;
  OrderedJson rows = OrderedJson::array();
  for (const explore::ServingComparison& r : v.rows) {
    rows.push_back(OrderedJson{{"row", r.row},
                               {"metric", r.metric},
                               {"published", r.published},
                               {"predicted", r.predicted},
                               {"error", r.error},
                               {"role", r.reference ? "reference" : "prediction"}});
  }
  out["rows"] = rows;
  out["prefill_layer"] = layer_parts_json(v.prefill_layer);
  out["prefill_layer_4k"] = layer_parts_json(v.sglang_layer);
  out["prefill_layer_4k_balanced"] = layer_parts_json(v.sglang_balanced_layer);
  out["prefill_layer_without_overlap"] = layer_parts_json(v.no_overlap_layer);
  out["decode_layer_without_overlap"] = layer_parts_json(v.decode_layer);
  OrderedJson balance = OrderedJson::array();
  for (const explore::BalanceComparison& b : v.balancedness) {
    balance.push_back(OrderedJson{{"gpus", b.gpus},
                                  {"eplb", b.eplb},
                                  {"published", b.published},
                                  {"predicted", b.predicted},
                                  {"error", b.predicted / b.published - 1},
                                  {"role", "calibration"}});
  }
  out["routing"] = v.routing;
  out["routing_balancedness"] = balance;
  out["max_abs_throughput_error"] = v.max_abs_throughput_error;
  out["within_20_percent"] = v.within_20_percent;
  out["prompt_length_trend_right"] = v.prompt_length_trend_right;
  out["overlap_signs_right"] = v.overlap_signs_right;
  return out;
}

void print_serving(const explore::ServingValidation& v) {
  std::cout << "\n" << v.source << "\n";
  std::cout << fmt::format("  {:<56} {:>10} {:>10} {:>8}  {:<10}  {}\n", "row", "published",
                           "predicted", "error", "role", "metric");
  for (const explore::ServingComparison& r : v.rows) {
    const bool change = r.metric.find("change") != std::string::npos;
    const char* role = r.reference ? "reference" : "prediction";
    std::cout << (change
                      ? fmt::format("  {:<56} {:>+9.1f}% {:>+9.1f}% {:>+6.1f}pt  {:<10}  {}\n",
                                    r.row, 100 * r.published, 100 * r.predicted, 100 * r.error,
                                    role, r.metric)
                      : fmt::format("  {:<56} {:>10.0f} {:>10.0f} {:>+7.1f}%  {:<10}  {}\n", r.row,
                                    r.published, r.predicted, 100 * r.error, role, r.metric));
  }
  std::cout << fmt::format(
      "  nothing calibrated on these rows (the routing is: table below); the target "
      "covers the prediction rows: "
      "within 20%: {} (largest {:.1f}%)   "
      "prompt-length trend right: {}   overlap signs right: {}\n",
      v.within_20_percent ? "yes" : "no", 100 * v.max_abs_throughput_error,
      v.prompt_length_trend_right ? "yes" : "no", v.overlap_signs_right ? "yes" : "no");
  std::cout << "  the DeepSeek profile row's layer, ms (the blog's chart profile-prefill.png; "
               "moesim's parts each alone; reference)\n";
  print_layer_parts(v.prefill_layer);
  std::cout << "  the 4K row's layer (SGLang's profile, profile-prefill.png; moesim's parts each "
               "alone; reference)\n";
  print_layer_parts(v.sglang_layer);
  std::cout << "  the balanced 4K row's layer (SGLang's profile with simulated perfect EPLB, "
               "profile-prefill.png; reference)\n";
  print_layer_parts(v.sglang_balanced_layer);
  std::cout << "  the first prefill row without overlap (8K tokens per GPU, 4K prompts), ms per "
               "layer scaled to 16,384 tokens (SGLang's profile: the blog's chart "
               "tbo-breakdown-prefill.png; moesim's parts each alone; reference)\n";
  print_layer_parts(v.no_overlap_layer);
  std::cout << "  decode without overlap, 256 requests per GPU, ms per layer (SGLang's profile: "
               "the blog's chart tbo-breakdown-decode.png; moesim's parts: the run's decode "
               "iterations; reference)\n";
  print_layer_parts(v.decode_layer, 3);
  std::cout << fmt::format(
      "  GPU balancedness (mean / max token copies per GPU, per MoE layer) of the examples' "
      "routing, {}, against the blog's chart eplb-balancedness.png; the routing's three numbers "
      "were chosen on these rows\n",
      v.routing);
  std::cout << fmt::format("  {:<56} {:>10} {:>10} {:>8}  {}\n", "GPUs", "published", "predicted",
                           "error", "role");
  for (const explore::BalanceComparison& b : v.balancedness) {
    std::cout << fmt::format(
        "  {:<56} {:>10.3f} {:>10.3f} {:>+7.1f}%  {}\n",
        fmt::format("{} GPUs, {}", b.gpus, b.eplb ? "EPLB with 32 redundant experts" : "no EPLB"),
        b.published, b.predicted, 100 * (b.predicted / b.published - 1), "calibration");
  }
}

}  // namespace

int validate_published_main(const Args& args) {
  po::options_description options("validate published options");
  int jobs = 2;
  options.add_options()("json", "print JSON instead of a table")(
      "jobs,j", po::value(&jobs),
      "scenarios simulated in parallel (default 2; the longest training rows hold about 3 GB "
      "each while they run)");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse(args, options, positional, vm, "moesim validate published [--json] [--jobs N]")) {
    return 0;
  }
  check_jobs(jobs);
  const explore::PublishedValidation v = explore::validate_published(embedded_example, jobs);
  const std::vector<explore::CommTable> comm = explore::validate_communication();
  const explore::ServingValidation serving = explore::validate_serving(embedded_example, jobs);
  if (vm.count("json")) {
    OrderedJson out = validation_json(v);
    out["communication"] = comm_json(comm);
    out["serving"] = serving_json(serving);
    std::cout << render_json(out);
    return 0;
  }
  std::cout << v.source << "\n";
  print_step_header("layout");
  for (const explore::PublishedComparison& c : v.rows) print_comparison(c);
  std::cout << fmt::format(
      "  calibrated: the examples' {} {}, its exponent chosen so that the {} row's imbalance "
      "cost (dropless step / forced-balance step) is the published {:.3f}; every other row and "
      "the ranking are predicted (options.pipeline_pass_overhead_us defaults to 0)\n",
      v.calibration.field, v.calibration.value, v.calibration.row,
      v.calibration.published_imbalance_cost);
  std::string imbalance;
  for (const explore::ImbalanceCost& c : v.imbalance) {
    imbalance += fmt::format("{}{}K {:.3f} against {:.3f}", imbalance.empty() ? "" : ", ",
                             c.seq_len / 1024, c.predicted, c.published);
  }
  if (!imbalance.empty()) {
    std::cout << "  routing imbalance cost (dropless step / forced-balance step), predicted with "
                 "the example's routing against published: "
              << imbalance << "\n";
  }
  std::cout << fmt::format(
      "  target (prediction rows): within 20%: {}   faster layout ranked faster: {}\n",
      v.within_20_percent ? "yes" : "no", v.faster_layout_ranked_faster ? "yes" : "no");
  print_production(v.production);
  print_table(v.bridge);
  print_table(v.core_report);
  print_comm(comm);
  print_serving(serving);
  return 0;
}

}  // namespace moesim::cli
