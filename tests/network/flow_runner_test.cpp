// The flow-level collective runner of `moesim run` (network_model "flow")
// against the analytic one, on task graphs built by hand.

#include "sim/app/flow_collective_runner.h"

#include <catch2/catch.hpp>

#include "sim/exec/collective_runner.h"
#include "sim/network/collective_estimate.h"

namespace moesim::cli {
namespace {

using exec::Category;
using exec::CollectiveDesc;
using exec::CollectiveOp;
using exec::Stream;

hw::ClusterSpec one_node() {
  return hw::resolve_cluster(Json{{"preset", "dgx-h100"}, {"nodes", 1}}, "cluster");
}

// Two point-to-point transfers of S bytes from GPU 0 to GPU 1, both ready at
// time 0: they share GPU 0's NVLink port.
exec::StepGraph two_transfers(double bytes) {
  exec::StepGraph step;
  step.graph = exec::TaskGraph(2);
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

TEST_CASE("flow runner: concurrent transfers share a link, the analytic runner times each alone",
          "[network][exec]") {
  const auto c = one_node();
  const double S = 1e9, B = c.node.achievable_intra_bytes_per_s();
  const exec::StepGraph step = two_transfers(S);
  const double latency = net::send_recv_seconds(c, 0, 1, S) - S / B;

  Engine flow_engine;
  FlowCollectiveRunner flow(flow_engine, step, c, exec::AllToAllAlgorithm::kDirect);
  exec::GraphExecutor flow_exec(flow_engine, step.graph, false);
  const double flow_s = flow_exec.run(flow).makespan.seconds();
  // Both move S through one port at B: together 2S / B.
  CHECK(flow_s == Approx(2 * S / B + latency).epsilon(0.01));
  CHECK(flow.network().bytes_delivered() == Approx(2 * S));

  Engine analytic_engine;
  exec::AnalyticCollectiveRunner analytic(
      analytic_engine, step,
      [&](const CollectiveDesc& d, const std::vector<int>& ranks, const std::vector<int64_t>*) {
        return net::send_recv_seconds(c, ranks[0], ranks[1], d.bytes);
      });
  exec::GraphExecutor analytic_exec(analytic_engine, step.graph, false);
  CHECK(analytic_exec.run(analytic).makespan.seconds() == Approx(S / B + latency).epsilon(1e-6));
}

}  // namespace
}  // namespace moesim::cli
