// libFuzzer targets for kerascpp's file readers (built by tools/fuzz.sh with clang). Each input is
// written to a file and loaded; a kerascpp error is the expected outcome for garbage, anything else
// (a crash, a sanitizer report, another exception type, a leak) is a finding.
//   FUZZ_TARGET_KERAS:   the input is a .keras file (zip, JSON config, HDF5 weights)
//   FUZZ_TARGET_H5:      the input is a legacy .h5 model, then a .weights.h5 for a fixed model
//   FUZZ_TARGET_JSON:    the input is a model config for model_from_json
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "kerascpp.h"

namespace {
std::string scratch_path(const char* suffix) {
  return "/tmp/kerascpp_fuzz_" + std::to_string(getpid()) + suffix;
}

void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

template <typename F>
void expect_kerascpp_errors_only(F&& f) {
  try {
    f();
  } catch (const keras::Error&) {
    // a clear refusal: what garbage should get
  }
}

bool quiet = [] {
  keras::set_log_level(keras::LogLevel::off);
  // Inputs on which libhdf5 loops forever are refused when the preflight read times out: a short
  // limit keeps the fuzzer moving (the production default is 60 s).
  keras::models::set_hdf5_read_timeout(3.0);
  return true;
}();
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)quiet;
#if defined(FUZZ_TARGET_KERAS)
  const std::string path = scratch_path(".keras");
  write_file(path, data, size);
  expect_kerascpp_errors_only([&] { keras::models::load_model(path); });
  expect_kerascpp_errors_only([&] { keras::models::inspect_file(path); });
#elif defined(FUZZ_TARGET_H5)
  const std::string path = scratch_path(".h5");
  write_file(path, data, size);
  expect_kerascpp_errors_only([&] { keras::models::load_model(path); });
  expect_kerascpp_errors_only([&] { keras::models::inspect_file(path); });
  expect_kerascpp_errors_only([&] {
    keras::Sequential model({keras::layers::Input({3}), keras::layers::Dense(2)});
    model.load_weights(path);
  });
#elif defined(FUZZ_TARGET_JSON)
  const std::string text(reinterpret_cast<const char*>(data), size);
  expect_kerascpp_errors_only([&] { keras::models::model_from_json(text); });
#else
#error "define FUZZ_TARGET_KERAS, FUZZ_TARGET_H5 or FUZZ_TARGET_JSON"
#endif
  return 0;
}
