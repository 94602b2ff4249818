// A data-parallel job in which one rank fails, for the fault tests (run by CTest under mpirun, and
// under launch_local.sh with the tcp communicator):
//   hang:  rank 1 stops answering; the other ranks must fail with DistributedError within the timeout.
//   error: rank 1 hits an error and ends the job through Communicator::abort.
//   kill:  rank 1 dies (SIGKILL); mpirun ends the others, or (tcp) they see its connection close.
// Every rank prints what ended it; CTest matches the expected line.
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <iostream>

#include "distributed/strategy.h"
#include "kerascpp.h"

using namespace keras;

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "hang" && mode != "error" && mode != "kill") {
    std::cerr << "usage: fault_injection hang|error|kill\n";
    return 2;
  }
  distribute::MultiWorkerMirroredStrategy strategy({.communicator = "auto", .timeout = std::chrono::seconds(2)});
  const int rank = strategy.replica_id();
  std::vector<float> xs(64 * 4);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::cos(0.1f * static_cast<float>(i));
  const Tensor x = Tensor::from_vector(xs, Shape{64, 4});
  const Tensor y = ops::sum(x, {1}, true);
  Sequential model = strategy.scope([] {
    return Sequential({layers::Input({4}), layers::Dense(4), layers::Dense(1)});
  });
  strategy.scope([&] { model.compile({.optimizer = "sgd", .loss = "mse"}); });
  auto fail_on_rank_1 = callbacks::LambdaCallback({.on_train_batch_end = [&](int batch, callbacks::Logs&) {
    if (rank != 1 || batch != 2) return;
    if (mode == "hang") pause();  // never answers again
    if (mode == "kill") raise(SIGKILL);
    if (mode == "error") throw ValueError("rank 1: a corrupt input batch");
  }});
  try {
    model.fit(x, y, {.batch_size = 8, .epochs = 50, .verbose = 0, .callbacks = {std::move(fail_on_rank_1)}});
  } catch (const DistributedError& e) {
    std::cout << "rank " << rank << " stopped: " << e.what() << std::endl;
    strategy.communicator().abort(e.what());
  } catch (const std::exception& e) {
    strategy.communicator().abort(e.what());  // the other ranks stop instead of waiting for this one
  }
  std::cout << "rank " << rank << " finished training, which it should not have" << std::endl;
  return 1;
}
