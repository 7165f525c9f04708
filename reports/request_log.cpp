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
  fmt::format_to(std::back_inserter(out),
                 "{{\"request\":{},\"arrival_s\":{},\"input_tokens\":{},\"output_tokens\":{},"
                 "\"generated\":{},\"first_token_s\":{},\"finish_s\":{},\"ttft_s\":{},"
                 "\"tpot_s\":{},\"e2e_s\":{},\"preemptions\":{}",
                 index, o.arrival_s, o.input_tokens, o.output_tokens, o.generated, o.first_token_s,
                 o.finish_s, l.ttft_s,
                 l.has_tpot ? fmt::format("{}", l.tpot_s) : std::string("null"), l.e2e_s,
                 o.preemptions);
  if (has_slo) out += l.slo_met ? ",\"slo_met\":true" : ",\"slo_met\":false";
  out += "}\n";
}

// Calls `flush` with each piece of the log, at least `piece_bytes` long but
// the last.
template <class Flush>
void for_each_piece(const scenario::InferenceRun& run, size_t piece_bytes, Flush flush) {
  if (!run.simulated()) return;
  const exec::ServingConfig& config = run.scenario.serving;
  const bool has_slo = run.metrics->has_slo;
  std::string piece;
  const std::vector<exec::RequestOutcome>& requests = run.result.requests;
  for (size_t i = 0; i < requests.size(); ++i) {
    append_line(i, requests[i], config, has_slo, piece);
    if (piece.size() >= piece_bytes) {
      flush(piece);
      piece.clear();
    }
  }
  if (!piece.empty()) flush(piece);
}

}  // namespace

std::string request_log(const scenario::InferenceRun& run) {
  std::string log;
  for_each_piece(run, 1 << 20, [&log](const std::string& piece) { log += piece; });
  return log;
}

void write_request_log(const scenario::InferenceRun& run, const std::string& path) {
  OutputFile file(path);
  for_each_piece(run, 1 << 20, [&file](const std::string& piece) { file.write(piece); });
  file.commit();
}

}  // namespace moesim::reports
