#pragma once
// A flow-level network on the discrete-event engine.
//
// Every transfer is a flow over a path of links (a GPU's NVLink port out and
// in, its NIC out and in, fat-tree leaf uplinks). Bandwidth is shared max-min
// fairly among the flows crossing each link (progressive filling), and the
// shares are recomputed whenever flows start or finish, only over the flows
// connected to the change through shared links. A flow first waits its path
// latency plus a per-message overhead, then moves its bytes.
//
// All flows finishing at the same instant are retired together and trigger
// one recomputation, so a collective of equal flows costs a few
// recomputations, not one per flow. Large collectives aggregate flows that
// share a path and a start (e.g. all GPU pairs between two nodes on one rail).

#include <array>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "hwmodels/cluster.h"
#include "sim/engine/engine.h"
#include "sim/network/collective_estimate.h"

namespace moesim::net {

class FlowNetwork : private EventHandler {
 public:
  FlowNetwork(Engine& engine, const hw::ClusterSpec& cluster);

  // Collectives over global GPU ranks; done.on_event(arg) fires when all of
  // their flows have finished. `bytes` conventions as in collective_estimate.h.
  void all_to_allv(std::span<const int> ranks, std::span<const double> bytes, AllToAllAlgo algo,
                   EventHandler& done, uint64_t arg);
  void all_reduce(std::span<const int> ranks, double bytes, EventHandler& done, uint64_t arg);
  void reduce_scatter(std::span<const int> ranks, double bytes, EventHandler& done, uint64_t arg);
  void all_gather(std::span<const int> ranks, double bytes, EventHandler& done, uint64_t arg);
  void send_recv(int src, int dst, double bytes, EventHandler& done, uint64_t arg);

  struct LinkStats {
    std::string name;
    double capacity_bytes_per_s = 0;
    double bytes_carried = 0;
  };
  std::vector<LinkStats> link_stats() const;
  uint64_t flows_started() const { return flows_started_; }
  double bytes_sent() const { return bytes_sent_; }
  double bytes_delivered() const { return bytes_delivered_; }

 private:
  struct Link {
    double capacity;
    double carried = 0;
    std::vector<uint32_t> flows;  // active flows crossing it
  };
  struct Flow {
    double remaining;
    double rate = 0;
    double size;
    std::vector<uint32_t> path;
    uint32_t phase;  // owning phase
    bool active = false;
  };
  // A set of flows that must all finish before the phase completes; ring
  // collectives chain phases (one per step).
  struct Phase {
    uint32_t outstanding = 0;
    uint32_t collective;
  };
  struct Collective {
    EventHandler* done;
    uint64_t arg;
    std::vector<std::vector<std::pair<std::array<int, 2>, double>>> steps;  // ring steps
    size_t next_step = 0;
  };

  void on_event(uint64_t kind) override;
  uint32_t add_link(const std::string& name, double capacity);
  std::vector<uint32_t> path(int src_gpu, int dst_gpu, bool via_dst_rail) const;
  void add_flow(std::vector<uint32_t> path, double bytes, uint32_t phase, SimTime delay);
  void start_collective(uint32_t c);
  void ring(std::span<const int> ranks, double bytes_per_step, int steps, EventHandler& done,
            uint64_t arg);
  void advance_to_now();
  void recompute(const std::vector<uint32_t>& seed_links);
  void schedule_next_completion();
  void finish_phase(uint32_t phase);

  Engine& engine_;
  hw::ClusterSpec cluster_;
  std::vector<Link> links_;
  std::vector<std::string> link_names_;
  std::vector<Flow> flows_;
  // recompute() scratch: per flow, 0 outside the component being re-shared.
  std::vector<uint8_t> flow_mark_;
  std::vector<uint32_t> active_;  // indices of active flows
  std::vector<Phase> phases_;
  std::vector<Collective> collectives_;
  // Flows waiting for their latency, released by a start event.
  std::vector<std::pair<SimTime, uint32_t>> pending_starts_;
  std::set<int64_t> start_times_;
  std::vector<uint32_t> nvl_out_, nvl_in_, nic_out_, nic_in_, leaf_up_, leaf_down_;
  std::vector<uint32_t> mesh_;  // node-local pair links (mesh fabric)
  SimTime last_advance_;
  EventId completion_;
  uint64_t flows_started_ = 0;
  double bytes_sent_ = 0, bytes_delivered_ = 0;
};

}  // namespace moesim::net
