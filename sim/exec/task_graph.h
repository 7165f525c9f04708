#pragma once
// The per-GPU work of a step as an explicit task graph, and its execution on
// the engine.
//
// Every GPU has a few streams (compute; tensor-, expert-, data- and
// context-parallel communication; host copies out and in, one per PCIe
// direction). Tasks on one stream run one at a time in the
// order they were added, and a task also waits for its explicit dependencies,
// which may cross GPUs (a pipeline transfer, a dispatch feeding the receiving
// rank's experts). Communication tasks belong to a collective: one task per
// participating GPU; the collective starts when the last participant is ready,
// so a straggler holds everyone, and it completes on all participants together.
// Point-to-point transfers are two-participant collectives on no stream, so
// pipeline sends and receives never need matching stream orders.
//
// Overlap and its limits therefore come out of the execution rather than a
// formula. Its cost too, where set_comm_sms() asks for it: communication
// kernels occupy SMs, so a compute kernel running while an expert-parallel
// all-to-all is in flight on its GPU progresses at (sms - comm_sms) / sms of
// its full speed. Time is accounted per GPU as it passes: while the compute stream is
// busy, by the running task's category (communication in flight meanwhile is
// "hidden"); while it is idle, by the active communication it waits on
// ("exposed"), else as pipeline bubble or idle. Host copies (activation
// offload) are timed tasks on their GPU's copy streams: one copy at a time per
// direction and GPU, each at the host link's bandwidth (a DGX H100 GPU has its
// own PCIe Gen5 x16 link to the CPU, through the PCIe switch inside its
// ConnectX-7, so GPUs do not share one: NVIDIA's DGX H100 block diagram (GTC
// 2022; DGX A100's four PCIe switches, two GPUs each, are gone) and the DGX
// H100 User Guide's network-module table, one ConnectX-7 per GPU). Nothing on the compute stream
// waits for a copy out, so it is hidden or nothing; compute idle while a reload is in flight is the
// reload's ("reload" exposed).

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "sim/core/huge_pages.h"
#include "sim/core/time.h"
#include "sim/engine/engine.h"

namespace moesim::exec {

enum class Stream : uint8_t {
  kCompute,
  kTpComm,
  kEpComm,
  kDpComm,
  kCpComm,
  kHostCopyOut,  // device to host (activation offload)
  kHostCopyIn,   // host to device (reload)
  // ZeRO-3 parameter all-gathers: Megatron-FSDP runs them on their own stream
  // and communicator, apart from the gradient reduce-scatters.
  kParamGather,
  kNone
};
inline constexpr int kStreamsPerGpu = 8;  // kNone tasks are not queued on a stream
// Per-GPU stream tables are padded to a power of two (cheaper indexing on the
// executor's hot path).
inline constexpr int kStreamSlots = 8;
static_assert(kStreamsPerGpu <= kStreamSlots);

// What a task's time is spent on; the report's breakdown categories.
enum class Category : uint8_t {
  kAttention,  // QKV/output projections, core attention, norms
  kDense,      // dense FFN and shared experts
  kExpert,     // routed expert GEMMs
  kOther,      // router, permutation, combine arithmetic, embedding, loss
  kOptimizer,
  kFramework,  // the training framework's host work between pipeline passes (GPU idle)
  kDispatch,   // token dispatch all-to-all
  kCombine,    // combine all-to-all
  kTpComm,
  kPpComm,
  kDpComm,
  kCpComm,   // context-parallel ring attention: key/value (and gradient) blocks
  kOffload,  // activations copied to host memory (device to host)
  kReload,   // offloaded activations copied back for backward (host to device)
  kCount
};
inline constexpr int kCategoryCount = static_cast<int>(Category::kCount);
static_assert(kCategoryCount <= 16, "GraphExecutor keeps active categories in 16-bit masks");
constexpr bool is_comm(Category c) {
  return c >= Category::kDispatch;
}
// The one name of each category, as reports, summaries and timelines show it
// ("attention_compute", ..., "dp_comm", "cp_comm", "offload", "reload";
// report breakdown keys add "_s").
std::string_view category_name(Category c);

// kWeightGrad: weight-gradient GEMMs run apart from their backward (deferred
// to let a dispatch start earlier, or a zero-bubble "W" pass).
enum class Phase : uint8_t { kForward, kBackward, kRecompute, kStep, kWeightGrad };

// Identifies a task in timelines and critical-path summaries.
struct TaskLabel {
  int16_t layer = -1;       // -1: not tied to a layer
  int16_t microbatch = -1;  // -1: once per step
  Phase phase = Phase::kForward;
  uint8_t chunk = 0;  // a2a overlap chunk, or virtual pipeline stage
};

using TaskId = uint32_t;
using CollectiveId = uint32_t;
inline constexpr uint32_t kNoCollective = 0xFFFFFFFFu;

// A collective's communication cost is decided by whoever runs the graph; the
// graph only records who takes part and an opaque payload index.
struct CollectiveInfo {
  uint32_t payload = 0;  // index into the builder's description of this collective
  uint32_t participants = 0;
};

class TaskGraph {
 public:
  explicit TaskGraph(int gpus);

