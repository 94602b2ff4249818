#pragma once
// Shared test helpers: naive references, tolerant comparisons, finite-difference gradient checks,
// and the skip counter (Catch2 v2 has no SKIP()).
#include <catch2/catch.hpp>
#include <filesystem>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kerascpp.h"

namespace kt {

/// tests/fixtures: the source tree's (KERASCPP_FIXTURE_DIR), or the one under the working directory
/// when the tests run from a copy of the repository (the GPU machine).
std::filesystem::path fixture_dir();

/// Counts test cases that returned early for lack of hardware; printed by main().
int& skipped_count();
/// Logs "skipped: <why>" and counts it; the test then returns.
void skip(const std::string& why);

/// A logical CPU device (`device`, such as "cpu:5") made under KERASCPP_NATIVE_LOW_PRECISION=all: it
/// claims every oneDNN bfloat16 kernel the processor can run, also those slower than float32 copies,
/// so tests check them on any AVX-512 machine. Null (after kt::skip) where oneDNN runs none.
keras::Backend* cpu_with_every_bfloat16_kernel(const std::string& device);

/// A residual block with a batch norm the inference pass folds into its convolution, and a nested
/// model, on (2, 12, 12, 3) images: what the recorded-inference tests replay.
std::shared_ptr<keras::Model> residual_model_for_graphs();

/// Sets an environment variable for a scope (unsets it for an empty value), then restores it;
/// kerascpp's settings are read again each time.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value.empty())
      unsetenv(name_.c_str());
    else
      setenv(name_.c_str(), value.c_str(), 1);
    keras::reload_settings();
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
    keras::reload_settings();
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

/// Deterministic random floats in [lo, hi).
std::vector<float> random_values(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f);
/// A float32 tensor of random values in [lo, hi).
keras::Tensor random_tensor(const keras::Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f);

/// Fails the test with the first mismatching index when |a - b| > atol + rtol * |b|.
void require_close(const std::vector<float>& actual, const std::vector<float>& expected, float atol = 1e-5f,
                   float rtol = 1e-5f);

/// max |a - b| over the elements of two tensors of the same shape (read as float32).
double max_abs_diff(const keras::Tensor& a, const keras::Tensor& b);

/// Checks every input's gradient of sum(f(inputs) * w) (w a fixed random weighting) against central
/// finite differences. Inputs must be float32.
void check_gradients(const std::function<keras::Tensor(const std::vector<keras::Tensor>&)>& f,
                     std::vector<keras::Tensor> inputs, float eps = 1e-2f, float atol = 3e-3f, float rtol = 3e-2f);

/// Runs `f` and requires it to throw `Exc` whose message contains every fragment.
template <typename Exc, typename F>
void require_throws_with(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
  } catch (const Exc& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const auto& frag : fragments) {
      INFO("expected fragment: " << frag);
      CHECK(msg.find(frag) != std::string::npos);
    }
    return;
  } catch (const std::exception& e) {
    FAIL("threw the wrong exception type: " << e.what());
  }
  FAIL("did not throw");
}

}  // namespace kt
