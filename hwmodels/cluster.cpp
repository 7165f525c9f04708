#include "hwmodels/cluster.h"

#include <cmath>

#include <fmt/format.h>

#include "hwmodels/presets.h"
#include "sim/core/error.h"

namespace moesim::hw {
namespace {

// Physical ranges of the fields: from PCIe 3.0 x4 (~4 GB/s) and 1 Gb/s
// Ethernet to 100x NVLink 5 (900 GB/s per direction) and 1.6 Tb/s NICs, so a
// unit slip is named at its field instead of surfacing as a clock overflow.
constexpr double kMinLinkGbPerS = 1, kMaxLinkGbPerS = 1e5;
constexpr double kMaxPcieGbPerS = 1e4;  // PCIe 6.0 x16: 128 GB/s
constexpr double kMinNicGbitPerS = 1, kMaxNicGbitPerS = 1e5;
// Latencies and per-message overheads are microseconds; a millisecond is
// already a WAN.
constexpr double kMaxLatencyUs = 1000;
constexpr double kMaxHostMemoryGb = 1e6;
constexpr double kMinEfficiency = 0.01;

}  // namespace

ClusterSpec resolve_cluster(const Json& value, const std::string& path,
                            std::optional<int> nodes_override) {
  const Json doc = resolve_preset_reference("cluster", value, path);
  ConfigObject o(doc, path);
  ClusterSpec c;
  c.name = o.string_or("name", "custom-cluster");
  o.string_or("description", "");
  c.gpu = resolve_gpu(o.value("gpu"), o.field_path("gpu"));
  c.nodes = static_cast<int>(o.integer_or("nodes", 1, 1, 1 << 20));
  if (nodes_override) {
    if (*nodes_override < 1) throw Error("--nodes: expected a positive integer");
    c.nodes = *nodes_override;
  }
  ConfigObject n = o.object("node");
  c.node.gpus_per_node = static_cast<int>(n.integer("gpus_per_node", 1, 1024));
  const std::string intra = n.choice("intra_fabric", {"nvswitch", "mesh", "pcie"});
  c.node.intra = intra == "nvswitch" ? IntraNodeFabric::kNvSwitch
                 : intra == "mesh"   ? IntraNodeFabric::kMesh
                                     : IntraNodeFabric::kPcie;
  c.node.intra_bytes_per_s = n.number("intra_gb_per_s", kMinLinkGbPerS, kMaxLinkGbPerS) * 1e9;
  c.node.intra_efficiency = n.number_or("intra_efficiency", 1, kMinEfficiency, 1);
  c.node.intra_latency_s = n.number_or("intra_latency_us", 1, 0, kMaxLatencyUs) * 1e-6;
  c.node.nics = static_cast<int>(n.integer("nics", 1, 1024));
  c.node.nic_bytes_per_s = n.number("nic_gbit_per_s", kMinNicGbitPerS, kMaxNicGbitPerS) * 1e9 / 8;
  c.node.nic_efficiency = n.number_or("nic_efficiency", 1, kMinEfficiency, 1);
  c.node.pcie_bytes_per_s = n.number_or("pcie_gb_per_s", 64, kMinLinkGbPerS, kMaxPcieGbPerS) * 1e9;
  c.node.host_memory_bytes = n.number_or("host_memory_gb", 1024, 0, kMaxHostMemoryGb) * 1e9;
  c.node.a2a_intra_efficiency = n.number_or("a2a_intra_efficiency", 0, 0, 1);
  c.node.nvls = n.boolean_or("nvls", false);
  c.node.low_latency_nvlink = n.boolean_or("low_latency_nvlink", true);
  c.node.low_latency_intra_efficiency = n.number_or("low_latency_intra_efficiency", 0, 0, 1);
  c.node.low_latency_kernel_s = n.number_or("low_latency_kernel_us", 0, 0, kMaxLatencyUs) * 1e-6;
  if (n.has("low_latency_message_ns")) {
    throw_config_error(n.field_path("low_latency_message_ns"),
                       "replaced by \"low_latency_kernel_us\": a fixed time per low-latency "
                       "kernel, not per message");
  }
  if (c.node.nvls && c.node.intra != IntraNodeFabric::kNvSwitch) {
    throw_config_error(n.field_path("nvls"), "NVLink SHARP needs \"intra_fabric\": \"nvswitch\"");
  }
  n.finish();
  ConfigObject f = o.object("fabric");
  c.fabric.kind =
      f.choice_or("kind", "rail_optimized", {"rail_optimized", "fat_tree"}) == "rail_optimized"
          ? InterNodeFabric::kRailOptimized
          : InterNodeFabric::kFatTree;
  c.fabric.oversubscription = f.number_or("oversubscription", 1, 1, 1024);
  c.fabric.nodes_per_leaf = static_cast<int>(f.integer_or("nodes_per_leaf", 4, 1, 1 << 20));
  c.fabric.hop_latency_s = f.number_or("hop_latency_us", 0.6, 0, kMaxLatencyUs) * 1e-6;
  c.fabric.message_overhead_s = f.number_or("message_overhead_us", 2, 0, kMaxLatencyUs) * 1e-6;
  f.finish();
  if (o.has("sources")) {
    for (const auto& [k, v] : o.value("sources").items()) {
      c.sources[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  o.finish();
  return c;
}

Json cluster_json(const ClusterSpec& c) {
  Json j;
  j["name"] = c.name;
  j["nodes"] = c.nodes;
  j["gpus"] = c.gpu_count();
  j["gpu"] = gpu_json(c.gpu);
  Json n;
  n["gpus_per_node"] = c.node.gpus_per_node;
  n["intra_fabric"] = c.node.intra == IntraNodeFabric::kNvSwitch ? "nvswitch"
                      : c.node.intra == IntraNodeFabric::kMesh   ? "mesh"
                                                                 : "pcie";
  n["intra_gb_per_s"] = c.node.intra_bytes_per_s / 1e9;
  n["intra_efficiency"] = c.node.intra_efficiency;
  n["intra_latency_us"] = c.node.intra_latency_s * 1e6;
  n["nics"] = c.node.nics;
  n["nic_gbit_per_s"] = c.node.nic_bytes_per_s * 8 / 1e9;
  n["nic_efficiency"] = c.node.nic_efficiency;
  n["pcie_gb_per_s"] = c.node.pcie_bytes_per_s / 1e9;
  n["host_memory_gb"] = c.node.host_memory_bytes / 1e9;
  n["a2a_intra_efficiency"] = c.node.a2a_intra_efficiency;
  n["nvls"] = c.node.nvls;
  n["low_latency_nvlink"] = c.node.low_latency_nvlink;
  n["low_latency_intra_efficiency"] = c.node.low_latency_intra_efficiency;
  // Whole picoseconds, so that 37.4 us prints as it was written.
  n["low_latency_kernel_us"] = std::round(c.node.low_latency_kernel_s * 1e12) / 1e6;
  j["node"] = n;
  Json f;
  f["kind"] = c.fabric.kind == InterNodeFabric::kRailOptimized ? "rail_optimized" : "fat_tree";
  f["oversubscription"] = c.fabric.oversubscription;
  f["nodes_per_leaf"] = c.fabric.nodes_per_leaf;
  f["hop_latency_us"] = c.fabric.hop_latency_s * 1e6;
  f["message_overhead_us"] = c.fabric.message_overhead_s * 1e6;
  j["fabric"] = f;
  return j;
}

Json cluster_input_json(const ClusterSpec& c) {
  Json j = cluster_json(c);
  j.erase("gpus");
  j["gpu"] = gpu_input_json(c.gpu);
  return j;
}

std::vector<PresetInfo> list_presets() {
  std::vector<PresetInfo> out;
  for (const std::string kind : {"gpu", "cluster"}) {
    for (const auto& name : preset_names(kind)) {
      const Json doc = load_preset(kind, name, name);
      out.push_back({kind, name, doc.value("description", "")});
    }
  }
  return out;
}

}  // namespace moesim::hw
