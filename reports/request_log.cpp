#include "reports/request_log.h"

#include <stdexcept>

#include <fmt/format.h>

#include "sim/core/file_io.h"
#include "sim/exec/serving_metrics.h"

namespace moesim::reports {
namespace {

// Request `index`'s line. A run that returns has finished every request
// (options.max_iterations stops one that cannot with an error).
void append_line(size_t index, const exec::RequestOutcome& o, const exec::ServingConfig& config,
                 bool has_slo, std::string& out) {
  if (!o.finished()) throw std::logic_error("request_log: an unfinished request");
  const exec::RequestLatency l = exec::request_latency(o, config);
  auto to = std::back_inserter(out);
  fmt::format_to(to,
                 "{{\"request\":{},\"arrival_s\":{},\"input_tokens\":{},\"output_tokens\":{},"
                 "\"generated\":{},\"first_token_s\":{},\"finish_s\":{},\"ttft_s\":{},"
                 "\"tpot_s\":",
                 index, o.arrival_s, o.input_tokens, o.output_tokens, o.generated, o.first_token_s,
                 o.finish_s, l.ttft_s);
  if (l.has_tpot) {
    fmt::format_to(to, "{}", l.tpot_s);
  } else {
    out += "null";
  }
  fmt::format_to(to, ",\"e2e_s\":{},\"preemptions\":{}", l.e2e_s, o.preemptions);
  if (has_slo) out += l.slo_met ? ",\"slo_met\":true" : ",\"slo_met\":false";
  out += "}\n";
}

}  // namespace

void write_request_log(const scenario::InferenceRun& run, const std::string& path) {
  OutputFile file(path);
  if (run.simulated()) {
    const bool has_slo = run.metrics->has_slo;
    std::string piece;
    const std::vector<exec::RequestOutcome>& requests = run.result.requests;
    for (size_t i = 0; i < requests.size(); ++i) {
      append_line(i, requests[i], run.scenario.serving, has_slo, piece);
      if (piece.size() >= (1 << 20)) {  // write in pieces of about 1 MiB
        file.write(piece);
        piece.clear();
      }
    }
    file.write(piece);
  }
  file.commit();
}

}  // namespace moesim::reports
