// Issue 15: traces and routing dumps from anywhere never crash the reader,
// never make it reserve more than the file can hold, and are rejected with
// the byte offset (traces) or line (dumps) of the defect.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "sim/core/error.h"
#include "workloads/trace_file.h"
#include "workloads/trace_import.h"

namespace moesim::workloads {
namespace {

namespace fs = std::filesystem;
const fs::path kBad = fs::path(MOESIM_SOURCE_DIR) / "tests" / "data" / "bad";
const fs::path kCorpus = fs::path(MOESIM_SOURCE_DIR) / "tests" / "fuzz" / "corpus";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

int64_t read_all(TraceReader r) {
  RoutingBatch b;
  int step = 0, layer = 0;
  int64_t blocks = 0;
  while (r.next(step, layer, b)) ++blocks;
  return blocks;
}

TEST_CASE("every malformed trace reproducer is rejected with a byte offset", "[trace][robust]") {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kBad)) {
    if (entry.path().extension() != ".moetrace") continue;
    ++files;
    INFO(entry.path().filename().string());
    CHECK_THROWS_WITH(read_all(TraceReader(entry.path().string())), Catch::Contains(": byte "));
    CHECK_THROWS_AS(read_all(TraceReader::from_memory(slurp(entry.path()), "m")), Error);
  }
  CHECK(files >= 18);
}

TEST_CASE("valid traces of both format versions read block by block", "[trace][robust]") {
  const fs::path dir = kCorpus / "trace_read";
  TraceReader v1((dir / "valid-v1.moetrace").string());
  CHECK(v1.version() == 1);
  CHECK(v1.header().blocks() == 4);
  CHECK(read_all(std::move(v1)) == 4);
  TraceReader v2((dir / "valid-v2.moetrace").string());
  CHECK(v2.version() == 2);
  CHECK(read_all(std::move(v2)) == 4);
}

TEST_CASE("the writer writes blocks in order, each once, all of them", "[trace][robust]") {
  const fs::path path = fs::temp_directory_path() / "moesim-writer-order.moetrace";
  RoutingBatch b;
  b.resize(2, 2, 8);
  b.expert = {0, 1, 2, 3};
  b.weight = {0.5f, 0.5f, 0.5f, 0.5f};
  const TraceHeader h{"tiny-moe", 8, 2, 2, 1, 1, "test", 1};
  {
    TraceWriter w(path.string(), h);
    CHECK_THROWS_WITH(w.write(0, 1, b), Catch::Contains("where step 0 layer 0 comes next"));
    w.write(0, 0, b);
    CHECK_THROWS_WITH(w.finish(), Catch::Contains("1 of the header's 2 blocks"));
    RoutingBatch twice = b;
    twice.expert = {0, 0, 2, 3};
    CHECK_THROWS_WITH(w.write(0, 1, twice), Catch::Contains("routed twice"));
  }  // abandoned: nothing under the final name
  CHECK(!fs::exists(path));
  TraceHeader too_many_steps = h;
  too_many_steps.steps = kMaxTraceSteps + 1;
  CHECK_THROWS_WITH(TraceWriter(path.string(), too_many_steps),
                    Catch::Contains("steps: expected an integer in [1, 1000000]"));
  CHECK(!fs::exists(path));
}

TEST_CASE("JSONL import: lines in any order, each (step, layer) once", "[trace][robust]") {
  std::istringstream dump(
      R"({"step": 1, "layer": 0, "experts": [[0, 1]]})"
      "\n\n"
      R"({"step": 0, "layer": 0, "experts": [[2, 3], [1, 0]], "weights": [[0.7, 0.3], [1, 0]]})"
      "\n");
  JsonlTraceImport import(dump, "dump.jsonl", {});
  CHECK(import.header().steps == 2);
  CHECK(import.header().moe_layers == 1);
  CHECK(import.header().experts == 4);
  RoutingBatch b;
  import.read_block(0, b);  // step 0 comes first although it is the second line
  CHECK(b.tokens == 2);
  CHECK(b.expert == std::vector<int32_t>{2, 3, 1, 0});
  CHECK(b.weight[0] == 0.7f);
  import.read_block(1, b);
  CHECK(b.tokens == 1);
  CHECK(b.weight[0] == 0.5f);  // no weights: 1 / top_k

  auto reject = [](const std::string& text, const TraceImportOptions& options = {}) {
    std::istringstream in(text);
    JsonlTraceImport bad(in, "d", options);
  };
  CHECK_THROWS_WITH(reject(R"({"step": 0, "layer": 0, "experts": [[1, 2]], "weights": [[1]]})"),
                    "d: line 1 (byte 0): weights[0]: expected 2 gate weights, got [1]");
  CHECK_THROWS_WITH(reject("{\"step\": 0, \"layer\": 0, \"experts\": [[1]]}\n"
                           "{\"step\": 0, \"layer\": 0, \"experts\": [[1]]}\n"),
                    "d: line 2: step 0 layer 0 is already given on line 1");
  CHECK_THROWS_WITH(reject("{\"step\": 1, \"layer\": 0, \"experts\": [[1]]}\n"),
                    Catch::StartsWith("d: no line for step 0 layer 0"));
  CHECK_THROWS_WITH(reject(""), "d: no routing lines");
  CHECK_THROWS_WITH(reject(R"({"step": 0, "layer": 0, "experts": [[1]], "extra": 1})"),
                    "d: line 1 (byte 0): extra: unknown field");
  TraceImportOptions four;
  four.experts = 4;
  CHECK_THROWS_WITH(reject(R"({"step": 0, "layer": 0, "experts": [[4]]})", four),
                    Catch::Contains("experts[0][0]: expected an integer in [0, 3], got 4"));
}

TEST_CASE("JSONL import refuses lines longer than its limit before storing them",
          "[trace][robust]") {
  std::istringstream in(std::string(kMaxImportLineBytes + 10, ' '));
  CHECK_THROWS_WITH(JsonlTraceImport(in, "d", {}),
                    "d: line 1: longer than 67108864 bytes (the import limit)");
}

}  // namespace
}  // namespace moesim::workloads
