#pragma once
// Request load for serving: who arrives when, with how many prompt tokens and
// how many tokens to generate.
//
//   {"count": N, "arrival": "poisson", "rate_per_s": R, ...}  open loop
//   {"count": N, "arrival": "closed", "concurrency": C, ...}  C always in flight
//   {"trace": "requests.jsonl"}  one request per line:
//        {"arrival_s": 0.5, "input_tokens": 512, "output_tokens": 128}
// with "input_tokens" / "output_tokens" a number or a seeded distribution
//   {"dist": "uniform", "min": a, "max": b}
//   {"dist": "normal", "mean": m, "std": s}      (clipped to [1, max])
//   {"dist": "lognormal", "mean": m, "std": s}   (m, s of the lengths, not of their log)
// and "seed" (default 1). Lengths are whole tokens in [1, kMaxRequestTokens].

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/config.h"

namespace moesim::workloads {

// Longest prompt or generation one request may ask for (2^22 tokens: past
// every model's context window; keeps token counts far from overflow).
inline constexpr int64_t kMaxRequestTokens = int64_t{1} << 22;
// Most requests one scenario may hold (each takes ~100 bytes of state plus
// its token times for latency statistics).
inline constexpr int64_t kMaxRequests = int64_t{1} << 22;

struct Request {
  double arrival_s = 0;  // open loop and traces; closed loop: 0 (set when admitted)
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
};

struct RequestLoad {
  enum class Arrival { kPoisson, kClosed, kTrace } arrival = Arrival::kPoisson;
  double rate_per_s = 0;          // Poisson
  int concurrency = 0;            // closed loop
  std::vector<Request> requests;  // in arrival order (closed loop: issue order)
};

// Validates `value` (JSON path `path`) and draws the requests. A trace path is
// read relative to the working directory; its errors name the line.
RequestLoad parse_request_load(const Json& value, const std::string& path);
Json request_load_json(const RequestLoad& load, const Json& spec);
// The requests of a trace's text (JSONL, one request per line, blank lines
// skipped); errors name `file` and the line. Empty text gives no request.
std::vector<Request> parse_request_trace(std::string_view text, const std::string& file);

}  // namespace moesim::workloads
