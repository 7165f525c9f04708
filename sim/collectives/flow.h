#pragma once
// Collectives played on the flow-level network (sim/network): every transfer
// of every collective is a flow sharing link bandwidth max-min fairly with
// whatever else is in flight, so concurrent collectives (a dispatch and a
// gradient reduction on the same NIC, pipeline sends in both directions) slow
// each other down, which AnalyticCollectives ignores.
//
// Algorithms: rings (all-reduce 2(n-1) steps, reduce-scatter and all-gather
// n-1 steps of bytes/n per neighbour, each step starting when the previous
// one has finished); all-to-allv as one batch of transfers, direct (each GPU
// sends on its own NIC, forwarded at the destination node) or hierarchical
// (gathered over NVLink to the GPU on the destination's rail first); send/recv
// as a direct all-to-allv of one pair.
//
// Transfers are aggregated into one flow only where they share every link and
// start together (e.g. all of one node's bytes to another node on one rail),
// which keeps a 2,048-GPU all-to-all to a few hundred thousand flows and does
// not change the max-min shares. Costs grow with the flows in flight.

#include <vector>

#include "sim/collectives/collective.h"
#include "sim/network/flow_network.h"

namespace moesim::coll {

class FlowCollectives : public CollectiveTimer, private net::FlowNetwork::BatchListener {
 public:
  FlowCollectives(Engine& engine, const hw::ClusterSpec& cluster);
  void start(const Collective& collective, EventHandler& done, uint64_t arg) override;

  const net::FlowNetwork& network() const { return network_; }
  // Conservation: flows started, bytes they were given and bytes delivered.
  uint64_t flows_started() const { return network_.flows_started(); }
  double bytes_sent() const { return network_.bytes_sent(); }
  double bytes_delivered() const { return network_.bytes_delivered(); }

 private:
  // A collective in flight: its ring steps still to run (0 for all-to-alls).
  struct Running {
    EventHandler* done;
    uint64_t arg;
    std::vector<int> ring;  // ring order (ring collectives only)
    double bytes_per_step = 0;
    int steps_left = 0;
  };

  void batch_done(uint64_t running) override;
  void all_to_allv(std::span<const int> ranks, std::span<const double> bytes,
                   AllToAllAlgorithm algo, uint32_t batch);
  void start_ring(std::span<const int> ranks, double bytes_per_step, int steps, EventHandler& done,
                  uint64_t arg);
  void start_ring_step(uint32_t running);

  Engine& engine_;
  net::FlowNetwork network_;
  std::vector<Running> running_;
  std::vector<double> bytes_;  // scratch: one all-to-allv's byte matrix
};

}  // namespace moesim::coll
