#include "models/training/progbar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace keras::utils {

Progbar::Progbar(std::optional<int64_t> target, int verbose, std::ostream& out, std::optional<bool> terminal)
    : target_(target),
      verbose_(verbose),
      out_(out),
      terminal_(terminal.value_or(&out == &std::cout && isatty(STDOUT_FILENO))),
      start_(std::chrono::steady_clock::now()) {}

void Progbar::set_clock_for_testing(std::vector<double> times) { fake_times_ = std::move(times); }

double Progbar::now() {
  if (!fake_times_.empty()) {
    const double t = fake_times_.front();
    if (fake_times_.size() > 1) fake_times_.erase(fake_times_.begin());
    return t;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progbar::format_value(double v) {
  return std::fabs(v) > 1e-3 ? fmt::format("{:.4f}", v) : fmt::format("{:.4e}", v);
}

std::string Progbar::format_time_per_step(double t) {
  if (t >= 1 || t == 0) return fmt::format(" {:.0f}s/step", t);
  if (t >= 1e-3) return fmt::format(" {:.0f}ms/step", t * 1e3);
  return fmt::format(" {:.0f}us/step", t * 1e6);
}

std::string Progbar::format_eta(double eta) {
  const int64_t e = static_cast<int64_t>(eta);
  if (eta > 3600) return fmt::format("{}:{:02d}:{:02d}", e / 3600, (e % 3600) / 60, e % 60);
  if (eta > 60) return fmt::format("{}:{:02d}", e / 60, e % 60);
  return fmt::format("{}s", e);
}

void Progbar::update(int64_t current, const Values& values, bool finalize) {
  update_reading(current, [&values] { return values; }, finalize);
}

void Progbar::update_reading(int64_t current, const std::function<Values()>& read_values, bool finalize) {
  if (verbose_ == 0) return;
  const double t = now();
  // Time per step leaves out the first step, which carries start-up costs.
  double per_step = 0;
  if (current > 0) {
    per_step = after_first_step_ && current > 1 ? (t - *after_first_step_) / static_cast<double>(current - 1)
                                                : t / static_cast<double>(current);
    if (current == 1) after_first_step_ = t;
  }
  const bool known = target_ && *target_ > 0;
  // Read only for a line that is printed: each value read from a GPU is a wait for it.
  const auto metrics = [&] {
    std::string m;
    for (const auto& [k, v] : read_values()) m += " - " + k + ": " + format_value(v);
    return m;
  };

  if (verbose_ == 2) {
    if (finalize && known) {
      const int digits = static_cast<int>(std::log10(static_cast<double>(*target_))) + 1;
      out_ << fmt::format("{:>{}}/{} - {:.0f}s -{}{}\n", current, digits, *target_, t, format_time_per_step(per_step),
                          metrics());
      out_.flush();
    }
    return;
  }
  // Redraw at most every 50 ms; off a terminal, print only the final line.
  if (!finalize && (!terminal_ || (last_update_ >= 0 && t - last_update_ < 0.05))) return;
  last_update_ = t;

  std::string bar, plain;
  if (known) {
    const int digits = static_cast<int>(std::log10(static_cast<double>(*target_))) + 1;
    const std::string count = fmt::format("{:>{}}/{}", current, digits, *target_);
    const int width = 20;
    const int done = static_cast<int>(width * static_cast<double>(current) / static_cast<double>(*target_));
    std::string done_bar, rest_bar;
    for (int i = 0; i < done; ++i) done_bar += "\u2501";
    for (int i = done; i < width; ++i) rest_bar += "\u2501";
    plain = count + " " + done_bar + rest_bar;
    bar = terminal_ ? "\x1b[1m" + count + "\x1b[0m " + (done > 0 ? "\x1b[32m" + done_bar + "\x1b[0m" : "") +
                          "\x1b[37m" + rest_bar + "\x1b[0m"
                    : plain;
  } else {
    plain = bar = fmt::format("{:7d}/Unknown", current);
  }
  const std::string when =
      known && !finalize ? format_eta(per_step * static_cast<double>(*target_ - current)) : fmt::format("{:.0f}s", t);
  const std::string shown = metrics();
  const std::string info_plain = " " + when + format_time_per_step(per_step) + shown;
  const std::string info =
      terminal_ ? " \x1b[1m" + when + "\x1b[0m" + format_time_per_step(per_step) + shown : info_plain;
  // Visible width: the bar characters are one column each.
  const size_t width = current >= 0 ? (plain.size() - (known ? 2 * 20 : 0)) + info_plain.size() : 0;
  std::string line = terminal_ ? "\r" + bar + info : bar + info;
  if (terminal_ && previous_width_ > width) line += std::string(previous_width_ - width, ' ');
  previous_width_ = width;
  if (finalize) line += "\n";
  out_ << line;
  out_.flush();
}

}  // namespace keras::utils
