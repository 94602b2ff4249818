// The replicas of one process meet in host memory: each collective is a slot that every member
// fills with its tensor; the last to arrive combines them (in rank order, so the result has the same
// bits everywhere) and writes every member's result, then wakes the others.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>

#include "core/backend.h"
#include "core/check.h"
#include "distributed/communicator.h"

namespace keras::distribute {

namespace {
enum class Kind { all_reduce, broadcast, all_gather, reduce_scatter, barrier };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::all_reduce:
      return "all_reduce";
    case Kind::broadcast:
      return "broadcast";
    case Kind::all_gather:
      return "all_gather";
    case Kind::reduce_scatter:
      return "reduce_scatter";
    case Kind::barrier:
      return "barrier";
  }
  return "?";
}

void combine_range(DType dtype, const std::vector<const char*>& srcs, int64_t begin, int64_t end, ReduceOp op,
                   char* out);

struct Slot {
  Kind kind;
  ReduceOp op = ReduceOp::sum;
  int root = 0;
  std::vector<Tensor> inputs, outputs;  // by rank
  int arrived = 0;
  bool done = false;
  std::string error;  // set when the members' tensors disagree
  // An all-reduce of CPU tensors is shared out in chunks among the members that are there: the last
  // to arrive starts, and each that waits joins in.
  bool chunked = false;
  int64_t chunks = 0, chunk_elements = 0;
  std::atomic<int64_t> next_chunk{0}, chunks_done{0};
};

constexpr int64_t kChunkBytes = 256 << 10;

// An all-reduce the members can share: CPU tensors of one shape and a dtype it adds.
bool can_chunk(const Slot& s) {
  if (s.kind != Kind::all_reduce) return false;
  const Tensor& first = s.inputs[0];
  if (first.dtype() != DType::float32 && first.dtype() != DType::int32 && first.dtype() != DType::int64) return false;
  for (const Tensor& t : s.inputs)
    if (t.device().type != DeviceType::cpu || t.shape() != first.shape() || t.dtype() != first.dtype()) return false;
  return first.num_elements() > 0;
}

// Claims chunks until none is left; true for the caller that finished the last one.
bool reduce_chunks(Slot& s) {
  const Tensor& first = s.inputs[0];
  const DType dtype = first.dtype();
  const size_t elem = dtype_size(dtype);
  std::vector<const char*> srcs;
  for (const Tensor& t : s.inputs) srcs.push_back(static_cast<const char*>(t.raw_data()));
  std::vector<char> buffer(static_cast<size_t>(s.chunk_elements) * elem);
  bool last = false;
  for (int64_t c; (c = s.next_chunk.fetch_add(1)) < s.chunks;) {
    const int64_t begin = c * s.chunk_elements, end = std::min(first.num_elements(), begin + s.chunk_elements);
    combine_range(dtype, srcs, begin, end, s.op, buffer.data());
    for (const Tensor& t : s.inputs)
      std::memcpy(static_cast<char*>(t.raw_data()) + begin * elem, buffer.data(), static_cast<size_t>(end - begin) * elem);
    last = s.chunks_done.fetch_add(1) + 1 == s.chunks;
  }
  return last;
}

// A tensor's bytes readable on the host: its own memory on the CPU, else a staged copy.
class HostView {
 public:
  explicit HostView(const Tensor& t) : t_(t) {
    if (t.nbytes() == 0) return;
    if (t.device().type == DeviceType::cpu) {
      data_ = static_cast<const char*>(t.raw_data());
    } else {
      staged_.resize(t.nbytes());
      t.backend()->copy_to_host(staged_.data(), t.raw_data(), t.nbytes());
      data_ = staged_.data();
    }
  }
  const char* data() const { return data_; }

 private:
  Tensor t_;
  std::vector<char> staged_;
  const char* data_ = nullptr;
};

void write(Tensor& t, const void* src) {
  if (t.nbytes()) t.backend()->copy_from_host(t.raw_data(), src, t.nbytes());
}

