// Catch2 runner that also reports how many test cases skipped for lack of hardware.
#define CATCH_CONFIG_RUNNER
#include <iostream>

#include "tests/support/test_support.h"

int main(int argc, char* argv[]) {
  const int result = Catch::Session().run(argc, argv);
  if (kt::skipped_count() > 0)
    std::cout << kt::skipped_count() << " test case(s) skipped for lack of hardware\n";
  return result;
}
