#include "workloads/requests.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/core/file_io.h"
#include "sim/core/rng.h"

namespace moesim::workloads {
namespace {

// A token count: a number, or a distribution drawn from `rng`.
class LengthSpec {
 public:
  LengthSpec(const Json& value, const std::string& path) : path_(path) {
    if (!value.is_object()) {
      fixed_ = expect_integer(value, path, 1, kMaxRequestTokens);
      return;
    }
    ConfigObject o(value, path);
    dist_ = o.choice("dist", {"uniform", "normal", "lognormal"});
    if (dist_ == "uniform") {
      a_ = static_cast<double>(o.integer("min", 1, kMaxRequestTokens));
      b_ = static_cast<double>(o.integer("max", 1, kMaxRequestTokens));
      if (b_ < a_) throw_config_error(o.field_path("max"), "must be at least min");
    } else {
      a_ = o.number("mean", 1, static_cast<double>(kMaxRequestTokens));
      b_ = o.number("std", 0, static_cast<double>(kMaxRequestTokens));
    }
    o.finish();
  }

  int64_t draw(Rng& rng) const {
    if (fixed_ > 0) return fixed_;
    double x;
    if (dist_ == "uniform") {
      x = a_ + static_cast<double>(rng.below(static_cast<uint64_t>(b_ - a_) + 1));
    } else if (dist_ == "normal") {
      x = std::round(a_ + b_ * rng.normal());
    } else {
      // Lognormal with the given mean m and standard deviation s of the
      // lengths: sigma^2 = ln(1 + s^2/m^2), mu = ln m - sigma^2 / 2.
      const double sigma2 = std::log(1 + (b_ * b_) / (a_ * a_));
      x = std::round(std::exp(std::log(a_) - sigma2 / 2 + std::sqrt(sigma2) * rng.normal()));
    }
    return static_cast<int64_t>(std::clamp(x, 1.0, static_cast<double>(kMaxRequestTokens)));
  }

 private:
  std::string path_;
  int64_t fixed_ = 0;
  std::string dist_;
  double a_ = 0, b_ = 0;
};

std::vector<Request> read_trace(const std::string& file, const std::string& path) {
  std::string text;
  try {
    text = read_file(file);  // at most kMaxInputFileBytes
  } catch (const Error& e) {
    throw_config_error(path, e.what());
  }
  std::vector<Request> out = parse_request_trace(text, file);
  if (out.empty()) throw_config_error(path, fmt::format("'{}' holds no request", file));
  return out;
}

}  // namespace

std::vector<Request> parse_request_trace(std::string_view text, const std::string& file) {
  std::vector<Request> out;
  int64_t number = 0;
  double last = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = fmt::format("{}: line {}", file, number);
    if (static_cast<int64_t>(out.size()) >= kMaxRequests) {
      throw Error(fmt::format("{}: more than {} requests", where, kMaxRequests));
    }
    const Json doc = parse_json(line, where);
    ConfigObject o(doc, where);
    Request r;
    r.arrival_s = o.number("arrival_s", 0, 1e9);
    r.input_tokens = o.integer("input_tokens", 1, kMaxRequestTokens);
    r.output_tokens = o.integer("output_tokens", 1, kMaxRequestTokens);
    o.finish();
    if (r.arrival_s < last) {
      throw Error(
          fmt::format("{}: arrival_s {} is before the previous line's {} (requests "
                      "must be in arrival order)",
                      where, r.arrival_s, last));
    }
    last = r.arrival_s;
    out.push_back(r);
  }
  return out;
}

RequestLoad parse_request_load(const Json& value, const std::string& path) {
  ConfigObject o(value, path);
  RequestLoad load;
  if (o.has("trace")) {
    load.arrival = RequestLoad::Arrival::kTrace;
    load.requests = read_trace(o.string("trace"), o.field_path("trace"));
    o.finish();
    return load;
  }
  const int64_t count = o.integer("count", 1, kMaxRequests);
  const std::string arrival = o.choice("arrival", {"poisson", "closed"});
  const LengthSpec input(o.value("input_tokens"), o.field_path("input_tokens"));
  const LengthSpec output(o.value("output_tokens"), o.field_path("output_tokens"));
  const uint64_t seed = static_cast<uint64_t>(o.integer_or("seed", 1, 0, INT64_MAX));
  if (arrival == "poisson") {
    load.arrival = RequestLoad::Arrival::kPoisson;
    load.rate_per_s = o.number("rate_per_s", 1e-9, 1e9);
  } else {
    load.arrival = RequestLoad::Arrival::kClosed;
    load.concurrency = static_cast<int>(o.integer("concurrency", 1, 1 << 24));
  }
  o.finish();
  // One stream per purpose: arrivals, prompt lengths, output lengths.
  Rng gaps(seed, 1), prompts(seed, 2), outputs(seed, 3);
  double at = 0;
  load.requests.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    Request r;
    if (load.arrival == RequestLoad::Arrival::kPoisson) {
      at += gaps.exponential(1 / load.rate_per_s);
      r.arrival_s = at;
    }
    r.input_tokens = input.draw(prompts);
    r.output_tokens = output.draw(outputs);
    load.requests.push_back(r);
  }
  return load;
}

Json request_load_json(const RequestLoad& load, const Json& spec) {
  Json j = spec;
  int64_t in = 0, out = 0;
  for (const Request& r : load.requests) in += r.input_tokens, out += r.output_tokens;
  j["resolved"] = {
      {"requests", load.requests.size()}, {"input_tokens", in}, {"output_tokens", out}};
  return j;
}

}  // namespace moesim::workloads
