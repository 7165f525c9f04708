#include "sim/exec/serving.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <stdexcept>

#include "sim/engine/engine.h"

namespace moesim::exec {

void PhaseTime::add(const IterationCost& c, int gpus, int64_t prompt, int64_t decode) {
  ++iterations;
  gpu_seconds += c.seconds * gpus;
  prompt_tokens += prompt;
  decode_tokens += decode;
  seconds += c.seconds;
  attention_s += c.attention_s;
  expert_s += c.expert_s;
  dispatch_s += c.dispatch_s;
  combine_s += c.combine_s;
  other_s += c.other_s;
}

namespace {
constexpr double kGapMin = 1e-6, kGapStep = 1.001;
}  // namespace

void GapHistogram::add(double s) {
  ++count_;
  sum_ += s;
  const int bin = s <= kGapMin ? 0 : static_cast<int>(std::log(s / kGapMin) / std::log(kGapStep));
  ++bins_[std::clamp(bin, 0, kBins - 1)];
}

double GapHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  const uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  uint64_t seen = 0;
  for (int b = 0; b < kBins; ++b) {
    seen += bins_[b];
    if (seen >= std::max<uint64_t>(rank, 1)) return kGapMin * std::pow(kGapStep, b + 0.5);
  }
  return kGapMin * std::pow(kGapStep, kBins);
}

namespace {

enum EventKind : uint64_t { kArrival = 1, kIterationEnd = 2, kTransferDone = 3, kWakeup = 4 };
uint64_t event_arg(EventKind kind, uint64_t index) {
  return (static_cast<uint64_t>(kind) << 48) | index;
}

struct RequestState {
  RequestOutcome out;
  int instance = -1, replica = -1;
  int64_t computed = 0;  // tokens in this request's KV cache
  int64_t target = 0;    // tokens to compute before it decodes (its prompt, more after recompute)
  int64_t blocks = 0;
  int64_t swap_blocks = 0;  // blocks its cache takes in the host swap space
  uint64_t admitted = 0;    // admission order: the newest is preempted first
  bool swapped = false;
  double last_token_s = -1;
  int64_t chunk = 0;  // prompt tokens it computes in the current iteration
  bool decoding = false;
};

struct Replica {
  std::deque<uint32_t> waiting;
  std::vector<uint32_t> running;  // in admission order
  int64_t free_blocks = 0;
  int64_t free_swap_blocks = 0;    // host swap space, in KV blocks of its GPUs
  double kv_bytes_per_token = 0;   // what a cached token takes on each of its GPUs
  std::vector<uint32_t> in_batch;  // this iteration's requests
};

struct Instance {
  const ServingInstance* spec = nullptr;
  std::vector<Replica> replicas;
  std::vector<ReplicaBatch> batch;
  bool busy = false, has_prefill = false;
  bool wakeup_pending = false;  // an idle instance got work; it starts after same-time events
  uint64_t iteration = 0;
  uint64_t next_replica = 0;
  double idle_since = 0;
  IterationCost cost;
  double started_s = 0;
  int64_t prompt_tokens = 0, decode_tokens = 0;  // in the iteration running
  int replica_offset = 0;                        // index of its first replica over all instances
};

class Simulator : private EventHandler {
 public:
  Simulator(const ServingSetup& setup, std::vector<ServingRequest> requests);
  ServingResult run();

 private:
  void on_event(uint64_t arg) override;
  void arrive(uint32_t request);
  void enqueue(uint32_t request, int instance);
  void start_iteration(int instance);
  double form_batch(Instance& inst, int replica, ReplicaBatch& batch);
  bool admit(Replica& rep, ReplicaBatch& batch, int64_t& budget, double& swap_s);
  bool make_room(Replica& rep, int64_t blocks, uint32_t requester, double& swap_s);
  void preempt(Replica& rep, uint32_t victim, double& swap_s);
  void finish_iteration(int instance);
  void advance(Instance& inst, Replica& rep, uint32_t request);
  void release(Replica& rep, uint32_t request);
  void complete(uint32_t request);
  void deliver_token(RequestState& r, double now);  // the user receives a token now
  // KV blocks a request holds while its positions [from, to) are computed.
  int64_t blocks_for(int64_t from, int64_t to) const {
    return shape_.kv_blocks(from, to, setup_.config.kv_block_tokens);
  }
  // Moving the cache of a sequence of `context` tokens to or from the host.
  double swap_seconds(const Replica& rep, int64_t context) const {
    const double tokens = shape_.kv_cached_tokens(context);
    return tokens * rep.kv_bytes_per_token / setup_.host_link_bytes_per_s;
  }
  // Gives request `r` exactly `blocks` KV blocks: allocates the difference,
  // or frees it (blocks a window has left).
  void set_blocks(Replica& rep, RequestState& r, int64_t blocks);
  int next_instance(bool decode);
  // KV blocks the host swap space of a replica's GPUs holds (vLLM's
  // swap_space / cache block size), for a cached token of `kv_bytes_per_token`.
  int64_t swap_blocks(double kv_bytes_per_token) const;