// out[i - begin] = srcs[0][i] op srcs[1][i] op ... for i in [begin, end), in rank order.
template <typename T>
void combine(const std::vector<const char*>& srcs, int64_t begin, int64_t end, ReduceOp op, T* out) {
  const int64_t n = end - begin;
  std::memcpy(out, reinterpret_cast<const T*>(srcs[0]) + begin, static_cast<size_t>(n) * sizeof(T));
  for (size_t r = 1; r < srcs.size(); ++r) {
    const T* v = reinterpret_cast<const T*>(srcs[r]) + begin;
    switch (op) {
      case ReduceOp::sum:
      case ReduceOp::mean:
        for (int64_t i = 0; i < n; ++i) out[i] += v[i];
        break;
      case ReduceOp::max:
        for (int64_t i = 0; i < n; ++i) out[i] = std::max(out[i], v[i]);
        break;
      case ReduceOp::min:
        for (int64_t i = 0; i < n; ++i) out[i] = std::min(out[i], v[i]);
        break;
    }
  }
  if (op == ReduceOp::mean)
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(out[i] / static_cast<T>(srcs.size()));
}

void check_reducible(DType dtype, ReduceOp op) {
  KCPP_CHECK(dtype == DType::float32 || dtype == DType::int32 || dtype == DType::int64, TypeError,
             "in-process {}: float32, int32 or int64 tensors expected, received {}", reduce_op_name(op),
             dtype_name(dtype));
}

// Elements [begin, end) of the reduction of `srcs` (of `dtype`) into `out`.
void combine_range(DType dtype, const std::vector<const char*>& srcs, int64_t begin, int64_t end, ReduceOp op,
                   char* out) {
  switch (dtype) {
    case DType::float32:
      combine(srcs, begin, end, op, reinterpret_cast<float*>(out));
      break;
    case DType::int32:
      combine(srcs, begin, end, op, reinterpret_cast<int32_t*>(out));
      break;
    default:
      combine(srcs, begin, end, op, reinterpret_cast<int64_t*>(out));
      break;
  }
}

// The members' tensors reduced elementwise, in rank order, into host bytes.
std::vector<char> reduce(const std::vector<Tensor>& inputs, ReduceOp op) {
  check_reducible(inputs[0].dtype(), op);
  std::vector<HostView> views;
  std::vector<const char*> srcs;
  for (const Tensor& t : inputs) views.emplace_back(t);
  for (const HostView& v : views) srcs.push_back(v.data());
  std::vector<char> out(inputs[0].nbytes());
  combine_range(inputs[0].dtype(), srcs, 0, inputs[0].num_elements(), op, out.data());
  return out;
}

// Runs the collective once every member's tensor is in.
void complete(Slot& s) {
  const int size = static_cast<int>(s.inputs.size());
  if (s.kind == Kind::barrier) return;
  const Tensor& first = s.inputs[0];
  for (int r = 1; r < size; ++r)
    KCPP_CHECK(s.inputs[r].shape() == first.shape() && s.inputs[r].dtype() == first.dtype(), DistributedError,
               "{}: every rank must pass the same shape and dtype; rank 0 passed {} {}, rank {} passed {} {}",
               kind_name(s.kind), first.shape().to_string(), dtype_name(first.dtype()), r,
               s.inputs[r].shape().to_string(), dtype_name(s.inputs[r].dtype()));
  switch (s.kind) {
    case Kind::all_reduce: {
      const std::vector<char> sum = reduce(s.inputs, s.op);
      for (Tensor& t : s.inputs) write(t, sum.data());
      break;
    }
    case Kind::broadcast: {
      const HostView root(s.inputs[s.root]);
      const std::vector<char> bytes(root.data(), root.data() + first.nbytes());
      for (int r = 0; r < size; ++r)
        if (r != s.root) write(s.inputs[r], bytes.data());
      break;
    }
    case Kind::all_gather: {
      std::vector<char> stacked;
      for (const Tensor& t : s.inputs) {
        const HostView v(t);
        stacked.insert(stacked.end(), v.data(), v.data() + t.nbytes());
      }
      std::vector<int64_t> dims{size};
      for (int64_t d : first.shape().dims()) dims.push_back(d);
      for (const Tensor& t : s.inputs) {
        Tensor out = Tensor::empty(Shape(dims), t.dtype(), t.backend());
        write(out, stacked.data());
        s.outputs.push_back(out);
      }
      break;
    }
    case Kind::reduce_scatter: {
      KCPP_CHECK(first.rank() >= 1 && first.dim(0) % size == 0, DistributedError,
                 "reduce_scatter: the first axis must divide into {} ranks, received shape {}", size,
                 first.shape().to_string());
      const std::vector<char> sum = reduce(s.inputs, s.op);
      std::vector<int64_t> dims = first.shape().dims();
      dims[0] /= size;
      const Shape part(dims);
      const size_t part_bytes = static_cast<size_t>(part.num_elements()) * dtype_size(first.dtype());
      for (int r = 0; r < size; ++r) {
        Tensor out = Tensor::empty(part, first.dtype(), s.inputs[r].backend());
        write(out, sum.data() + r * part_bytes);
        s.outputs.push_back(out);
      }
      break;
    }
    case Kind::barrier:
      break;
  }
}
}  // namespace

