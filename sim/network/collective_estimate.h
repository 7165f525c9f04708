#pragma once
// Closed-form collective times on a cluster, for one collective running alone:
// each resource (a GPU's NVLink port or mesh link, its NIC, a fat-tree leaf's
// uplinks) carries the bytes the algorithm puts on it, the slowest resource
// sets the transfer time, and latency terms are added per step. The
// execution model uses these when a flow-level simulation of every collective
// would be too slow; they ignore contention between concurrent collectives.
//
// Conventions follow NCCL-tests: `bytes` of all-reduce, reduce-scatter and
// all-gather is the full buffer size per rank; all-to-allv takes the n x n
// matrix of bytes (row = sender, in `ranks` order; the diagonal stays local).

#include <cstdint>
#include <span>

#include "hwmodels/cluster.h"

namespace moesim::net {

enum class AllToAllAlgo {
  kDirect,        // every pair exchanges directly, each GPU on its own NIC
  kHierarchical,  // inter-node bytes forwarded over NVLink to the GPU on the
                  // destination's rail, so all of a node's NICs share the
                  // load (Tutel / DeepEP style), then forwarded again inside
                  // the destination node; phases pipelined
};

double all_to_allv_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks,
                           std::span<const double> bytes, AllToAllAlgo algo);
double all_reduce_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks, double bytes);
double reduce_scatter_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks,
                              double bytes);
double all_gather_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks, double bytes);
double send_recv_seconds(const hw::ClusterSpec& cluster, int src, int dst, double bytes);

// The per-rank bandwidth a ring over `ranks` sustains (bytes/s): the slowest
// hop, NVLink inside a node, one NIC per GPU across nodes, reduced by fat-tree
// oversubscription when the ring's traffic exceeds a leaf's uplinks.
double ring_bandwidth(const hw::ClusterSpec& cluster, std::span<const int> ranks);

// NCCL-tests bandwidths: algbw = bytes / time; busbw = algbw x factor with
// factor 2(n-1)/n (all-reduce), (n-1)/n (reduce-scatter, all-gather,
// all-to-all), 1 (send/recv).
double bus_bandwidth_factor(int op_kind /*0 a2a,1 ar,2 rs,3 ag,4 p2p*/, int n);

}  // namespace moesim::net
