#include "models/model.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/random.h"

namespace keras {

OptimizerRef::OptimizerRef(const char* name) : ptr_(optimizers::get(name)) {}
OptimizerRef::OptimizerRef(const std::string& name) : ptr_(optimizers::get(name)) {}
LossRef::LossRef(const char* name) : ptr_(losses::get(name)) {}
LossRef::LossRef(const std::string& name) : ptr_(losses::get(name)) {}

Model::Model(std::string class_name, std::string name) : Layer(std::move(class_name), std::move(name)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;

Layer& Model::get_layer(const std::string& name) const {
  std::vector<std::string> names;
  for (Layer* l : layers()) {
    if (l->name() == name) return *l;
    names.push_back(l->name());
  }
  throw ValueError(fmt::format("No such layer: {}. Existing layers are: [{}].", name, fmt::join(names, ", ")));
}

std::vector<Variable*> Model::weights() {
  std::vector<Variable*> out;
  for (Layer* l : layers())
    for (Variable* v : l->weights()) out.push_back(v);
  return out;
}
std::vector<Variable*> Model::trainable_weights() {
  std::vector<Variable*> out;
  for (Variable* v : weights())
    if (v->trainable()) out.push_back(v);
  return out;
}
std::vector<Variable*> Model::non_trainable_weights() {
  std::vector<Variable*> out;
  for (Variable* v : weights())
    if (!v->trainable()) out.push_back(v);
  return out;
}
int64_t Model::count_params() const {
  int64_t n = 0;
  for (Layer* l : layers()) n += l->count_params();
  return n;
}
void Model::set_trainable(bool trainable) {
  Layer::set_trainable(trainable);
  for (Layer* l : layers()) l->set_trainable(trainable);
}

void Model::compile(CompileOptions o) {
  KCPP_CHECK(o.loss.get(), ValueError, "compile: a loss is required (for example .loss = \"sparse_categorical_crossentropy\")");
  optimizer_ = o.optimizer.get();
  loss_ = o.loss.get();
  metrics_.clear();
  for (const auto& m : o.metrics) metrics_.push_back(metrics::get(m, loss_->name()));
  loss_tracker_ = std::make_unique<metrics::Mean>("loss");
}

void Model::require_compiled(const char* what) const {
  KCPP_CHECK(compiled(), ValueError, "You must call `compile()` before using the model: {} on model \"{}\"", what, name());
}

Tensor Model::batch_loss(const Tensor& y, const Tensor& out, bool logits, const Tensor& w) {
  const Tensor per_sample = logits ? loss_->per_sample_from_logits(y, out) : loss_->per_sample(y, out);
  KCPP_CHECK(per_sample.rank() == 1, ShapeError, "loss {}: expected per-sample values (N,), received {}", loss_->name(),
             per_sample.shape().to_string());
  // Keras' "sum_over_batch_size": weighted sum over the number of samples.
  return w.defined() ? ops::sum(per_sample * w) * (1.f / static_cast<float>(per_sample.dim(0))) : ops::mean(per_sample);
}

void Model::update_metrics(const Tensor& y, const Tensor& out, bool logits) {
  NoGradScope no_grad;
  const Tensor predictions = logits ? ops::softmax(out) : out;
  for (auto& m : metrics_) m->update_state(y, predictions);
}

std::map<std::string, double> Model::results() const {
  std::map<std::string, double> logs{{"loss", loss_tracker_->result()}};
  for (const auto& m : metrics_) logs[m->name()] = m->result();
  return logs;
}

void Model::reset_metrics() {
  loss_tracker_->reset_state();
  for (auto& m : metrics_) m->reset_state();
}

namespace {
Tensor rows(const Tensor& t, int64_t start, int64_t count) {
  std::vector<int64_t> starts(t.rank(), 0), sizes(t.rank(), -1);
  starts[0] = start;
  sizes[0] = count;
  return ops::slice(t, starts, sizes);
}
Tensor on_device(const Tensor& t) { return ops::to_backend(t, default_backend()); }
// Inputs of integer dtypes (uint8 images) become float32, as Keras' data adapters do for models
// whose first layer computes in float.
Tensor as_input(const Tensor& t) { return is_floating(t.dtype()) ? t : ops::cast(t, DType::float32); }

std::vector<std::pair<std::string, double>> as_items(const std::map<std::string, double>& logs) {
  return {logs.begin(), logs.end()};
}
}  // namespace

std::map<std::string, double> Model::train_on_batch(const Tensor& x, const Tensor& y) {
  require_compiled("train_on_batch");
  reset_metrics();
  train_step(on_device(as_input(x)), on_device(y), Tensor());
  return results();
}

void Model::train_step(const Tensor& x, const Tensor& y, const Tensor& sample_weight) {
  const bool logits = loss_->accepts_softmax_logits() && ends_with_softmax();
  GradientTape tape;
  const Tensor out = forward(x, true, logits);
  const Tensor loss = batch_loss(y, out, logits, sample_weight);
  const auto vars = trainable_weights();
  const auto grads = tape.gradient(loss, vars);
  tape.stop_recording();
  optimizer_->apply_gradients(grads, vars);
  loss_tracker_->update_state(loss);
  update_metrics(y, out, logits);
}

std::map<std::string, double> Model::test_on_batch(const Tensor& x, const Tensor& y) {
  require_compiled("test_on_batch");
  reset_metrics();
  NoGradScope no_grad;
  const bool logits = loss_->accepts_softmax_logits() && ends_with_softmax();
  const Tensor yb = on_device(y);
  const Tensor out = forward(on_device(as_input(x)), false, logits);
  loss_tracker_->update_state(batch_loss(yb, out, logits, Tensor()));
  update_metrics(yb, out, logits);
  return results();
}

Tensor Model::predict_on_batch(const Tensor& x) {
  NoGradScope no_grad;
  return forward(on_device(as_input(x)), false, false);
}

History Model::fit(const Tensor& x, const Tensor& y, FitOptions o) {
  require_compiled("fit");
  KCPP_CHECK(x.defined() && y.defined() && x.rank() >= 1 && y.rank() >= 1, ValueError, "fit: x and y must be defined tensors");
  KCPP_CHECK(x.dim(0) == y.dim(0), ValueError,
             "fit: x and y must have the same number of samples, received x {} and y {}", x.shape().to_string(),
             y.shape().to_string());
  KCPP_CHECK(o.validation_split >= 0.f && o.validation_split < 1.f, ValueError,
             "fit: validation_split must be in [0, 1), received {}", o.validation_split);
  KCPP_CHECK(o.epochs >= 0 && o.initial_epoch >= 0, ValueError, "fit: epochs and initial_epoch must be non-negative");
  const int64_t batch = o.batch_size.value_or(32);
  KCPP_CHECK(batch > 0, ValueError, "fit: batch_size must be positive, received {}", batch);

  Tensor x_train = x, y_train = y, x_val, y_val;
  if (o.validation_data) {
    x_val = o.validation_data->first;
    y_val = o.validation_data->second;
  } else if (o.validation_split > 0.f) {
    const int64_t split_at = static_cast<int64_t>(std::ceil(static_cast<double>(x.dim(0)) * (1.0 - o.validation_split)));
    x_train = rows(x, 0, split_at);
    y_train = rows(y, 0, split_at);
    x_val = rows(x, split_at, x.dim(0) - split_at);
    y_val = rows(y, split_at, y.dim(0) - split_at);
  }
  // Per-sample weights: sample_weight times class_weight of each label.
  Tensor weights = o.sample_weight;
  if (!o.class_weight.empty()) {
    const Tensor ids = y_train.rank() == 2 && y_train.dim(1) > 1 ? ops::argmax(y_train, -1) : y_train;
    const auto labels = ops::cast(ids, DType::int64).to_vector<int64_t>();
    std::vector<float> cw(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) {
      auto it = o.class_weight.find(labels[i]);
      cw[i] = it == o.class_weight.end() ? 1.f : it->second;
    }
    const Tensor c = Tensor::from_vector(cw, Shape{static_cast<int64_t>(cw.size())}, weights.defined() ? weights.backend() : nullptr);
    weights = weights.defined() ? weights * c : c;
  }
  if (weights.defined())
    KCPP_CHECK(weights.rank() == 1 && weights.dim(0) >= x_train.dim(0), ValueError,
               "fit: sample_weight must have shape ({},), received {}", x_train.dim(0), weights.shape().to_string());

  const int64_t n = x_train.dim(0), steps = (n + batch - 1) / batch;
  std::mt19937_64 shuffler(random::make_key(std::nullopt));
  History history;
  for (int epoch = o.initial_epoch; epoch < o.epochs; ++epoch) {
    if (o.verbose && o.epochs > 1) std::cout << "Epoch " << epoch + 1 << "/" << o.epochs << std::endl;
    utils::Progbar bar(steps, o.verbose, std::cout);
    reset_metrics();
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    if (o.shuffle) std::shuffle(order.begin(), order.end(), shuffler);
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t start = s * batch, count = std::min(batch, n - start);
      Tensor xb, yb, wb;
      if (o.shuffle) {
        const Tensor idx = Tensor::from_vector(std::vector<int64_t>(order.begin() + start, order.begin() + start + count),
                                               Shape{count}, x_train.backend());
        xb = ops::take(x_train, idx, 0);
        yb = ops::take(y_train, ops::to_backend(idx, *y_train.backend()), 0);
        if (weights.defined()) wb = ops::take(weights, ops::to_backend(idx, *weights.backend()), 0);
      } else {
        xb = rows(x_train, start, count);
        yb = rows(y_train, start, count);
        if (weights.defined()) wb = rows(weights, start, count);
      }
      train_step(on_device(as_input(xb)), on_device(yb), wb.defined() ? on_device(wb) : Tensor());
      if (o.verbose == 1 && s + 1 < steps) bar.update(s + 1, as_items(results()));
    }
    std::map<std::string, double> logs = results();
    if (x_val.defined()) {
      for (const auto& [k, v] : run_evaluation(x_val, y_val, batch, nullptr)) logs[fmt::format("val_{}", k)] = v;
    }
    bar.update(steps, as_items(logs), true);
    for (const auto& [k, v] : logs) history.history[k].push_back(v);
    history.epoch.push_back(epoch);
  }
  return history;
}

std::map<std::string, double> Model::run_evaluation(const Tensor& x, const Tensor& y, int64_t batch, utils::Progbar* bar) {
  NoGradScope no_grad;
  KCPP_CHECK(x.dim(0) == y.dim(0), ValueError, "evaluate: x and y must have the same number of samples, received {} and {}",
             x.shape().to_string(), y.shape().to_string());
  const bool logits = loss_->accepts_softmax_logits() && ends_with_softmax();
  reset_metrics();
  const int64_t n = x.dim(0), steps = (n + batch - 1) / batch;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t start = s * batch, count = std::min(batch, n - start);
    const Tensor yb = on_device(rows(y, start, count));
    const Tensor out = forward(on_device(as_input(rows(x, start, count))), false, logits);
    // The loss tracker weights each batch by its size, so the result is the per-sample mean.
    loss_tracker_->update_state(logits ? loss_->per_sample_from_logits(yb, out) : loss_->per_sample(yb, out));
    update_metrics(yb, out, logits);
    if (bar && s + 1 < steps) bar->update(s + 1, as_items(results()));
  }
  auto logs = results();
  if (bar) bar->update(steps, as_items(logs), true);
  return logs;
}

