#pragma once
#include <chrono>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../../core/export.h"

namespace keras::utils {

/// Keras 3's progress bar: `422/422 ━━━━━━━━━━━━━━━━━━━━ 7s 9ms/step - accuracy: 0.7668 - loss: 0.7644`.
/// On a terminal the line is redrawn in place with Keras' colours; elsewhere only the final line of
/// each run is printed, as plain text. verbose=2 prints `422/422 - 7s - 9ms/step - ...` at the end.
class KERASCPP_API Progbar {
 public:
  /// `target`: total steps, or nullopt when unknown. `terminal`: nullopt asks whether stdout is one.
  Progbar(std::optional<int64_t> target, int verbose, std::ostream& out, std::optional<bool> terminal = std::nullopt);
  using Values = std::vector<std::pair<std::string, double>>;
  /// `values` are shown as given (already averaged by the metrics), in the order given.
  void update(int64_t current, const Values& values, bool finalize = false);
  /// As update, calling `read_values` only where a line is printed now (on a terminal at most every
  /// 50 ms, elsewhere at the end): fit reads the metrics from the device only for those.
  void update_reading(int64_t current, const std::function<Values()>& read_values, bool finalize = false);
  /// For tests: replaces the clock's readings (seconds since the bar started).
  void set_clock_for_testing(std::vector<double> times);

  /// Keras' formats: "%.4f", or "%.4e" when |value| <= 1e-3.
  static std::string format_value(double value);
  /// " 9ms/step", " 2s/step", " 120us/step".
  static std::string format_time_per_step(double seconds);
  /// "%ds", "%d:%02d" or "%d:%02d:%02d".
  static std::string format_eta(double seconds);

 private:
  double now();
  std::optional<int64_t> target_;
  int verbose_;
  std::ostream& out_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::optional<double> after_first_step_;
  double last_update_ = -1;
  size_t previous_width_ = 0;
  std::vector<double> fake_times_;
};

}  // namespace keras::utils
