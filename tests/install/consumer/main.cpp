#include <kerascpp/kerascpp.h>

#include <iostream>

int main() {
  using namespace keras;
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, Shape{2, 2});
  std::cout << "backend = " << backend::backend_name() << ", sum = " << ops::sum(x).item() << "\n";
  // Data parallel from an installed kerascpp: a strategy over two logical CPU devices.
  distribute::MirroredStrategy strategy({"cpu:0", "cpu:1"});
  std::cout << "replicas = " << strategy.num_replicas_in_sync() << "\n";
  return 0;
}
