// The TCP communicator: ranks started without MPI by a launcher that sets RANK, WORLD_SIZE,
// MASTER_ADDR and MASTER_PORT (as torchrun does). Rank 0 listens; the others connect to it. Every
// collective goes through rank 0 (a star), combining contributions in rank order, so results do not
// depend on arrival order. Meant for CPU processes on a node and as the NCCL bootstrap, not for
// bandwidth. Every wait has the communicator's timeout; a rank that dies closes its socket and the
// others fail at once.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "core/check.h"
#include "core/config.h"
#include "core/ops.h"
#include "core/registry.h"
#include "distributed/communicator.h"

namespace keras::distribute {
namespace {

using Clock = std::chrono::steady_clock;

class TcpCommunicator final : public Communicator {
 public:
  explicit TcpCommunicator(CommunicatorOptions o) : Communicator(o) {
    const Settings& s = settings();
    rank_ = s.rank;
    world_ = s.world_size;
    KCPP_CHECK(world_ >= 1 && rank_ >= 0 && rank_ < world_, DistributedError,
               "tcp communicator: expected 0 <= RANK < WORLD_SIZE, received RANK={} WORLD_SIZE={}", rank_, world_);
    peers_.assign(static_cast<size_t>(world_), -1);
    if (world_ > 1) rank_ == 0 ? accept_peers(s.master_port) : connect_to_root(s.master_addr, s.master_port);
  }
  ~TcpCommunicator() override {
    for (int fd : peers_)
      if (fd >= 0) ::close(fd);
  }
  std::string name() const override { return "tcp"; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  std::unique_ptr<Work> all_reduce_async(Tensor t, ReduceOp op) override {
    // Checked before anything is sent, so every rank refuses alike instead of leaving the others waiting.
    const DType dt = t.dtype();
    KCPP_CHECK(dt == DType::float32 || dt == DType::int32 || dt == DType::int64 || dt == DType::uint8, TypeError,
               "tcp communicator: all_reduce supports float32, int32, int64 and uint8, received {}", dtype_name(dt));
    KCPP_CHECK(op != ReduceOp::mean || dt == DType::float32, TypeError,
               "tcp communicator: a mean needs float32, received {}", dtype_name(dt));
    Tensor host = to_host(t);
    const std::string what = fmt::format("all_reduce({}) of {}", reduce_op_name(op), t.shape().to_string());
    const size_t bytes = host.num_elements() * dtype_size(host.dtype());
    if (rank_ == 0) {
      std::vector<uint8_t> other(bytes);
      for (int r = 1; r < world_; ++r) {
        receive(r, other.data(), bytes, what);
        combine(host, other.data(), op);
      }
      if (op == ReduceOp::mean) finish_mean(host);
      for (int r = 1; r < world_; ++r) send(r, host.raw_data(), bytes, what);
    } else {
      send(0, host.raw_data(), bytes, what);
      receive(0, host.raw_data(), bytes, what);
    }
    write_back(host, t);
    return std::make_unique<Done>();  // finished: the star has nothing to overlap
  }
  void broadcast(Tensor& t, int root) override {
    KCPP_CHECK(root >= 0 && root < world_, ValueError, "broadcast: root must be a rank in [0, {}), received {}", world_,
               root);
    Tensor host = to_host(t);
    const size_t bytes = host.num_elements() * dtype_size(host.dtype());
    const std::string what = fmt::format("broadcast of {} from rank {}", t.shape().to_string(), root);
    if (root != 0) {  // through rank 0
      if (rank_ == root) send(0, host.raw_data(), bytes, what);
      if (rank_ == 0) receive(root, host.raw_data(), bytes, what);
    }
    if (rank_ == 0) {
      for (int r = 1; r < world_; ++r)
        if (r != root) send(r, host.raw_data(), bytes, what);
    } else if (rank_ != root) {
      receive(0, host.raw_data(), bytes, what);
    }
    write_back(host, t);
  }
  Tensor all_gather(const Tensor& t) override {
    const Tensor host = to_host(t);
    const size_t bytes = host.num_elements() * dtype_size(host.dtype());
    std::vector<int64_t> dims{world_};
    for (int64_t d : t.shape().dims()) dims.push_back(d);
    Tensor out = Tensor::empty(Shape(dims), t.dtype(), &cpu());
    auto* base = static_cast<uint8_t*>(out.raw_data());
    std::memcpy(base + static_cast<size_t>(rank_) * bytes, host.raw_data(), bytes);
    const std::string what = fmt::format("all_gather of {}", t.shape().to_string());
    if (rank_ == 0) {
      for (int r = 1; r < world_; ++r) receive(r, base + static_cast<size_t>(r) * bytes, bytes, what);
      for (int r = 1; r < world_; ++r) send(r, base, bytes * static_cast<size_t>(world_), what);
    } else {
      send(0, host.raw_data(), bytes, what);
      receive(0, base, bytes * static_cast<size_t>(world_), what);
    }
    return ops::to_backend(out, *t.backend());
  }
  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    KCPP_CHECK(t.rank() >= 1 && t.dim(0) % world_ == 0, ShapeError,
               "reduce_scatter: expected a first dimension divisible by the {} ranks, received shape {}", world_,
               t.shape().to_string());
    Tensor all = ops::copy(t);
    all_reduce(all, op);
    const int64_t k = t.dim(0) / world_;
    std::vector<int64_t> starts(t.rank(), 0), sizes(t.rank(), -1);
    starts[0] = rank_ * k;
    sizes[0] = k;
    return ops::slice(all, starts, sizes);
  }
  void barrier() override {
    Tensor one = Tensor::from_vector(std::vector<int32_t>{1}, Shape{1}, &cpu());
    all_reduce(one, ReduceOp::sum);
  }
  [[noreturn]] void abort(const std::string& why) override {
    std::fprintf(stderr, "kerascpp: rank %d of %d failed, ending the job: %s\n", rank_, world_, why.c_str());
    std::fflush(stderr);
    for (int fd : peers_)
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);  // the others see the connection close at once
    std::_Exit(1);
  }

