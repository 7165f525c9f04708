// A step's collectives timed on the flow-level network against the analytic
// timer, on task graphs built by hand.

#include "sim/exec/step_collectives.h"

#include <catch2/catch.hpp>

#include "hwmodels/cluster.h"
#include "sim/collectives/analytic.h"
#include "sim/collectives/flow.h"

namespace moesim::exec {
namespace {

hw::ClusterSpec one_node() {
  return hw::resolve_cluster(Json{{"preset", "dgx-h100"}, {"nodes", 1}}, "cluster");
}

// Two point-to-point transfers of S bytes from GPU 0 to GPU 1, both ready at
// time 0: they share GPU 0's NVLink port.
StepGraph two_transfers(double bytes) {
  StepGraph step;
  step.graph = TaskGraph(2);
  step.groups.push_back({0, 1});
  for (int i = 0; i < 2; ++i) {
    CollectiveDesc d{CollectiveOp::kSendRecv};
    d.bytes = bytes;
    d.group = 0;
    const auto c = step.graph.add_collective(static_cast<uint32_t>(step.collectives.size()));
    step.collectives.push_back(d);
    step.graph.add_comm(0, Stream::kNone, Category::kPpComm, c, {});
    step.graph.add_comm(1, Stream::kNone, Category::kPpComm, c, {});
  }
  step.graph.finalize();
  return step;
}

double makespan(const StepGraph& step, coll::CollectiveTimer& timer, Engine& engine) {
  StepCollectives collectives(step, timer, coll::AllToAllAlgorithm::kDirect);
  GraphExecutor executor(engine, step.graph, false);
  return executor.run(collectives).makespan.seconds();
}

TEST_CASE("flow timer: concurrent transfers share a link; the analytic timer times each alone",
          "[exec][collectives]") {
  const auto c = one_node();
  const double S = 1e9, B = c.node.achievable_intra_bytes_per_s();
  const StepGraph step = two_transfers(S);
  const double latency = coll::send_recv_seconds(c, 0, 1, S) - S / B;

  Engine flow_engine;
  coll::FlowCollectives flow(flow_engine, c);
  // Both move S through one port at B: together 2S / B.
  CHECK(makespan(step, flow, flow_engine) == Approx(2 * S / B + latency).epsilon(0.01));
  CHECK(flow.network().bytes_delivered() == Approx(2 * S));

  Engine analytic_engine;
  coll::AnalyticCollectives analytic(analytic_engine, c);
  CHECK(makespan(step, analytic, analytic_engine) == Approx(S / B + latency).epsilon(1e-6));
  // The two transfers are the same collective: timed once.
  CHECK(analytic.distinct_estimates() == 1);
}

}  // namespace
}  // namespace moesim::exec