  const ServingSetup& setup_;
  Engine engine_;
  std::vector<RequestState> req_;
  std::vector<Instance> instances_;
  size_t issued_ = 0;                        // closed loop: requests issued so far
  size_t finished_ = 0, progress_step_ = 1;  // progress: shown every progress_step_ finishes
  size_t rr_mixed_ = 0, rr_decode_ = 0;
  uint64_t admissions_ = 0;
  ServingResult result_;
  const ModelShape& shape_;  // the instances' model (its windows)
  double kv_weighted_ = 0, kv_weight_ = 0;
  double batch_sum_ = 0;
  int64_t batch_samples_ = 0;
  std::vector<double> transfer_free_s_;  // per replica: when its last KV transfer ends
  std::vector<uint32_t> members_;        // finish_iteration's scratch
  bool has_decode_ = false;              // some instance decodes after prefill instances
  int64_t in_system_ = 0;                // requests arrived and not finished
  double in_system_since_ = 0;
  void count_in_system(int64_t delta);
};

// The model every instance's cost model prices (ServingInstance::cost).
const ModelShape& served_model(const ServingSetup& setup) {
  if (setup.instances.empty() || !setup.instances.front().cost) {
    throw std::logic_error("simulate_serving: every instance needs its cost model");
  }
  return setup.instances.front().cost->model();
}

Simulator::Simulator(const ServingSetup& setup, std::vector<ServingRequest> requests)
    : setup_(setup), shape_(served_model(setup)) {
  for (const ServingRequest& r : requests) {
    RequestState s;
    s.out.arrival_s = r.arrival_s;
    s.out.input_tokens = r.input_tokens;
    s.out.output_tokens = r.output_tokens;
    req_.push_back(s);
  }
  progress_step_ = std::max<size_t>(1, req_.size() / 1000);
  for (const ServingInstance& spec : setup.instances) {
    Instance inst;
    inst.spec = &spec;
    inst.replicas.resize(spec.replicas);
    const double kv_bytes_per_token = spec.cost->kv_bytes_per_token_per_gpu();
    const int64_t free_swap_blocks = swap_blocks(kv_bytes_per_token);
    for (Replica& r : inst.replicas) {
      r.free_blocks = spec.kv_blocks_per_replica;
      r.kv_bytes_per_token = kv_bytes_per_token;
      r.free_swap_blocks = free_swap_blocks;
    }
    inst.batch.resize(spec.replicas);
    inst.replica_offset = static_cast<int>(transfer_free_s_.size());
    transfer_free_s_.resize(transfer_free_s_.size() + spec.replicas, 0.0);
    has_decode_ = has_decode_ || spec.role == InstanceRole::kDecode;
    instances_.push_back(std::move(inst));
  }
}

int64_t Simulator::swap_blocks(double kv_bytes_per_token) const {
  const double block_bytes =
      kv_bytes_per_token * static_cast<double>(setup_.config.kv_block_tokens);
  constexpr int64_t kUnbounded = int64_t{1} << 62;
  if (block_bytes <= 0) return kUnbounded;
  return static_cast<int64_t>(std::min(std::floor(setup_.config.swap_space_bytes / block_bytes),
                                       static_cast<double>(kUnbounded)));
}

// Little's law, measured: the time integral of the requests in the system.
void Simulator::count_in_system(int64_t delta) {
  const double now = engine_.now().seconds();
  result_.requests_in_system_s += static_cast<double>(in_system_) * (now - in_system_since_);
  in_system_since_ = now;
  in_system_ += delta;
}

int Simulator::next_instance(bool decode) {
  const int n = static_cast<int>(instances_.size());
  size_t& rr = decode ? rr_decode_ : rr_mixed_;
  for (int tries = 0; tries < n; ++tries) {
    const int i = static_cast<int>(rr++ % n);
    const InstanceRole role = instances_[i].spec->role;
    if (decode ? role == InstanceRole::kDecode : role != InstanceRole::kDecode) return i;
  }
  // No instance of the kind wanted: a decode-only setup receives arrivals.
  return static_cast<int>(rr++ % n);
}

void Simulator::arrive(uint32_t id) {
  RequestState& r = req_[id];
  r.out.arrival_s = engine_.now().seconds();
  count_in_system(+1);
  const int i = next_instance(false);
  if (instances_[i].spec->role == InstanceRole::kDecode) {
    // Decode only: the prompt's cache was built elsewhere (the prefill phase
    // is not simulated) and its first token came with it.
    r.computed = r.target = r.out.input_tokens;
    r.out.generated = 1;
    r.out.first_token_s = r.last_token_s = r.out.arrival_s;
    if (r.out.output_tokens <= 1) return complete(id);
  } else {
    r.target = r.out.input_tokens;
  }
  enqueue(id, i);
}

void Simulator::enqueue(uint32_t id, int i) {
  Instance& inst = instances_[i];
  RequestState& r = req_[id];
  r.instance = i;
  // Replicas take requests in turn (SGLang's round-robin DP load balance).
  r.replica = static_cast<int>(inst.next_replica++ % inst.replicas.size());
  inst.replicas[r.replica].waiting.push_back(id);
  // An idle instance starts its next iteration once every event of this
  // instant has run, so requests arriving together are batched together (as
  // a serving engine's loop picks up everything that arrived before it
  // schedules).
  if (!inst.busy && !inst.wakeup_pending) {
    inst.wakeup_pending = true;
    engine_.schedule_at(engine_.now(), *this, event_arg(kWakeup, static_cast<uint64_t>(i)));
  }
}

void Simulator::on_event(uint64_t arg) {
  const uint64_t index = arg & ((uint64_t{1} << 48) - 1);
  switch (static_cast<EventKind>(arg >> 48)) {
    case kArrival: {
      if (setup_.concurrency > 0) {
        arrive(static_cast<uint32_t>(index));
        return;
      }
      // Open loop: every request of this instant arrives now, before the
      // wakeup the first one schedules, so they share the next iteration.
      size_t next = index;
      const double now = req_[index].out.arrival_s;
      while (next < req_.size() && req_[next].out.arrival_s == now) {
        arrive(static_cast<uint32_t>(next++));
      }
      if (next < req_.size()) {
        engine_.schedule_at(SimTime::from_seconds(req_[next].out.arrival_s), *this,
                            event_arg(kArrival, next));
      }
      return;
    }
    case kIterationEnd:
      finish_iteration(static_cast<int>(index));
      return;
    case kTransferDone:
      deliver_token(req_[index], engine_.now().seconds());
      enqueue(static_cast<uint32_t>(index), next_instance(true));
      return;
    case kWakeup:
      instances_[index].wakeup_pending = false;
      if (!instances_[index].busy) start_iteration(static_cast<int>(index));
      return;
  }
}

ServingResult Simulator::run() {
  if (!req_.empty()) {
    if (setup_.concurrency > 0) {
      issued_ = std::min<size_t>(req_.size(), setup_.concurrency);
      for (size_t i = 0; i < issued_; ++i) {
        engine_.schedule_at(SimTime::zero(), *this, event_arg(kArrival, i));
      }
    } else {
      engine_.schedule_at(SimTime::from_seconds(req_[0].out.arrival_s), *this,
                          event_arg(kArrival, 0));
      // The run starts at the first arrival: no instance idles before it.
      for (Instance& inst : instances_) inst.idle_since = req_[0].out.arrival_s;
    }
  }
  engine_.run();
  double first = std::numeric_limits<double>::infinity(), last = 0;
  for (RequestState& r : req_) {
    if (!r.out.finished() && !result_.truncated) {
      throw std::logic_error("serving: a request never finished (scheduler stalled)");
    }
    first = std::min(first, r.out.arrival_s);
    last = std::max(last, r.out.finish_s);
    result_.requests.push_back(r.out);
  }
  result_.makespan_s = req_.empty() ? 0 : last - first;
  for (Instance& inst : instances_) {
    result_.gpu_idle_s += (engine_.now().seconds() - inst.idle_since) * inst.spec->gpus;
  }
  result_.kv_mean_utilisation = kv_weight_ > 0 ? kv_weighted_ / kv_weight_ : 0;
  result_.batch_mean = batch_samples_ ? batch_sum_ / static_cast<double>(batch_samples_) : 0;
  result_.events = engine_.events_executed();
  return std::move(result_);
}

void Simulator::start_iteration(int i) {
  Instance& inst = instances_[i];
  double swap_s = 0;
  bool any = false;
  inst.has_prefill = false;
  int64_t used = 0, total = 0;
  for (size_t r = 0; r < inst.replicas.size(); ++r) {
    inst.batch[r] = ReplicaBatch{};
    swap_s = std::max(swap_s, form_batch(inst, static_cast<int>(r), inst.batch[r]));
    any = any || !inst.batch[r].empty();
    inst.has_prefill = inst.has_prefill || !inst.batch[r].prefill.empty();
    used += inst.spec->kv_blocks_per_replica - inst.replicas[r].free_blocks;
    total += inst.spec->kv_blocks_per_replica;
  }
  if (!any) {  // nothing runnable: idle until a request arrives
    inst.busy = false;
    return;
  }
  for (const Replica& rep : inst.replicas) {  // batch sizes of iterations that run
    const int running = static_cast<int>(rep.running.size());
    batch_sum_ += running;
    ++batch_samples_;
    result_.batch_max = std::max(result_.batch_max, running);
  }
  if (!inst.busy)
    result_.gpu_idle_s += (engine_.now().seconds() - inst.idle_since) * inst.spec->gpus;
  if (setup_.max_iterations > 0 && result_.iterations >= setup_.max_iterations) {
    result_.truncated = true;
    engine_.stop();
    return;
  }
  ++result_.iterations;
  inst.busy = true;
  inst.started_s = engine_.now().seconds();
  inst.prompt_tokens = inst.decode_tokens = 0;
  for (const ReplicaBatch& b : inst.batch) {
    inst.decode_tokens += b.decode_sequences;
    inst.prompt_tokens += b.tokens() - b.decode_sequences;
  }
  inst.cost = inst.spec->cost->iteration(inst.batch, *inst.spec->routing, inst.iteration++);
  const double seconds = inst.cost.seconds + swap_s;
  inst.cost.other_s += swap_s;
  inst.cost.seconds = seconds;
  const double utilisation = total > 0 ? static_cast<double>(used) / total : 0;
  result_.kv_peak_utilisation = std::max(result_.kv_peak_utilisation, utilisation);
  kv_weighted_ += utilisation * seconds;
  kv_weight_ += seconds;
  engine_.schedule_after(SimTime::from_seconds(seconds), *this,
                         event_arg(kIterationEnd, static_cast<uint64_t>(i)));
}

// One replica's share of the iteration; returns the seconds spent moving
// preempted caches to or from the host.
double Simulator::form_batch(Instance& inst, int replica, ReplicaBatch& batch) {
  Replica& rep = inst.replicas[replica];
  const ServingConfig& cfg = setup_.config;
  int64_t budget = cfg.max_num_tokens;
  double swap_s = 0;
  const int64_t preemptions_before = result_.preemptions;
  rep.in_batch.clear();
  // 1. Decodes, oldest first; one that needs a block may preempt newer ones.
  for (size_t k = 0; k < rep.running.size(); ++k) {
    const uint32_t id = rep.running[k];
    RequestState& r = req_[id];
    r.chunk = 0;
    r.decoding = false;
    if (r.computed < r.target || budget <= 0) continue;
    const int64_t blocks = blocks_for(r.computed, r.computed + 1);
    if (!make_room(rep, blocks - r.blocks, id, swap_s)) break;
    set_blocks(rep, r, blocks);
    r.decoding = true;
    --budget;
    batch.add_decode(shape_, r.computed);
    ++batch.sampled;
    rep.in_batch.push_back(id);
  }
  // 2. Prompts part-way through continue with their next chunk.
  for (const uint32_t id : rep.running) {
    RequestState& r = req_[id];
    if (r.computed >= r.target || budget <= 0) continue;
    const int64_t limit = cfg.chunked_prefill > 0 ? cfg.chunked_prefill : r.target;
    const int64_t chunk = std::min({r.target - r.computed, limit, budget});
    const int64_t blocks = blocks_for(r.computed, r.computed + chunk);
    if (blocks - r.blocks > rep.free_blocks) continue;
    set_blocks(rep, r, blocks);
    r.chunk = chunk;
    budget -= chunk;
    batch.prefill.push_back({chunk, r.computed});
    if (r.computed + chunk == r.target) ++batch.sampled;
    rep.in_batch.push_back(id);
  }
  // 3. Admissions in arrival order, unless this step had to preempt (vLLM
  // V1's scheduler admits no waiting request in a step that preempted).
  if (result_.preemptions == preemptions_before) {
    while (admit(rep, batch, budget, swap_s)) {
    }
  }
  return swap_s;
}

bool Simulator::admit(Replica& rep, ReplicaBatch& batch, int64_t& budget, double& swap_s) {
  const ServingConfig& cfg = setup_.config;
  if (rep.waiting.empty() || budget <= 0 ||
      static_cast<int>(rep.running.size()) >= cfg.max_batch_size) {
    return false;
  }
  const uint32_t id = rep.waiting.front();
  RequestState& r = req_[id];
  // A request with its cache in place (a decode-only arrival, one swapped
  // back in, one whose KV cache came from a prefill instance) decodes at once.
  const bool decode = r.computed >= r.target;
  int64_t chunk = 0, tokens = r.computed + 1;  // computes positions [r.computed, tokens)
  if (!decode) {
    const int64_t rest = r.target - r.computed;
    if (cfg.chunked_prefill > 0) {
      chunk = std::min({rest, cfg.chunked_prefill, budget});
    } else {
      // Whole prompts: one that does not fit waits, unless it is alone.
      if (rest > budget && !batch.empty()) return false;
      chunk = rest;
    }
    tokens = r.computed + chunk;
  }
  const int64_t blocks = blocks_for(r.computed, tokens);
  if (blocks - r.blocks > rep.free_blocks) return false;
  rep.waiting.pop_front();
  set_blocks(rep, r, blocks);
  r.admitted = ++admissions_;
  rep.running.push_back(id);
  if (r.swapped) {
    // Its cache comes back from host memory before the iteration runs.
    swap_s += swap_seconds(rep, r.computed);
    r.swapped = false;
    rep.free_swap_blocks += r.swap_blocks;
    result_.swap_blocks_in += r.swap_blocks;
    r.swap_blocks = 0;
  }
  rep.in_batch.push_back(id);
  ++batch.sampled;
  if (decode) {
    r.decoding = true;
    --budget;
    batch.add_decode(shape_, r.computed);
  } else {
    r.chunk = chunk;
    budget -= chunk;
    batch.prefill.push_back({chunk, r.computed});
    if (r.computed + chunk != r.target) --batch.sampled;  // not its last chunk
  }
  return true;
}

void Simulator::set_blocks(Replica& rep, RequestState& r, int64_t blocks) {
  const int64_t delta = blocks - r.blocks;
  rep.free_blocks -= delta;
  if (delta > 0) result_.kv_blocks_allocated += delta;
  if (delta < 0) result_.kv_blocks_freed -= delta;
  r.blocks = blocks;
}

// Frees KV blocks for `requester` by preempting the newest running requests;
// false if the requester itself had to go.
bool Simulator::make_room(Replica& rep, int64_t blocks, uint32_t requester, double& swap_s) {
  while (blocks > rep.free_blocks) {
    const uint32_t victim = rep.running.back();
    preempt(rep, victim, swap_s);
    if (victim == requester) return false;
  }
  return true;
}

void Simulator::preempt(Replica& rep, uint32_t id, double& swap_s) {
  RequestState& r = req_[id];
  ++r.out.preemptions;
  ++result_.preemptions;
  rep.running.erase(std::find(rep.running.begin(), rep.running.end(), id));
  const auto in = std::find(rep.in_batch.begin(), rep.in_batch.end(), id);
  if (in != rep.in_batch.end()) rep.in_batch.erase(in);
  const int64_t blocks = r.blocks;
  rep.free_blocks += blocks;
  result_.kv_blocks_freed += blocks;
  r.blocks = 0;
  const bool swap = setup_.config.preemption == ServingConfig::Preemption::kSwap;
  if (swap && blocks <= rep.free_swap_blocks) {
    swap_s += swap_seconds(rep, r.computed);
    r.swapped = true;
    r.swap_blocks = blocks;
    rep.free_swap_blocks -= blocks;
    result_.swap_blocks_out += blocks;
  } else {
    if (swap) ++result_.swap_fallbacks;  // the swap space is full
    // Recompute: the prompt and every generated token are prefilled again,
    // and that prefill samples the next token (vLLM resets
    // num_computed_tokens to 0 and schedules all of the request's tokens).
    r.target = r.out.input_tokens + r.out.generated;
    r.computed = 0;
  }
  rep.waiting.push_front(id);
}

void Simulator::finish_iteration(int i) {
  Instance& inst = instances_[i];
  (inst.has_prefill ? result_.prefill : result_.decode)
      .add(inst.cost, inst.spec->gpus, inst.prompt_tokens, inst.decode_tokens);
  if (result_.timeline.size() < setup_.recorded_iterations) {
    result_.timeline.push_back(
        {i, inst.started_s, inst.cost, inst.has_prefill, inst.prompt_tokens, inst.decode_tokens});
  }
  for (Replica& rep : inst.replicas) {
    members_.assign(rep.in_batch.begin(), rep.in_batch.end());  // advance() edits in_batch
    for (const uint32_t id : members_) advance(inst, rep, id);
  }
  inst.busy = false;
  inst.idle_since = engine_.now().seconds();
  // Requests this iteration's completions issue (closed loop) arrive at this
  // same instant: the next iteration starts after them.
  inst.wakeup_pending = true;
  engine_.schedule_at(engine_.now(), *this, event_arg(kWakeup, static_cast<uint64_t>(i)));
}

// A request after the iteration it took part in.
void Simulator::advance(Instance& inst, Replica& rep, uint32_t id) {
  RequestState& r = req_[id];
  const double now = engine_.now().seconds();
  bool new_token = false;
  if (r.decoding) {
    r.computed += 1;
    new_token = true;
  } else if (r.chunk > 0) {
    r.computed += r.chunk;
    new_token = r.computed == r.target;  // the prompt's last chunk samples a token
  }
  r.chunk = 0;
  r.decoding = false;
  if (!new_token) return;
  ++r.out.generated;
  if (inst.spec->role == InstanceRole::kPrefill && has_decode_ &&
      r.out.generated < r.out.output_tokens) {
    // Prompt done: its cache and first token move to a decode instance, after
    // the replica's earlier transfers; the user gets the first token from the
    // decode side (SGLang's and vLLM's disaggregated serving), so TTFT counts
    // the transfer.
    double& free_s = transfer_free_s_[inst.replica_offset + r.replica];
    free_s = std::max(free_s, now) + setup_.kv_transfer_seconds(r.computed);
    release(rep, id);
    r.target = r.computed;
    r.instance = r.replica = -1;
    engine_.schedule_at(SimTime::from_seconds(free_s), *this, event_arg(kTransferDone, id));
    return;
  }
  deliver_token(r, now);
  if (r.out.generated >= r.out.output_tokens ||
      (inst.spec->role == InstanceRole::kPrefill && !has_decode_)) {
    // Done; prefill instances alone end each request with its first token
    // (the decode side is not simulated, as SGLang's prefill benchmarks run).
    release(rep, id);
    complete(id);
  }
}

void Simulator::deliver_token(RequestState& r, double now) {
  if (r.out.first_token_s < 0) {
    r.out.first_token_s = now;
  } else {
    result_.inter_token.add(now - r.last_token_s);
  }
  r.last_token_s = now;
}

void Simulator::release(Replica& rep, uint32_t id) {
  RequestState& r = req_[id];
  rep.free_blocks += r.blocks;
  result_.kv_blocks_freed += r.blocks;
  r.blocks = 0;
  rep.running.erase(std::find(rep.running.begin(), rep.running.end(), id));
}

void Simulator::complete(uint32_t id) {
  req_[id].out.finish_s = engine_.now().seconds();
  count_in_system(-1);
  ++finished_;
  if (setup_.progress && (finished_ % progress_step_ == 0 || finished_ == req_.size())) {
    setup_.progress(finished_, req_.size());
  }
  // Closed loop: a finished request makes room for the next one.
  if (setup_.concurrency > 0 && issued_ < req_.size()) {
    engine_.schedule_at(engine_.now(), *this, event_arg(kArrival, issued_++));
  }
}

}  // namespace