 private:
  struct Done final : Work {
    bool test() override { return true; }
    void wait() override {}
  };
  static Backend& cpu() { return backend::get_backend("cpu"); }
  static Tensor to_host(const Tensor& t) {
    return t.backend()->device().type == DeviceType::cpu ? t : ops::to_backend(t, cpu());
  }
  static void write_back(const Tensor& host, Tensor& t) {
    if (host.raw_data() != t.raw_data()) ops::copy_into(ops::to_backend(host, *t.backend()), t);
  }
  template <typename T>
  static void combine_as(T* a, const T* b, int64_t n, ReduceOp op) {
    for (int64_t i = 0; i < n; ++i) {
      switch (op) {
        case ReduceOp::sum:
        case ReduceOp::mean:
          a[i] += b[i];
          break;
        case ReduceOp::max:
          a[i] = std::max(a[i], b[i]);
          break;
        case ReduceOp::min:
          a[i] = std::min(a[i], b[i]);
          break;
      }
    }
  }
  static void combine(Tensor& acc, const void* other, ReduceOp op) {
    const int64_t n = acc.num_elements();
    switch (acc.dtype()) {
      case DType::float32:
        return combine_as(acc.data<float>(), static_cast<const float*>(other), n, op);
      case DType::int32:
        return combine_as(acc.data<int32_t>(), static_cast<const int32_t*>(other), n, op);
      case DType::int64:
        return combine_as(acc.data<int64_t>(), static_cast<const int64_t*>(other), n, op);
      case DType::uint8:
        return combine_as(acc.data<uint8_t>(), static_cast<const uint8_t*>(other), n, op);
      default:
        KCPP_ASSERT(false);  // all_reduce_async checked the dtype
    }
  }
  void finish_mean(Tensor& acc) const {
    float* p = acc.data<float>();
    for (int64_t i = 0; i < acc.num_elements(); ++i) p[i] /= static_cast<float>(world_);
  }