std::map<std::string, double> Model::evaluate(const Tensor& x, const Tensor& y, EvaluateOptions o) {
  require_compiled("evaluate");
  const int64_t batch = o.batch_size.value_or(32);
  KCPP_CHECK(batch > 0, ValueError, "evaluate: batch_size must be positive, received {}", batch);
  utils::Progbar bar((x.dim(0) + batch - 1) / batch, o.verbose, std::cout);
  return run_evaluation(x, y, batch, &bar);
}

Tensor Model::predict(const Tensor& x, PredictOptions o) {
  NoGradScope no_grad;
  const int64_t batch = o.batch_size.value_or(32);
  KCPP_CHECK(batch > 0, ValueError, "predict: batch_size must be positive, received {}", batch);
  std::vector<Tensor> outs;
  for (int64_t start = 0; start < x.dim(0); start += batch)
    outs.push_back(forward(on_device(as_input(rows(x, start, std::min(batch, x.dim(0) - start)))), false, false));
  KCPP_CHECK(!outs.empty(), ValueError, "predict: x has no samples ({})", x.shape().to_string());
  return outs.size() == 1 ? outs[0] : ops::concatenate(outs, 0);
}

// summary() ------------------------------------------------------------------------------------------------

namespace {
std::string thousands(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}
std::string readable_size(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB"};
  int u = 0;
  while (bytes >= 1024 && u < 3) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.2f} {}", bytes, units[u]);
}
// Column widths as Keras sets them and rich then shrinks them: positions times the line length,
// plus one space of padding on each side, reduced evenly (round half to even) to fit the line.
std::vector<int> column_widths(int line_length, const std::vector<double>& positions) {
  std::vector<int> w;
  int current = 0;
  for (double p : positions) {
    const int pos = static_cast<int>(p * line_length);
    w.push_back(pos - current + 2);
    current = pos;
  }
  int total = std::accumulate(w.begin(), w.end(), 0) + static_cast<int>(w.size()) + 1;
  int excess = total - line_length, remaining_ratio = static_cast<int>(w.size());
  for (auto& width : w) {
    if (excess <= 0) break;
    const int d = static_cast<int>(std::nearbyint(static_cast<double>(excess) / remaining_ratio));
    width -= d;
    excess -= d;
    --remaining_ratio;
  }
  return w;
}
// Display columns of UTF-8 text (every character here is one column wide).
int display_width(const std::string& t) {
  int n = 0;
  for (unsigned char c : t) n += (c & 0xC0) != 0x80;
  return n;
}
// Pads to `width` columns with one space of padding each side; longer text is cut with an ellipsis.
std::string cell(std::string text, int width, bool right) {
  const int inner = width - 2;
  if (display_width(text) > inner) text = fmt::format("{}\u2026", text.substr(0, static_cast<size_t>(std::max(inner - 1, 0))));
  const std::string pad(static_cast<size_t>(std::max(0, inner - display_width(text))), ' ');
  return right ? fmt::format(" {}{} ", pad, text) : fmt::format(" {}{} ", text, pad);
}
std::string rule(const std::vector<int>& w, const char* left, const char* fill, const char* mid, const char* right) {
  std::string s = left;
  for (size_t i = 0; i < w.size(); ++i) {
    for (int k = 0; k < w[i]; ++k) s += fill;
    s += i + 1 < w.size() ? mid : right;
  }
  return s + "\n";
}
}  // namespace

