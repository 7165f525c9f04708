#pragma once
// Turns a model, a parallel strategy, a batch and per-layer routing into the
// task graph of one training step: every GPU's compute kernels (sized by the
// compute cost model), its tensor-, expert-, pipeline- and data-parallel
// communication, and the dependencies between them.
//
// Per micro-batch and layer, on each GPU (forward; backward mirrors it):
//   attention block -> [TP collective] -> router+permute -> dispatch all-to-allv
//   -> routed experts (per-expert GEMMs sized by the tokens received)
//   -> combine all-to-allv -> unpermute+combine; shared experts run on the
//   compute stream while the dispatch is in flight.
// With a2a_overlap_chunks = c > 1 the tokens are split into c chunks whose
// dispatch, expert compute and combine pipeline against each other.
// With framework.pipeline_pass_s > 0 and pp > 1, every forward and backward
// pass of a model chunk begins with that much GPU idle time
// (Category::kFramework), once the pass's input has arrived.
//
// With parallel.moe_a2a_overlap "1f1b" or "dualpipe" the passes follow
// schedule_order() (pipeline_schedule.h): a forward and a backward of
// different micro-batches paired in one step are emitted layer part by layer
// part (attention, dispatch, experts, combine: Megatron-Core's split), forward
// layer i beside backward layer L-1-i, so that each one's all-to-alls run on
// the EP stream while the other's kernels run on the compute stream; the
// graph then models the SMs that communication takes from compute
// (TaskGraph::set_comm_sms with `gpu_sms` and parallel.a2a_comm_sms).
// DualPipe adds its zero-bubble weight-gradient passes, both stage copies per
// rank, and the sum of the copies' gradients between mirror ranks.
//
// Context parallelism (parallel.cp > 1): every kernel sees its rank's
// seq_len / cp tokens, and the attention block runs Transformer Engine's ring
// (context_parallel.py AttnFuncWithCPAndKVP2P, cp_comm_type "p2p"): after the
// QKV projections, cp steps of core attention, each on the key/value block
// the previous step received; step i's send of its block to the next rank
// (and receive from the previous one) runs on the context-parallel stream
// while step i's attention computes, and step i + 1 waits for it. A send is
// issued behind the attention two steps back (TE alternates two streams and
// NCCL waits on the issuing one). Backward passes the key/value block and the
// accumulated dK, dV together (only K, V at the first step, only dK, dV at the
// last), each step's transfer beside that step's compute, the next step
// waiting for both. Forward ring time: first block + (cp - 1) x max(block,
// transfer). Each ring step is one collective of the context-parallel group.
//
// Activation offload (parallel.offload_activations): after a layer's attention
// block and after its MLP block, the listed modules' tensors of that part are
// copied to the host on the GPU's copy-out stream (waiting for the compute
// that made them), at the host link's bandwidth. In backward each part's
// reload, on the copy-in stream, is issued when the backward of the offloaded
// part before it finishes (Megatron-Core reloads one group ahead; across
// passes, when the previous backward pass's last reload was issued), after its
// own copy out; the part's backward waits for it: the attention backward for
// the attention part, the routed experts' backward for the MLP part. A pass
// whose backward follows its forward at once offloads nothing from its last
// layer (Megatron-Core keeps a chunk's last group when it is needed next).

#include <cstdint>
#include <vector>

#include "hwmodels/compute_cost.h"
#include "sim/collectives/collective.h"
#include "sim/exec/rank_layout.h"
#include "sim/exec/step_inputs.h"
#include "sim/exec/task_graph.h"

namespace moesim::exec {

using coll::CollectiveOp;

// One collective of the step, as StepCollectives hands it to the collective
// timer (sim/collectives): its op, its group and its bytes.
struct CollectiveDesc {
  CollectiveOp op = CollectiveOp::kAllReduce;
  uint32_t group = 0;            // index into StepGraph::groups
  uint32_t matrix = UINT32_MAX;  // all-to-allv: index into StepGraph::dispatches
  bool transpose = false;        // all-to-allv: send matrix^T (combine direction)
  // All-to-allv made of point-to-point sends (a context-parallel ring step:
  // every rank sends one block to the next): NCCL send/recv, which crosses
  // nodes through the NIC of the receiver's rail (PXN), whatever algorithm the
  // step's expert all-to-alls use.
  bool point_to_point = false;
  double fraction = 1;  // all-to-allv: fraction of the matrix (overlap chunks)
  // All-to-allv: bytes per token copy. Others: NCCL-tests convention (full
  // buffer per rank).
  double bytes = 0;
};
static_assert(sizeof(CollectiveDesc) == 32, "a step holds millions of these");

struct StepGraph {
  TaskGraph graph{0};
  std::vector<CollectiveDesc> collectives;  // payload index of each collective
  std::vector<std::vector<int>> groups;     // rank lists
  // Who sends what to whom in each routing sample's all-to-alls (n x n, row =
  // sender, in group order): token copies, and for node-deduplicated
  // dispatch the tokens per destination rank and per destination node.
  struct Dispatch {
    std::vector<int64_t> copies, rank_tokens, node_tokens;
  };
  std::vector<Dispatch> dispatches;
  int microbatches = 0;
  // Per-GPU routed-expert token copies processed in the step (forward).
  std::vector<int64_t> expert_tokens_per_gpu;
};

// About how many tasks build_training_step makes for this strategy and batch
// (a dozen per layer, micro-batch and direction on every GPU): what a step
// costs in memory before it is built.
double estimated_step_tasks(const ModelShape& model, const ParallelConfig& parallel,
                            const TrainingWorkload& workload);

// `host_link_bytes_per_s`: each GPU's host link, per direction (cluster
// node.pcie_gb_per_s); needed when parallel.offload_activations is set.
StepGraph build_training_step(const ModelShape& model, const ParallelConfig& parallel,
                              const TrainingWorkload& workload,
                              const std::vector<LayerRouting>& routing,
                              const hw::ComputeCostModel& cost, const FrameworkOverheads& framework,
                              int gpu_sms = 0, double host_link_bytes_per_s = 0);

}  // namespace moesim::exec
