#pragma once
// A flow-level network on the discrete-event engine: links are resources,
// transfers are flows, and one solver shares link capacity among them.
//
// Every transfer is a flow over a path of links (a GPU's NVLink port out and
// in, or a mesh link; its node's NICs out and in; a rail-optimized fabric's
// spine uplinks, or fat-tree leaf uplinks). All-to-all kernels that copy with
// a few SMs also cross their GPU's copy engine, a resource of the rate those
// SMs reach, shared by all of that GPU's all-to-all flows.
// Bandwidth is shared max-min fairly among the flows crossing each link
// (progressive filling), and the shares are recomputed whenever flows start or
// finish, only over the flows connected to the change through shared links. A
// flow first waits its latency (given when it is added), then moves its bytes.
//
// Flows are grouped in batches: a batch completes when the last of its flows
// has finished, and its listener is then called at once, from inside the
// network's event handling, so that it may start the next batch at the same
// instant (a ring's next step). All flows finishing at the same instant are
// retired together and trigger one recomputation.
//
// The network knows nothing about collectives: sim/collectives decomposes
// them into batches of flows over the paths this class builds.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "hwmodels/cluster.h"
#include "sim/engine/engine.h"

namespace moesim::net {

class FlowNetwork : private EventHandler {
 public:
  using Path = std::vector<uint32_t>;  // link ids

  // Called when every flow of a batch has finished.
  class BatchListener {
   public:
    virtual ~BatchListener() = default;
    virtual void batch_done(uint64_t tag) = 0;
  };

  FlowNetwork(Engine& engine, const hw::ClusterSpec& cluster);
  const hw::ClusterSpec& cluster() const { return cluster_; }

  // Paths. Across nodes a transfer uses the NIC on the source GPU's rail, or
  // with `via_dst_rail` the destination GPU's rail (forwarded over NVLink to
  // the GPU owning that NIC first, as NCCL's PXN and DeepEP do); at the far
  // end it is forwarded to its GPU over NVLink.
  Path gpu_path(int src_gpu, int dst_gpu, bool via_dst_rail) const;
  // Appends the links from local GPU a to local GPU b of `node` (none if a == b).
  void append_intra_node(Path& path, int node, int local_a, int local_b) const;
  // A GPU's NVSwitch port, out and in (traffic the switch itself reduces or
  // multicasts: NVLink SHARP). REQUIRES: an NVSwitch node.
  Path switch_ports(int gpu) const { return {nvl_out_[gpu], nvl_in_[gpu]}; }
  // NIC `rail` of src_node to NIC `rail` of dst_node, through the fabric.
  Path rail_path(int src_node, int dst_node, int rail) const;
  // NIC src_rail of src_node to NIC dst_rail of dst_node: on a rail-optimized
  // fabric, different rails meet through the spine.
  Path network_path(int src_node, int src_rail, int dst_node, int dst_rail) const;
  // The SM copy engines of all-to-all kernels: DeepEP's normal kernels and
  // its low-latency kernels (node.a2a_intra_efficiency and
  // node.low_latency_intra_efficiency of the line rate).
  enum class CopyEngine { kAllToAll, kLowLatency };
  uint32_t copy_link(int gpu, CopyEngine engine) const;
  // The local GPU that owns NIC `rail` in every node.
  int rail_gpu(int rail) const { return rail * cluster_.node.gpus_per_node / cluster_.node.nics; }
  // A message's latency before its bytes move: the wire (NVLink, plus three
  // switch hops across nodes) and the per-message software overhead.
  // Crossing the spine adds two switch hops.
  SimTime message_latency(bool inter_node, bool cross_rail = false) const;

  // Transfers. REQUIRES: flows are added between open_batch and close_batch.
  uint32_t open_batch(BatchListener& listener, uint64_t tag);
  // `bytes` over `path`, starting after `delay`. Empty paths or no bytes
  // complete when the delay has passed.
  void add_flow(uint32_t batch, Path path, double bytes, SimTime delay);
  // No more flows for `batch`; if none is pending, the listener is called now.
  void close_batch(uint32_t batch);

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
    Path path;
    uint32_t batch;
    bool active = false;
  };
  struct Batch {
    BatchListener* listener;
    uint64_t tag;
    uint32_t outstanding = 0;
    bool closed = false;
  };

  void on_event(uint64_t kind) override;
  uint32_t add_link(const std::string& name, double capacity);
  void flow_finished(uint32_t batch);
  void advance_to_now();
  void recompute(const std::vector<uint32_t>& seed_links);
  void schedule_next_completion();

  Engine& engine_;
  hw::ClusterSpec cluster_;
  std::vector<Link> links_;
  std::vector<std::string> link_names_;
  std::vector<Flow> flows_;
  // recompute() scratch: per flow, 0 outside the component being re-shared.
  std::vector<uint8_t> flow_mark_;
  std::vector<uint32_t> active_;  // indices of active flows
  std::vector<Batch> batches_;
  // Flows waiting for their latency, released by a start event.
  std::vector<std::pair<SimTime, uint32_t>> pending_starts_;
  std::set<int64_t> start_times_;
  std::vector<uint32_t> nvl_out_, nvl_in_, nic_out_, nic_in_, leaf_up_, leaf_down_;
  std::vector<uint32_t> spine_up_, spine_down_;  // per rail (rail-optimized fabric)
  std::vector<uint32_t> a2a_copy_, ll_copy_;     // per GPU
  std::vector<uint32_t> mesh_;                   // node-local pair links (mesh fabric)
  SimTime last_advance_;
  EventId completion_;
  uint64_t flows_started_ = 0;
  double bytes_sent_ = 0, bytes_delivered_ = 0;
};

}  // namespace moesim::net
