// The replicas of one process meet in host memory: each collective is a slot that every member
// fills with its tensor; the last to arrive combines them (in rank order, so the result has the same
// bits everywhere) and writes every member's result, then wakes the others.
#include <algorithm>
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

struct Slot {
  Kind kind;
  ReduceOp op = ReduceOp::sum;
  int root = 0;
  std::vector<Tensor> inputs, outputs;  // by rank
  int arrived = 0;
  bool done = false;
  std::string error;  // set when the members' tensors disagree
};

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

template <typename T>
void combine(const std::vector<HostView>& views, int64_t n, ReduceOp op, std::vector<char>& out) {
  out.resize(static_cast<size_t>(n) * sizeof(T));
  T* acc = reinterpret_cast<T*>(out.data());
  std::memcpy(acc, views[0].data(), out.size());
  for (size_t r = 1; r < views.size(); ++r) {
    const T* v = reinterpret_cast<const T*>(views[r].data());
    switch (op) {
      case ReduceOp::sum:
      case ReduceOp::mean:
        for (int64_t i = 0; i < n; ++i) acc[i] += v[i];
        break;
      case ReduceOp::max:
        for (int64_t i = 0; i < n; ++i) acc[i] = std::max(acc[i], v[i]);
        break;
      case ReduceOp::min:
        for (int64_t i = 0; i < n; ++i) acc[i] = std::min(acc[i], v[i]);
        break;
    }
  }
  if (op == ReduceOp::mean)
    for (int64_t i = 0; i < n; ++i) acc[i] = static_cast<T>(acc[i] / static_cast<T>(views.size()));
}

// The members' tensors reduced elementwise, in rank order, into host bytes.
std::vector<char> reduce(const std::vector<Tensor>& inputs, ReduceOp op) {
  std::vector<HostView> views;
  for (const Tensor& t : inputs) views.emplace_back(t);
  std::vector<char> out;
  const int64_t n = inputs[0].num_elements();
  switch (inputs[0].dtype()) {
    case DType::float32:
      combine<float>(views, n, op, out);
      break;
    case DType::int32:
      combine<int32_t>(views, n, op, out);
      break;
    case DType::int64:
      combine<int64_t>(views, n, op, out);
      break;
    default:
      throw TypeError(fmt::format("in-process {}: float32, int32 or int64 tensors expected, received {}",
                                  reduce_op_name(op), dtype_name(inputs[0].dtype())));
  }
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

  bool finished(const Slot& s) {
    std::lock_guard lock(mutex);
    return s.done || !failed.empty();
  }

  void wait(int rank, const Slot& s) {
    std::unique_lock lock(mutex);
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
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
