// Catch2 runner that also reports how many test cases skipped for lack of hardware.
#define CATCH_CONFIG_RUNNER
#include <iostream>

#include "tests/support/test_support.h"

int main(int argc, char* argv[]) {
  // The op tests run on the default backend (KERASCPP_BACKEND, auto: the GPU where there is one) and
  // compare against float32 references, so TensorFloat-32 is off; the CUDA tests check TF32 apart.
  keras::enable_tensor_float_32_execution(false);
  const int result = Catch::Session().run(argc, argv);
  if (kt::skipped_count() > 0) std::cout << kt::skipped_count() << " test case(s) skipped for lack of hardware\n";
  return result;
}
