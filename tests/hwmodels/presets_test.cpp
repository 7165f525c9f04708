#include <catch2/catch.hpp>

#include "hwmodels/cluster.h"

namespace moesim::hw {
namespace {

// The input form of every shipped preset resolves back to the same spec:
// `moesim presets NAME` prints it for users to edit and use inline.
TEST_CASE("every preset's input form resolves to the preset", "[hwmodels][presets]") {
  for (const PresetInfo& p : list_presets()) {
    CAPTURE(p.name);
    if (p.kind == "cluster") {
      const ClusterSpec spec = resolve_cluster(Json(p.name), "cluster");
      const Json input = cluster_input_json(spec);
      CHECK_FALSE(input.contains("gpus"));  // derived: the parser refuses it
      const ClusterSpec again = resolve_cluster(input, "cluster");
      CHECK(cluster_json(again) == cluster_json(spec));
      CHECK(again.gpu.sms == spec.gpu.sms);
    } else {
      const GpuSpec spec = resolve_gpu(Json(p.name), "gpu");
      const GpuSpec again = resolve_gpu(gpu_input_json(spec), "gpu");
      CHECK(gpu_json(again) == gpu_json(spec));
      CHECK(again.sms == spec.sms);
    }
  }
}

// The report form is not an input: its "gpus" is derived.
TEST_CASE("a cluster's report form carries the derived GPU count", "[hwmodels][presets]") {
  const ClusterSpec spec = resolve_cluster(Json{{"preset", "dgx-h100"}, {"nodes", 4}}, "cluster");
  CHECK(cluster_json(spec)["gpus"] == 32);
  CHECK_THROWS_WITH(resolve_cluster(cluster_json(spec), "cluster"),
                    Catch::Contains("cluster.gpus: unknown field"));
}

}  // namespace
}  // namespace moesim::hw
