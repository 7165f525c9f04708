#include "sim/explore/published_serving.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "sim/scenario/inference_run.h"

namespace moesim::explore {
namespace {

constexpr const char* kPrefill = "deepseek-v3-h100-prefill-ep32.json";
constexpr const char* kDecode = "deepseek-v3-h100-decode-ep72.json";
constexpr int kPrefillReplicas = 32, kDecodeReplicas = 72;
constexpr int64_t kPrefillTokensPerGpu = 16384;  // the blog's 16,384 tokens per GPU

// Prompts of `prompt_tokens`, each replica batching 16,384 tokens per
// iteration, three iterations' worth of requests.
Json prefill_scenario(Json doc, int64_t prompt_tokens, const char* generator) {
  const int64_t per_replica = kPrefillTokensPerGpu / prompt_tokens;
  doc["requests"]["input_tokens"] = prompt_tokens;
  doc["requests"]["concurrency"] = kPrefillReplicas * per_replica;
  doc["requests"]["count"] = 3 * kPrefillReplicas * per_replica;
  doc["routing"]["generator"] = generator;
  return doc;
}

// `batch` requests running per GPU, two rounds of them, on the low-latency
// kernels of the DeepEP the blog ran: pure RDMA to every peer, same-node ones
// included. DeepEP's low-latency kernels copy to same-node peers over NVLink
// only since PR #173 (commits 68ae8b3 and aae9fa9, "Allow NVLink traffic for
// low-latency kernels by default", both 2025-05-23), after the blog
// (2025-05-05); the example uses today's default.
Json decode_scenario(Json doc, int batch, bool two_batch_overlap) {
  doc["cluster"]["node"]["low_latency_nvlink"] = false;
  doc["serving"]["max_batch_size"] = batch;
  doc["serving"]["max_num_tokens"] = batch;
  doc["serving"]["two_batch_overlap"] = two_batch_overlap;
  doc["requests"]["concurrency"] = kDecodeReplicas * batch;
  doc["requests"]["count"] = 2 * kDecodeReplicas * batch;
  return doc;
}

double input_per_node(const Json& doc) {
  return scenario::run_inference(doc).metrics.value().input_tokens_per_s_per_node;
}
double output_per_node(const Json& doc) {
  return scenario::run_inference(doc).metrics.value().output_tokens_per_s_per_node;
}

}  // namespace

ServingValidation validate_serving(const std::function<Json(const std::string&)>& example) {
  ServingValidation v;
  v.source =
      "SGLang large-scale EP, DeepSeek-V3 on 12 x 8 H100 (lmsys blog 2025-05-05 "
      "\"large-scale-ep\")";
  const Json prefill = example(kPrefill), decode = example(kDecode);
  auto throughput = [&v](std::string row, std::string metric, double published, double predicted) {
    v.rows.push_back(
        {std::move(row), std::move(metric), published, predicted, predicted / published - 1});
  };
  const char* per_node_in = "input tokens/s per node";
  std::vector<double> by_length;
  for (const auto& [tokens, published] :
       {std::pair<int64_t, double>{1024, 57674}, {2048, 54543}, {4096, 50302}}) {
    by_length.push_back(input_per_node(prefill_scenario(prefill, tokens, "zipf:0.2")));
    throughput(fmt::format("prefill EP32, {}K prompts", tokens / 1024), per_node_in, published,
               by_length.back());
  }
  throughput("prefill EP32, 4K prompts, balanced experts", per_node_in, 59337,
             input_per_node(prefill_scenario(prefill, 4096, "uniform")));
  Json deepseek = prefill_scenario(prefill, 4096, "uniform");
  deepseek["cluster"]["preset"] = "hgx-h800";
  deepseek["parallel"]["disaggregation"]["prefill"]["parallel"]["a2a_comm_sms"] = 24;
  const double deepseek_profile = input_per_node(deepseek);
  const double decode_tbo = output_per_node(decode_scenario(decode, 256, true));
  throughput("decode EP72, 256 requests per GPU", "output tokens/s per node", 22282, decode_tbo);
  v.max_abs_throughput_error = 0;
  for (const ServingComparison& r : v.rows) {
    v.max_abs_throughput_error = std::max(v.max_abs_throughput_error, std::fabs(r.error));
  }
  const double gain_256 = decode_tbo / output_per_node(decode_scenario(decode, 256, false)) - 1;
  const double gain_32 = output_per_node(decode_scenario(decode, 32, true)) /
                             output_per_node(decode_scenario(decode, 32, false)) -
                         1;
  const char* change = "two-batch overlap throughput change";
  v.rows.push_back({"decode, 256 tokens per GPU", change, 0.255, gain_256, gain_256 - 0.255});
  v.rows.push_back({"decode, 32 tokens per GPU", change, -0.27, gain_32, gain_32 + 0.27});
  v.rows.push_back({"DeepSeek's profile: prefill EP32 on H800, 4K", per_node_in, 62713,
                    deepseek_profile, deepseek_profile / 62713 - 1, true});
  v.within_20_percent = v.max_abs_throughput_error <= 0.2;
  v.prompt_length_trend_right = by_length[0] > by_length[1] && by_length[1] > by_length[2];
  v.overlap_signs_right = gain_256 > 0 && gain_32 < 0;
  return v;
}

}  // namespace moesim::explore