std::string Model::summary_string(int line_length) {
  const auto w = column_widths(line_length, {0.45, 0.80, 1.0});
  std::ostringstream s;
  s << "Model: \"" << name() << "\"\n";
  s << rule(w, "\u250f", "\u2501", "\u2533", "\u2513");
  s << "\u2503" << cell("Layer (type)", w[0], false) << "\u2503" << cell("Output Shape", w[1], false) << "\u2503"
    << cell("Param #", w[2], true) << "\u2503\n";
  s << rule(w, "\u2521", "\u2501", "\u2547", "\u2529");
  const auto shapes = layer_output_shapes();
  const auto ls = layers();
  for (size_t i = 0; i < ls.size(); ++i) {
    const std::string shape = i < shapes.size() ? shape_to_string(shapes[i]) : "?";
    const std::string params = ls[i]->built() ? thousands(ls[i]->count_params()) : "0 (unbuilt)";
    s << "\u2502" << cell(fmt::format("{} ({})", ls[i]->name(), ls[i]->class_name()), w[0], false) << "\u2502" << cell(shape, w[1], false)
      << "\u2502" << cell(params, w[2], true) << "\u2502\n";
    if (i + 1 < ls.size()) s << rule(w, "\u251c", "\u2500", "\u253c", "\u2524");
  }
  s << rule(w, "\u2514", "\u2500", "\u2534", "\u2518");
  int64_t trainable = 0, frozen = 0;
  for (Variable* v : weights()) (v->trainable() ? trainable : frozen) += v->value().num_elements();
  s << " Total params: " << thousands(trainable + frozen) << " (" << readable_size(4.0 * static_cast<double>(trainable + frozen)) << ")\n";
  s << " Trainable params: " << thousands(trainable) << " (" << readable_size(4.0 * static_cast<double>(trainable)) << ")\n";
  s << " Non-trainable params: " << thousands(frozen) << " (" << readable_size(4.0 * static_cast<double>(frozen)) << ")\n";
  if (optimizer_ && optimizer_->built()) {
    int64_t n = 0;
    for (Variable* v : optimizer_->variables()) n += v->value().num_elements();
    n += 2;  // the iteration counter and the learning rate, as Keras counts them
    s << " Optimizer params: " << thousands(n) << " (" << readable_size(4.0 * static_cast<double>(n)) << ")\n";
  }
  return s.str();
}

void Model::summary(std::ostream& out, std::optional<int> line_length) {
  int length = 88;
  if (!line_length) {
    int columns = 80;  // what Python assumes off a terminal
    winsize ws{};
    if (&out == &std::cout && isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
      columns = ws.ws_col;
    length = std::min(88, columns - 4);
  } else {
    length = *line_length;
  }
  out << summary_string(length);
  out.flush();
}

}  // namespace keras