struct InProcessGroup::State {
  int size;
  CommunicatorOptions options;
  std::mutex mutex;
  std::condition_variable cv;
  std::map<uint64_t, std::shared_ptr<Slot>> open;  // collectives some members have not reached yet
  std::vector<uint64_t> next;                      // each member's next collective
  std::string failed;                              // set: every collective throws this

  // Member `rank` enters its next collective; the last to arrive runs it.
  std::shared_ptr<Slot> arrive(int rank, Kind kind, Tensor t, ReduceOp op, int root) {
    std::unique_lock lock(mutex);
    if (!failed.empty()) throw DistributedError(failed);
    const uint64_t seq = next[rank]++;
    std::shared_ptr<Slot>& slot = open[seq];
    if (!slot) {
      slot = std::make_shared<Slot>();
      slot->kind = kind;
      slot->op = op;
      slot->root = root;
      slot->inputs.resize(size);
    } else if (slot->kind != kind || slot->op != op || slot->root != root) {
      failed = fmt::format("collective {} of the replicas differs: rank {} called {} where another called {}", seq,
                           rank, kind_name(kind), kind_name(slot->kind));
      cv.notify_all();
      throw DistributedError(failed);
    }
    std::shared_ptr<Slot> s = slot;
    s->inputs[rank] = std::move(t);
    if (++s->arrived < size) return s;
    open.erase(seq);
    if (size == 1 && kind != Kind::all_gather && kind != Kind::reduce_scatter) {  // one replica: its own values
      s->done = true;
      return s;
    }
    if (can_chunk(*s)) {
      s->chunk_elements = std::max<int64_t>(1, kChunkBytes / static_cast<int64_t>(dtype_size(s->inputs[0].dtype())));
      s->chunks = (s->inputs[0].num_elements() + s->chunk_elements - 1) / s->chunk_elements;
      s->chunked = true;  // members waiting now join in
      cv.notify_all();
      lock.unlock();
      share_chunks(*s);
      return s;
    }
    lock.unlock();
    try {
      complete(*s);
    } catch (const std::exception& e) {
      s->error = e.what();
    }
    lock.lock();
    s->done = true;
    cv.notify_all();
    return s;
  }

  // Works on a chunked all-reduce's remaining chunks; the one that ends it wakes everyone.
  void share_chunks(Slot& s) {
    if (!reduce_chunks(s)) return;
    std::lock_guard lock(mutex);
    s.done = true;
    cv.notify_all();
  }

  bool finished(const Slot& s) {
    std::lock_guard lock(mutex);
    return s.done || !failed.empty();
  }

  void wait(int rank, Slot& s) {
    std::unique_lock lock(mutex);
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    const auto woken = [&] { return s.done || !failed.empty() || (s.chunked && s.next_chunk.load() < s.chunks); };
    if (cv.wait_until(lock, deadline, woken) && !s.done && failed.empty()) {
      lock.unlock();
      share_chunks(s);
      lock.lock();
    }
    if (!cv.wait_until(lock, deadline, [&] { return s.done || !failed.empty(); })) {
      const DistributedError e = timeout_error(kind_name(s.kind), rank, size, options.timeout);
      failed = e.what();
      cv.notify_all();
      throw e;
    }
    if (!s.done) throw DistributedError(failed);
    if (!s.error.empty()) throw DistributedError(s.error);
  }
};