  int gpus() const { return gpus_; }
  size_t size() const { return tasks_.size(); }
  size_t collectives() const { return collectives_.size(); }

  // Room for `tasks` tasks and `edges` dependencies, on huge pages where the
  // system gives them (sim/core/huge_pages.h). Call before the first add_*.
  void reserve(size_t tasks, size_t edges) {
    reserve_huge(tasks_, tasks);
    reserve_huge(edges_, edges);
  }
  TaskId add_compute(int gpu, Category category, SimTime duration, TaskLabel label);
  // A host copy of known duration on `gpu`'s copy stream `stream`
  // (kHostCopyOut or kHostCopyIn): it occupies that stream, not compute.
  TaskId add_copy(int gpu, Stream stream, Category category, SimTime duration, TaskLabel label);
  CollectiveId add_collective(uint32_t payload);
  // A participant of `collective` on `gpu`; stream kNone for point-to-point.
  TaskId add_comm(int gpu, Stream stream, Category category, CollectiveId collective,
                  TaskLabel label);
  // `after` starts only once `before` has finished.
  void depend(TaskId before, TaskId after);
  // Models the SMs expert-parallel communication takes from compute: while at
  // least one Stream::kEpComm task of a GPU is in flight (from its arrival at
  // the collective: a DeepEP or NCCL kernel holds its SMs while it waits for
  // its peers), that GPU's compute tasks run at (gpu_sms - comm_sms) / gpu_sms
  // of full speed; framework (host) waits are not kernels and are not slowed.
  // REQUIRES: 0 < comm_sms < gpu_sms. Without this call nothing is slowed.
  void set_comm_sms(int gpu_sms, int comm_sms);
  int gpu_sms() const { return gpu_sms_; }
  int comm_sms() const { return comm_sms_; }

  // Read access (for execution and reports).
  struct Task {
    SimTime duration;  // compute and copy tasks
    uint32_t gpu;
    uint32_t collective;      // kNoCollective for compute tasks
    uint32_t next_in_stream;  // kNoTask at the end of its stream
    TaskLabel label;
    Stream stream;
    Category category;
    // First of this task's successors in the successor index (set by
    // finalize); kept in the record, which has room for it, so that finishing
    // a task touches one cache line fewer.
    uint32_t succ_begin;
  };
  static constexpr uint32_t kNoTask = 0xFFFFFFFFu;
  const Task& task(TaskId id) const { return tasks_[id]; }
  const CollectiveInfo& collective(CollectiveId id) const { return collectives_[id]; }
  std::span<const TaskId> participants(CollectiveId id) const;

 private:
  friend class GraphExecutor;

 public:
  // Builds the successor and participant indexes; called once, after the last
  // add_*/depend and before execution.
  void finalize();
  std::span<const uint32_t> successors(TaskId id) const;

