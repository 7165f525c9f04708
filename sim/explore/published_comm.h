#pragma once
// Communication predicted against published kernel and collective figures
// (shared/reference/measurements.md): DeepEP's normal kernels (dispatch and
// combine "bottleneck bandwidth" at EP8-64 on H800s, docs/legacy.md; and, as
// reference rows, the same kernels' times in DeepSeek's own training trace),
// its low-latency kernels (microseconds at EP8-256, pure RDMA and NVLink-assisted)
// and NCCL's bus bandwidths (ring and NVLS all-reduce inside a node, one NIC
// across nodes). Each row is timed alone by the closed-form model with the
// routing DeepEP's tests use, and reported in the publication's own metric,
// with the bottleneck link it names.

#include <optional>
#include <string>
#include <vector>

namespace moesim::explore {

struct CommComparison {
  std::string row;     // "EP32 dispatch", "8 GPUs all-reduce NVLS", ...
  std::string metric;  // what the publication measured, e.g. "RDMA GB/s (DeepEP)"
  double published = 0, predicted = 0;
  double error = 0;                  // predicted / published - 1
  std::string bottleneck;            // "nvlink", "nic", ... (this model)
  std::string published_bottleneck;  // as the publication names it ("" if it does not)
  // "prediction", or "calibration" where a preset figure was read off this
  // very row (the comment names which).
  std::string role;
  // DeepEP's inter-node rows: how busy the published figure itself says the
  // busiest NICs were (bytes that really crossed a NIC / published time /
  // the NIC's line rate). DeepEP's RDMA metric counts a token once per
  // destination node, its own node included, but a token for the sender's
  // own node is written to the local buffer without touching the NIC
  // (csrc/kernels/legacy/internode.cu, dst_rdma_rank == rdma_rank), so where
  // this load is well below 1 the NIC is not the link that binds.
  std::optional<double> published_nic_load;
  // DeepEP's inter-node rows: the NVLink rate the published time implies in
  // DeepEP's NVL metric (tokens a rank receives, its own included, x bytes /
  // time; tests/legacy/test_internode.py), GB/s.
  std::optional<double> published_nvl_gbps;
};

struct CommTable {
  std::string name, source;
  std::vector<CommComparison> rows;
  // Over prediction rows; none for a table of reference rows.
  std::optional<double> max_abs_error;
};

std::vector<CommTable> validate_communication();

}  // namespace moesim::explore