  // Waits for `events` on the connection to rank `peer`, or fails after the timeout.
  void wait_for(int peer, short events, const std::string& what, Clock::time_point deadline) const {
    pollfd p{peers_[static_cast<size_t>(peer)], events, 0};
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) throw timeout_error(what, rank_, world_, timeout());
      const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
      if (rc > 0) return;
      if (rc < 0 && errno != EINTR)
        throw DistributedError(fmt::format("{} on rank {}: poll failed: {}", what, rank_, std::strerror(errno)));
    }
  }
  void send(int peer, const void* data, size_t bytes, const std::string& what) const {
    const auto deadline = Clock::now() + timeout();
    const auto* p = static_cast<const uint8_t*>(data);
    while (bytes > 0) {
      wait_for(peer, POLLOUT, what, deadline);
      const ssize_t n = ::send(peers_[static_cast<size_t>(peer)], p, bytes, MSG_NOSIGNAL);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) closed(peer, what);
      p += n;
      bytes -= static_cast<size_t>(n);
    }
  }
  void receive(int peer, void* data, size_t bytes, const std::string& what) const {
    const auto deadline = Clock::now() + timeout();
    auto* p = static_cast<uint8_t*>(data);
    while (bytes > 0) {
      wait_for(peer, POLLIN, what, deadline);
      const ssize_t n = ::recv(peers_[static_cast<size_t>(peer)], p, bytes, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) closed(peer, what);
      p += n;
      bytes -= static_cast<size_t>(n);
    }
  }
  [[noreturn]] void closed(int peer, const std::string& what) const {
    throw DistributedError(fmt::format("{} on rank {} of {}: rank {} closed its connection (it failed or ended)", what,
                                       rank_, world_, peer));
  }

  void accept_peers(int port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    KCPP_CHECK(listener_ >= 0, DistributedError, "tcp communicator: socket failed: {}", std::strerror(errno));
    const int yes = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, world_) != 0) {
      const std::string err = std::strerror(errno);
      ::close(listener_);
      throw DistributedError(
          fmt::format("tcp communicator: rank 0 cannot listen on port {} (MASTER_PORT): {}", port, err));
    }
    const auto deadline = Clock::now() + timeout();
    for (int joined = 1; joined < world_;) {
      pollfd p{listener_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000))) < 0) {
        if (left > 0 && errno == EINTR) continue;
        ::close(listener_);
        throw DistributedError(fmt::format("tcp communicator: rank 0 waited {} s for {} rank(s) to connect on port {}",
                                           std::chrono::duration<double>(timeout()).count(), world_ - joined, port));
      }
      if (!(p.revents & POLLIN)) continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      int32_t peer = -1;
      peers_[0] = fd;  // receive() reads peers_[peer]: use slot 0 while the rank is unknown
      receive(0, &peer, sizeof peer, "the rendezvous");
      peers_[0] = -1;
      if (peer <= 0 || peer >= world_ || peers_[static_cast<size_t>(peer)] >= 0) {
        ::close(fd);
        ::close(listener_);
        throw DistributedError(
            fmt::format("tcp communicator: a process announced rank {}; expected a new rank in [1, {})", peer, world_));
      }
      tune(fd);
      peers_[static_cast<size_t>(peer)] = fd;
      ++joined;
    }
    ::close(listener_);
  }

  void connect_to_root(const std::string& host, int port) {
    addrinfo hints{}, *found = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    const int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    KCPP_CHECK(gai == 0 && found, DistributedError, "tcp communicator: cannot resolve MASTER_ADDR '{}': {}", host,
               gai_strerror(gai));
    const auto deadline = Clock::now() + timeout();
    int fd = -1;
    while (fd < 0) {  // rank 0 may not be listening yet
      fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (fd >= 0 && ::connect(fd, found->ai_addr, found->ai_addrlen) == 0) break;
      if (fd >= 0) ::close(fd);
      fd = -1;
      if (Clock::now() > deadline) {
        ::freeaddrinfo(found);
        throw DistributedError(fmt::format("tcp communicator: rank {} could not reach rank 0 at {}:{} within {} s",
                                           rank_, host, port, std::chrono::duration<double>(timeout()).count()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::freeaddrinfo(found);
    tune(fd);
    peers_[0] = fd;
    const int32_t me = rank_;
    send(0, &me, sizeof me, "the rendezvous");
  }
  static void tune(int fd) {
    const int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  }

  int rank_ = 0, world_ = 1, listener_ = -1;
  std::vector<int> peers_;  // rank 0: a connection per rank; others: peers_[0] to rank 0
};

}  // namespace

std::shared_ptr<Communicator> make_tcp_communicator(CommunicatorOptions options) {
  return std::make_shared<TcpCommunicator>(options);
}

}  // namespace keras::distribute
