#include "reports/summary.h"

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/exec/task_graph.h"
#include "sim/exec/training_metrics.h"

namespace moesim::reports {
namespace {

// The reports' breakdown keys, in report order: every category a scenario
// always reports, and those only some report (the context-parallel ring's,
// activation offload's) when one of the points' reports has them.
std::vector<std::string> breakdown_keys(const std::vector<SummaryPoint>& points) {
  std::vector<std::string> keys;
  for (int c = 0; c < exec::kCategoryCount; ++c) {
    const std::string key = std::string(exec::category_name(static_cast<exec::Category>(c))) + "_s";
    const exec::ParallelConfig features_off;
    bool wanted = exec::category_in_use(static_cast<exec::Category>(c), features_off);
    for (const SummaryPoint& p : points) {
      const OrderedJson& rep = p.report;
      wanted = wanted || (rep.is_object() && rep.contains("breakdown") &&
                          rep["breakdown"].is_object() && rep["breakdown"].contains(key));
    }
    if (wanted) keys.push_back(key);
  }
  keys.push_back("pipeline_bubble_s");
  keys.push_back("idle_s");
  return keys;
}

OrderedJson at(const OrderedJson& doc, const std::string& a, const std::string& b = "") {
  if (!doc.is_object() || !doc.contains(a)) return nullptr;
  const OrderedJson& x = doc[a];
  if (b.empty()) return x;
  return x.is_object() && x.contains(b) ? x[b] : OrderedJson(nullptr);
}

std::string csv_cell(const OrderedJson& v) {
  std::string s;
  if (v.is_null()) return "";
  if (v.is_string()) {
    s = v.get<std::string>();
  } else {
    s = v.dump();
  }
  if (s.find_first_of(",\"\n") != std::string::npos) {
    std::string q = "\"";
    for (char c : s) {
      q += c;
      if (c == '"') q += '"';
    }
    q += '"';
    return q;
  }
  return s;
}

}  // namespace

std::vector<OrderedJson> summary_rows(const std::vector<SummaryPoint>& points) {
  std::vector<OrderedJson> rows;
  const std::vector<std::string> breakdown = breakdown_keys(points);
  for (const SummaryPoint& p : points) {
    OrderedJson r;
    r["point"] = p.index;
    r["hash"] = p.hash;
    for (const auto& [k, v] : p.axes) r[k] = v;
    const OrderedJson& rep = p.report;
    r["status"] = rep.is_null() ? "invalid" : rep["status"];
    r["step_time_s"] = at(rep, "step_time_s");
    r["tokens_per_s"] = at(rep, "tokens_per_s");
    r["tokens_per_s_per_gpu"] = at(rep, "tokens_per_s_per_gpu");
    r["mfu"] = at(rep, "mfu");
    r["memory.peak_bytes"] = at(rep, "memory", "peak_bytes");
    r["memory.fits"] = at(rep, "memory", "fits");
    r["experts.max_over_mean_load"] = at(rep, "experts", "max_over_mean_load");
    r["experts.drop_rate"] = at(rep, "experts", "drop_rate");
    r["bottleneck"] = at(rep, "bottleneck");
    for (const std::string& b : breakdown) r["breakdown." + b] = at(rep, "breakdown", b);
    r["error"] = p.error.empty() ? OrderedJson(nullptr) : OrderedJson(p.error);
    r["report"] = p.report_file;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string summary_csv(const std::vector<OrderedJson>& rows) {
  std::string out;
  if (rows.empty()) return out;
  bool first = true;
  for (const auto& [k, v] : rows[0].items()) {
    if (!first) out += ',';
    out += csv_cell(OrderedJson(k));
    first = false;
  }
  out += "\n";
  for (const auto& r : rows) {
    first = true;
    for (const auto& [k, v] : r.items()) {
      if (!first) out += ',';
      out += csv_cell(v);
      first = false;
    }
    out += "\n";
  }
  return out;
}

std::string summary_jsonl(const std::vector<OrderedJson>& rows) {
  std::string out;
  for (const auto& r : rows) out += r.dump() + "\n";
  return out;
}

Table parse_csv(const std::string& text, const std::string& source) {
  Table t;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, any = false;
  size_t line = 1;
  auto end_row = [&] {
    row.push_back(cell);
    cell.clear();
    if (t.columns.empty()) {
      t.columns = row;
    } else if (row.size() != t.columns.size()) {
      throw Error(fmt::format("{}: line {}: {} cells, expected {}", source, line, row.size(),
                              t.columns.size()));
    } else {
      t.rows.push_back(row);
    }
    row.clear();
    ++line;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    any = true;
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(cell);
      cell.clear();
    } else if (c == '\n') {
      end_row();
      any = false;
    } else if (c != '\r') {
      cell += c;
    }
  }
  if (any) end_row();
  if (quoted) throw Error(fmt::format("{}: unterminated quoted cell", source));
  if (t.columns.empty()) throw Error(fmt::format("{}: empty CSV", source));
  return t;
}

}  // namespace moesim::reports