namespace {
class InProcessWork final : public Work {
 public:
  InProcessWork(std::shared_ptr<InProcessGroup::State> group, int rank, std::shared_ptr<Slot> slot)
      : group_(std::move(group)), rank_(rank), slot_(std::move(slot)) {}
  bool test() override { return group_->finished(*slot_); }
  void wait() override { group_->wait(rank_, *slot_); }

 private:
  std::shared_ptr<InProcessGroup::State> group_;
  int rank_;
  std::shared_ptr<Slot> slot_;
};

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<InProcessGroup::State> group, int rank)
      : Communicator(group->options), group_(std::move(group)), rank_(rank) {}
  std::string name() const override { return "in_process"; }
  int rank() const override { return rank_; }
  int world_size() const override { return group_->size; }

  std::unique_ptr<Work> all_reduce_async(Tensor t, ReduceOp op) override {
    KCPP_CHECK(t.defined(), ValueError, "all_reduce: the tensor is undefined");
    return std::make_unique<InProcessWork>(group_, rank_, group_->arrive(rank_, Kind::all_reduce, t, op, 0));
  }
  void broadcast(Tensor& t, int root) override {
    KCPP_CHECK(t.defined() && root >= 0 && root < group_->size, ValueError,
               "broadcast: expected a defined tensor and a root in [0, {}), received root {}", group_->size, root);
    run(Kind::broadcast, t, ReduceOp::sum, root);
  }
  Tensor all_gather(const Tensor& t) override {
    KCPP_CHECK(t.defined(), ValueError, "all_gather: the tensor is undefined");
    return run(Kind::all_gather, t, ReduceOp::sum, 0)->outputs[rank_];
  }
  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    KCPP_CHECK(t.defined(), ValueError, "reduce_scatter: the tensor is undefined");
    return run(Kind::reduce_scatter, t, op, 0)->outputs[rank_];
  }
  void barrier() override { run(Kind::barrier, Tensor(), ReduceOp::sum, 0); }
  [[noreturn]] void abort(const std::string& why) override {
    {
      std::lock_guard lock(group_->mutex);
      if (group_->failed.empty()) group_->failed = fmt::format("replica {} aborted: {}", rank_, why);
      group_->cv.notify_all();
    }
    throw DistributedError(fmt::format("replica {} aborted: {}", rank_, why));
  }

 private:
  std::shared_ptr<Slot> run(Kind kind, const Tensor& t, ReduceOp op, int root) {
    auto slot = group_->arrive(rank_, kind, t, op, root);
    group_->wait(rank_, *slot);
    return slot;
  }
  std::shared_ptr<InProcessGroup::State> group_;
  int rank_;
};
}  // namespace

InProcessGroup::InProcessGroup(int size, CommunicatorOptions options) : state_(std::make_shared<State>()) {
  KCPP_CHECK(size >= 1, ValueError, "InProcessGroup: size must be at least 1, received {}", size);
  state_->size = size;
  state_->options = options;
  state_->next.assign(size, 0);
  for (int r = 0; r < size; ++r) members_.push_back(std::make_shared<InProcessCommunicator>(state_, r));
}

int InProcessGroup::size() const { return state_->size; }

std::shared_ptr<Communicator> InProcessGroup::member(int rank) const {
  KCPP_CHECK(rank >= 0 && rank < state_->size, ValueError, "InProcessGroup: rank must be in [0, {}), received {}",
             state_->size, rank);
  return members_[rank];
}

void InProcessGroup::fail(const std::string& why) {
  std::lock_guard lock(state_->mutex);
  if (state_->failed.empty()) state_->failed = why;
  state_->cv.notify_all();
}

void InProcessGroup::reset() {
  std::lock_guard lock(state_->mutex);
  state_->failed.clear();
  state_->open.clear();
  state_->next.assign(state_->size, 0);
}

}  // namespace keras::distribute