 private:
  int gpus_;
  std::vector<Task> tasks_;
  std::vector<CollectiveInfo> collectives_;
  std::vector<std::array<uint32_t, 2>> edges_;  // (before, after), until finalize()
  std::vector<uint32_t> succ_;
  std::vector<uint32_t> part_begin_, part_;
  std::vector<std::array<uint32_t, kStreamSlots>> stream_head_, stream_tail_;
  std::vector<uint32_t> dep_count_;
  int gpu_sms_ = 0, comm_sms_ = 0;  // 0: communication takes no SMs from compute
  bool finalized_ = false;
};

// Decides how long a collective takes once all participants are ready.
// Implementations: an
// analytic estimate (schedule completion after a computed duration) or the
// flow-level network (completion when its flows finish).
class GraphExecutor;
class CollectiveRunner {
 public:
  virtual ~CollectiveRunner() = default;
  // Starts collective `id` (all participants are ready now); must eventually
  // call executor.collective_done(id), at the simulated time it completes.
  virtual void start(GraphExecutor& executor, CollectiveId id, uint32_t payload) = 0;
};

struct GpuTimeAccount {
  std::array<double, kCategoryCount> exposed_s{};  // compute categories + exposed comm
  std::array<double, kCategoryCount> hidden_s{};   // comm overlapped by compute
  double bubble_s = 0;  // compute idle, no communication, pipeline parallel
  double idle_s = 0;    // compute idle, no communication, otherwise
  double busy_s = 0;    // compute stream busy (not while it waits on its host: kFramework)
  double finish_s = 0;  // when this GPU's last task ended
};

struct ExecutionResult {
  SimTime makespan;
  uint64_t events = 0;
  std::vector<GpuTimeAccount> per_gpu;
  // End time of every task (index = TaskId) and start time of every collective.
  std::vector<SimTime> task_end, collective_start;
  // Start time of every compute (and copy) task when the graph models
  // communication SMs (TaskGraph::set_comm_sms): a slowed task lasts longer
  // than its duration. Empty otherwise (a compute or copy task then starts at
  // its end minus its duration).
  std::vector<SimTime> compute_start;
  // For each task, what it waited for last before it could start: a dependency,
  // its stream predecessor, or (for a collective participant) the participant
  // that arrived last. Walking back from the last task gives the critical path.
  std::vector<TaskId> gated_by;

  SimTime task_start(const TaskGraph& g, TaskId id) const {
    const auto& t = g.task(id);
    if (t.collective != kNoCollective) return collective_start[t.collective];
    return compute_start.empty() ? task_end[id] - t.duration : compute_start[id];
  }
};

class GraphExecutor : private EventHandler {
 public:
  // `pipeline_parallel`: classify idle compute without communication as
  // pipeline bubble rather than plain idle.
  GraphExecutor(Engine& engine, const TaskGraph& graph, bool pipeline_parallel);

  // Runs the graph to completion. `runner` decides collective durations.
  // Throws std::logic_error if tasks remain that can never start (a dependency
  // cycle or collectives queued in different orders on their participants).
  ExecutionResult run(CollectiveRunner& runner);

  // Called by the CollectiveRunner when collective `id` has finished.
  void collective_done(CollectiveId id);

 private:
  void on_event(uint64_t task) override;
  void make_ready(TaskId id, TaskId gater);
  void try_start(TaskId id);
  void finish_task(TaskId id);
  void account(uint32_t gpu);
  void start_compute(TaskId id, const TaskGraph::Task& t);
  void start_copy(TaskId id, const TaskGraph::Task& t);
  void ep_comm_changed(uint32_t gpu, int delta);

  Engine& engine_;
  const TaskGraph& graph_;
  CollectiveRunner* runner_ = nullptr;
  bool pipeline_parallel_;
  bool comm_takes_sms_ = false;  // graph_.comm_sms() > 0

  struct GpuState {
    SimTime last_change;
    int8_t compute_running = -1;                         // category of the running compute task
    std::array<uint16_t, kCategoryCount> comm_active{};  // includes host copies in flight
    uint16_t comm_mask = 0;                              // bit c set while comm_active[c] > 0
    void comm_started(Category c) {
      if (comm_active[static_cast<int>(c)]++ == 0) comm_mask |= 1u << static_cast<int>(c);
    }
    void comm_ended(Category c) {
      if (--comm_active[static_cast<int>(c)] == 0)
        comm_mask &= static_cast<uint16_t>(~(1u << static_cast<int>(c)));
    }
    // Communication SMs (only with TaskGraph::set_comm_sms): expert-parallel
    // tasks in flight, and the running compute kernel's completion event, the
    // time its speed last changed and the full-speed work it had left then.
    uint16_t ep_comm_active = 0;
    bool compute_slowed = false;
    EventId compute_event;
    SimTime compute_since;
    int64_t compute_left_ps = 0;
  };
  std::vector<GpuState> gpu_state_;
  std::vector<std::array<uint32_t, kStreamSlots>> stream_next_;  // head of each stream
  std::vector<std::array<uint8_t, kStreamSlots>> stream_busy_;
  // Per task: dependencies not yet finished, and what it waited for last
  // (copied to ExecutionResult::gated_by at the end). Kept side by side: the
  // executor reads and writes both when a predecessor finishes.
  struct TaskState {
    uint32_t unmet;
    TaskId gated_by;
  };
  std::vector<TaskState> state_;
  std::vector<uint32_t> arrived_;     // per collective
  std::vector<TaskId> last_arrival_;  // per collective
  uint64_t finished_ = 0;
  ExecutionResult result_;
};

}  // namespace moesim::exec
