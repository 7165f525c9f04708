#pragma once
// Collectives played on the flow-level network (sim/network): every transfer
// of every collective is a flow sharing link bandwidth max-min fairly with
// whatever else is in flight, so concurrent collectives (a dispatch and a
// gradient reduction on the same NIC, pipeline sends in both directions) slow
// each other down.
//
// The algorithms are those of analytic.h / link_loads.h, as transfers:
//   ring      2(n-1) (all-reduce) or n-1 steps of bytes/n to the ring
//             successor, each starting when the last one finished; across
//             nodes one channel per NIC (NCCL's multi-rail rings), channel c
//             leaving each node from its c-th member's successor's rail;
//   NVLS      one round through the NVSwitch: each GPU's port carries the
//             buffer ((n+1)/n of it for all-reduce) each way, at NCCL's NVLS
//             efficiency;
//   tree      chains in nodes and a double binary tree between nodes, reduce
//             up then broadcast down (two batches);
//   all-to-all  direct pairs (across the spine when rails differ), NCCL's PXN
//             (kHierarchical on a byte matrix), DeepEP's node-deduplicated
//             dispatch with its NVLink fan-out (kHierarchical on tokens), or
//             DeepEP's low-latency messages (NVLink copies and RDMA puts together);
//   send/recv a direct pair.
// DeepEP's kernels also cross their GPUs' SM copy engines (a2a_copy,
// low_latency_copy links of the network), which cap what few SMs can move.
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
  struct PendingFlow {
    net::FlowNetwork::Path path;
    double bytes;
    SimTime delay;
  };
  // A collective in flight: its ring steps still to run, or its batches of
  // flows still to start (each batch starts when the previous one finished).
  struct Running {
    EventHandler* done;
    uint64_t arg;
    std::vector<std::vector<int>> rings;  // ring order per channel (ring collectives)
    double bytes_per_flow = 0;
    int steps_left = 0;
    std::vector<std::vector<PendingFlow>> batches;
    size_t next_batch = 0;
  };

  void batch_done(uint64_t running) override;
  uint32_t add_running(EventHandler& done, uint64_t arg);
  void start_batches(uint32_t running);
  void all_to_allv(std::span<const int> ranks, std::span<const double> bytes,
                   AllToAllAlgorithm algo, uint32_t batch);
  std::vector<std::vector<PendingFlow>> low_latency(std::span<const int> ranks,
                                                    std::span<const double> bytes) const;
  std::vector<PendingFlow> node_dedup(const Collective& collective) const;
  std::vector<PendingFlow> nvls(const Collective& collective) const;
  std::vector<std::vector<PendingFlow>> tree(const Collective& collective) const;
  void start_ring(const Collective& collective, EventHandler& done, uint64_t arg);
  void start_ring_step(uint32_t running);
  PendingFlow transfer(int src, int dst, double bytes) const;

  Engine& engine_;
  net::FlowNetwork network_;
  std::vector<Running> running_;
  std::vector<double> bytes_;  // scratch: one all-to-allv's byte matrix
};

}  // namespace moesim::coll
