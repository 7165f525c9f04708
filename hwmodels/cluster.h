#pragma once
// Nodes and the fabric between them.
//
// A node holds gpus_per_node GPUs on an intra-node fabric: an NVSwitch (every
// GPU reaches every other at its full per-direction NVLink bandwidth,
// non-blocking), a full mesh of point-to-point links (MI300X Infinity Fabric:
// one link per GPU pair), or a PCIe switch. Each GPU has its own NIC (GPU i
// uses NIC i mod nics). Nodes connect through a rail-optimized fabric (NIC i of
// every node on rail switch i: non-blocking between same-index NICs; traffic
// between different rails crosses a spine whose uplinks carry
// 1/oversubscription of the rail's NIC bandwidth) or a two-level fat tree
// (nodes_per_leaf nodes per leaf; leaf uplinks carry 1/oversubscription of the
// leaf's NIC bandwidth).

#include <optional>
#include <string>
#include <vector>

#include "hwmodels/gpu.h"
#include "sim/core/config.h"

namespace moesim::hw {

enum class IntraNodeFabric { kNvSwitch, kMesh, kPcie };
enum class InterNodeFabric { kRailOptimized, kFatTree };

// Link rates are datasheet (line) rates; the efficiencies are the fraction of
// them that communication libraries actually move as payload (protocol and
// flow-control overhead), and every network model times transfers at
// rate x efficiency (the achievable_* helpers).
struct NodeSpec {
  int gpus_per_node = 8;
  IntraNodeFabric intra = IntraNodeFabric::kNvSwitch;
  // Per GPU per direction: NVSwitch port bandwidth, or one mesh link, or PCIe.
  double intra_bytes_per_s = 0;
  double intra_efficiency = 1;
  double intra_latency_s = 0;
  int nics = 8;
  double nic_bytes_per_s = 0;  // per NIC per direction
  double nic_efficiency = 1;
  double pcie_bytes_per_s = 0;  // GPU <-> host, per direction
  double host_memory_bytes = 0;
  // All-to-all kernels that copy with a few SMs (DeepEP's normal kernels, 20-24
  // SMs) move less over NVLink than NCCL's rings: this fraction of the line
  // rate. 0: same as intra_efficiency.
  double a2a_intra_efficiency = 0;
  // NVLink SHARP (NVSwitch 3 and later): reductions and multicast inside the
  // switch, which NCCL's NVLS algorithm uses for collectives within a node.
  bool nvls = false;
  // DeepEP's low-latency kernels write same-node token copies over NVLink
  // (the NVLink-assisted variant, default since DeepEP aae9fa9, 2025-05-23);
  // false: every copy through the NIC (pure RDMA).
  bool low_latency_nvlink = true;
  // ... copying at this fraction of the line rate (0: a2a_intra_efficiency).
  double low_latency_intra_efficiency = 0;
  // The fixed part of one low-latency kernel, whatever its message count
  // (0: none calibrated; the generic message latency applies).
  double low_latency_kernel_s = 0;

  double achievable_intra_bytes_per_s() const { return intra_bytes_per_s * intra_efficiency; }
  double achievable_a2a_intra_bytes_per_s() const {
    return intra_bytes_per_s * (a2a_intra_efficiency > 0 ? a2a_intra_efficiency : intra_efficiency);
  }
  double achievable_low_latency_intra_bytes_per_s() const {
    return low_latency_intra_efficiency > 0 ? intra_bytes_per_s * low_latency_intra_efficiency
                                            : achievable_a2a_intra_bytes_per_s();
  }
  double achievable_nic_bytes_per_s() const { return nic_bytes_per_s * nic_efficiency; }
};

struct FabricSpec {
  InterNodeFabric kind = InterNodeFabric::kRailOptimized;
  double oversubscription = 1;  // fat tree: leaf downlink / uplink bandwidth
  int nodes_per_leaf = 4;
  double hop_latency_s = 0;       // per switch hop
  double message_overhead_s = 0;  // per message, on top of wire time (software, NIC)
};

struct ClusterSpec {
  std::string name;
  GpuSpec gpu;
  NodeSpec node;
  FabricSpec fabric;
  int nodes = 1;
  std::map<std::string, std::string> sources;

  int gpu_count() const { return nodes * node.gpus_per_node; }
  int node_of(int rank) const { return rank / node.gpus_per_node; }
  int leaf_of_node(int node_index) const { return node_index / fabric.nodes_per_leaf; }
  // GPU rank's achievable NIC bandwidth share when all GPUs of the node send
  // off-node.
  double nic_bytes_per_s_per_gpu() const {
    return node.achievable_nic_bytes_per_s() * node.nics / node.gpus_per_node;
  }
  // Rail-optimized: what one rail's uplinks to the spine carry (each
  // direction), achievable rate; traffic between NICs of different rails
  // crosses them.
  double rail_uplink_bytes_per_s() const {
    return nodes * node.achievable_nic_bytes_per_s() / fabric.oversubscription;
  }
  // Switch hops between two NICs, as seconds of wire latency: three on one
  // rail (NIC, leaf, NIC), five between rails (through the spine).
  double switch_hops_s(bool inter_node, bool cross_rail) const {
    return inter_node ? (cross_rail ? 5 : 3) * fabric.hop_latency_s : 0;
  }
  // The fixed time of one DeepEP low-latency kernel whose messages cross
  // these hops: node.low_latency_kernel_s plus the wire.
  double low_latency_fixed_s(bool inter_node, bool cross_rail) const {
    return node.low_latency_kernel_s + switch_hops_s(inter_node, cross_rail);
  }
  // The NIC (rail) a GPU uses: GPU i of a node uses NIC i mod nics.
  int rail_of(int rank) const { return (rank % node.gpus_per_node) % node.nics; }
  // Fat tree: what one leaf's uplinks carry (each direction), achievable rate.
  double leaf_uplink_bytes_per_s() const {
    return fabric.nodes_per_leaf * node.nics * node.achievable_nic_bytes_per_s() /
           fabric.oversubscription;
  }
};

// `value`: a preset name ("dgx-h100"), or {"preset": name, "nodes": N, ...}
// overriding fields ("gpu" may itself be a preset name or object), or inline.
// `nodes_override` (from --nodes) wins over the JSON.
ClusterSpec resolve_cluster(const Json& value, const std::string& path,
                            std::optional<int> nodes_override = std::nullopt);
// The spec as reports show it: the input fields resolved, plus the derived
// "gpus" (nodes x gpus_per_node); the GPU as gpu_json() shows it.
Json cluster_json(const ClusterSpec& cluster);
// The spec in the input format: resolve_cluster() of it gives `cluster` back
// (less descriptions and sources), so it can be edited and used inline.
Json cluster_input_json(const ClusterSpec& cluster);

struct PresetInfo {
  std::string kind;  // "gpu" or "cluster"
  std::string name;
  std::string description;
};
std::vector<PresetInfo> list_presets();

}  // namespace moesim::hw