ServingResult simulate_serving(const ServingSetup& setup, std::vector<ServingRequest> requests) {
  Simulator sim(setup, std::move(requests));
  return sim.run();
}

IterationFloor min_serving_iterations(const ServingSetup& setup,
                                      const std::vector<ServingRequest>& requests) {
  const ServingConfig& cfg = setup.config;
  // Prompt tokens one request computes per iteration at most (0: all of it).
  const int64_t chunk =
      cfg.chunked_prefill > 0 ? std::min(cfg.chunked_prefill, cfg.max_num_tokens) : 0;
  int64_t longest_input = 0;
  for (const ServingRequest& r : requests) longest_input = std::max(longest_input, r.input_tokens);
  bool prefills = false, decodes = false;
  int64_t per_iteration = 0, prompt_per_iteration = 0;
  for (const ServingInstance& inst : setup.instances) {
    prefills |= inst.role != InstanceRole::kDecode;
    decodes |= inst.role != InstanceRole::kPrefill;
    per_iteration = std::max(
        per_iteration, inst.replicas * std::min<int64_t>(cfg.max_batch_size, cfg.max_num_tokens));
    if (inst.role == InstanceRole::kDecode) continue;
    prompt_per_iteration =
        std::max(prompt_per_iteration,
                 inst.replicas * (chunk > 0 ? cfg.max_num_tokens
                                            : std::max(cfg.max_num_tokens, longest_input)));
  }
  if (setup.concurrency > 0) {
    per_iteration = std::min<int64_t>(per_iteration, setup.concurrency);
    prompt_per_iteration = std::min<int64_t>(
        prompt_per_iteration, setup.concurrency * (chunk > 0 ? chunk : longest_input));
  }
  IterationFloor floor;
  floor.tokens_per_iteration = std::max<int64_t>(per_iteration, 1);
  floor.prompt_tokens_per_iteration = std::max<int64_t>(prompt_per_iteration, 1);
  for (const ServingRequest& r : requests) {
    // Prefill instances alone stop at the first token; decode instances alone
    // are handed it with the prompt's cache (see simulate_serving).
    const int64_t tokens = !decodes ? 1 : prefills ? r.output_tokens : r.output_tokens - 1;
    // The prompt's last chunk yields the first token.
    const int64_t prompt_iterations = !prefills   ? 0
                                      : chunk > 0 ? (r.input_tokens + chunk - 1) / chunk
                                                  : 1;
    floor.tokens += tokens;
    if (prefills) floor.prompt_tokens += r.input_tokens;
    floor.longest_request =
        std::max(floor.longest_request, prompt_iterations + tokens - (prefills ? 1 : 0));
  }
  const auto spread = [](int64_t tokens, int64_t per_iteration) {
    return (tokens + per_iteration - 1) / per_iteration;
  };
  floor.iterations = static_cast<uint64_t>(std::max(
      {spread(floor.tokens, floor.tokens_per_iteration),
       spread(floor.prompt_tokens, floor.prompt_tokens_per_iteration), floor.longest_request}));
  return floor;
}

std::string_view instance_role_name(InstanceRole role) {
  switch (role) {
    case InstanceRole::kMixed:
      return "mixed";
    case InstanceRole::kPrefill:
      return "prefill";
    case InstanceRole::kDecode:
      return "decode";
  }
  return "mixed";
}

}  // namespace moesim::exec
