#include "models/training/callbacks.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/check.h"
#include "core/logging.h"
#include "models/model.h"
#include "models/saving/file_io.h"

namespace keras::callbacks {

Callback::~Callback() = default;
Model& Callback::model() const {
  KCPP_CHECK(model_, ValueError, "callback used outside fit(): it has no model");
  return *model_;
}

namespace {
// Keras' "auto": maximize accuracy-like values, minimize the rest.
bool maximizes(const std::string& mode, const std::string& monitor) {
  if (mode == "max") return true;
  if (mode == "min") return false;
  KCPP_CHECK(mode == "auto", ValueError, "mode must be 'auto', 'min' or 'max', received '{}'", mode);
  return monitor.find("acc") != std::string::npos || monitor.find("auc") != std::string::npos ||
         monitor.rfind("fbeta", 0) == 0 || monitor.rfind("f1", 0) == 0;
}
std::optional<double> monitored(const Logs& logs, const std::string& monitor, const char* who) {
  auto it = logs.find(monitor);
  if (it != logs.end()) return it->second;
  std::string keys;
  for (const auto& [k, v] : logs) keys += (keys.empty() ? "" : ",") + k;
  keras::detail::log_warn(fmt::format("{} conditioned on metric `{}` which is not available. Available metrics are: {}",
                                      who, monitor, keys));
  return std::nullopt;
}
}  // namespace

EarlyStopping::EarlyStopping(EarlyStoppingOptions o) : o_(std::move(o)), maximize_(maximizes(o_.mode, o_.monitor)) {}

bool EarlyStopping::improved(double current, double reference) const {
  const double delta = std::fabs(o_.min_delta);
  return maximize_ ? current - delta > reference : current + delta < reference;
}

void EarlyStopping::on_train_begin(Logs&) {
  wait_ = 0;
  stopped_epoch_ = 0;
  best_epoch_ = 0;
  best_ = maximize_ ? -INFINITY : INFINITY;
  best_weights_.reset();
}

void EarlyStopping::on_epoch_end(int epoch, Logs& logs) {
  const auto current = monitored(logs, o_.monitor, "Early stopping");
  if (!current || epoch < o_.start_from_epoch) return;
  if (o_.restore_best_weights && !best_weights_) {
    best_weights_ = model().get_weights();
    best_epoch_ = epoch;
  }
  ++wait_;
  if (improved(*current, best_)) {
    best_ = *current;
    best_epoch_ = epoch;
    if (o_.restore_best_weights) best_weights_ = model().get_weights();
    if (!o_.baseline || improved(*current, *o_.baseline)) wait_ = 0;
    return;
  }
  if (wait_ >= o_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    model().stop_training = true;
  }
}

void EarlyStopping::on_train_end(Logs&) {
  if (stopped_epoch_ > 0 && o_.verbose > 0)
    std::cout << "Epoch " << stopped_epoch_ + 1 << ": early stopping" << std::endl;
  if (o_.restore_best_weights && best_weights_) {
    if (o_.verbose > 0)
      std::cout << "Restoring model weights from the end of the best epoch: " << best_epoch_ + 1 << "." << std::endl;
    model().set_weights(*best_weights_);
  }
}

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions o)
    : o_(std::move(o)), maximize_(maximizes(o_.mode, o_.monitor)) {
  KCPP_CHECK(o_.factor < 1.0, ValueError, "ReduceLROnPlateau does not support a factor >= 1.0. Received factor={}",
             o_.factor);
}

void ReduceLROnPlateau::on_train_begin(Logs&) {
  wait_ = 0;
  cooldown_counter_ = 0;
  best_ = maximize_ ? -INFINITY : INFINITY;
}

void ReduceLROnPlateau::on_epoch_end(int epoch, Logs& logs) {
  auto& opt = *model().optimizer();
  logs["learning_rate"] = opt.learning_rate();
  const auto current = monitored(logs, o_.monitor, "Learning rate reduction");
  if (!current) return;
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  const bool better = maximize_ ? *current > best_ + o_.min_delta : *current < best_ - o_.min_delta;
  if (better) {
    best_ = *current;
    wait_ = 0;
  } else if (cooldown_counter_ == 0) {
    if (++wait_ >= o_.patience) {
      const double old_lr = opt.learning_rate();
      if (old_lr > o_.min_lr) {
        const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
        opt.set_learning_rate(static_cast<float>(new_lr));
        if (o_.verbose > 0)
          std::cout << fmt::format("\nEpoch {}: ReduceLROnPlateau reducing learning rate to {}.", epoch + 1, new_lr)
                    << std::endl;
        cooldown_counter_ = o_.cooldown;
        wait_ = 0;
      }
    }
  }
}

LearningRateScheduler::LearningRateScheduler(std::function<double(int, double)> schedule, int verbose)
    : schedule_(std::move(schedule)), verbose_(verbose) {
  KCPP_CHECK(schedule_, ValueError, "LearningRateScheduler: the schedule function is empty");
}
void LearningRateScheduler::on_epoch_begin(int epoch, Logs&) {
  auto& opt = *model().optimizer();
  const double lr = schedule_(epoch, opt.learning_rate());
  KCPP_CHECK(std::isfinite(lr), ValueError, "The output of the schedule function should be a float. Got: {}", lr);
  opt.set_learning_rate(static_cast<float>(lr));
  if (verbose_ > 0)
    std::cout << fmt::format("\nEpoch {}: LearningRateScheduler setting learning rate to {}.", epoch + 1, lr)
              << std::endl;
}
void LearningRateScheduler::on_epoch_end(int, Logs& logs) {
  logs["learning_rate"] = model().optimizer()->learning_rate();
}

void TerminateOnNaN::on_train_batch_end(int batch, Logs& logs) {
  auto it = logs.find("loss");
  if (it != logs.end() && !std::isfinite(it->second)) {
    std::cout << "Batch " << batch << ": Invalid loss, terminating training" << std::endl;
    model().stop_training = true;
  }
}

CSVLogger::CSVLogger(std::string filename, char separator, bool append)
    : filename_(std::move(filename)), separator_(separator), append_(append) {}

void CSVLogger::on_train_begin(Logs&) {
  if (!model().is_chief()) return;  // data parallel: one replica writes
  const bool has_header = append_ && std::ifstream(filename_).peek() != std::ifstream::traits_type::eof();
  file_.reset(std::fopen(filename_.c_str(), append_ ? "a" : "w"), std::fclose);
  KCPP_CHECK(file_, IOError, "CSVLogger: cannot open {}", filename_);
  keys_.clear();
  if (has_header) keys_.push_back("");  // the header is already there
}

void CSVLogger::on_epoch_end(int epoch, Logs& logs) {
  if (!file_) return;
  if (keys_.empty() || (keys_.size() == 1 && keys_[0].empty())) {
    const bool write_header = keys_.empty();
    keys_.clear();
    for (const auto& [k, v] : logs) keys_.push_back(k);
    if (write_header) {
      std::string header = "epoch";
      for (const auto& k : keys_) header += fmt::format("{}{}", separator_, k);
      std::fprintf(file_.get(), "%s\n", header.c_str());
    }
  }
  std::string line = std::to_string(epoch);
  for (const auto& k : keys_) {
    auto it = logs.find(k);
    line += fmt::format("{}{}", separator_, it == logs.end() ? std::string("NA") : fmt::format("{}", it->second));
  }
  std::fprintf(file_.get(), "%s\n", line.c_str());
  std::fflush(file_.get());
}

void CSVLogger::on_train_end(Logs&) { file_.reset(); }

ModelCheckpoint::ModelCheckpoint(std::string filepath, ModelCheckpointOptions o)
    : filepath_(std::move(filepath)), o_(std::move(o)), maximize_(maximizes(o_.mode, o_.monitor)) {}

void ModelCheckpoint::on_train_begin(Logs&) { best_ = maximize_ ? -INFINITY : INFINITY; }

void ModelCheckpoint::on_epoch_end(int epoch, Logs& logs) {
  if (!model().is_chief()) return;  // data parallel: replicas are identical, one writes
  std::string path = filepath_;
  for (size_t at; (at = path.find("{epoch}")) != std::string::npos;) path.replace(at, 7, std::to_string(epoch + 1));
  if (o_.save_best_only) {
    const auto current = monitored(logs, o_.monitor, "Can save best model only with");
    if (!current) return;
    if (!(maximize_ ? *current > best_ : *current < best_)) {
      if (o_.verbose > 0)
        std::cout << fmt::format("\nEpoch {}: {} did not improve from {:.5f}", epoch + 1, o_.monitor, best_)
                  << std::endl;
      return;
    }
    if (o_.verbose > 0)
      std::cout << fmt::format("\nEpoch {}: {} improved from {:.5f} to {:.5f}, saving model to {}", epoch + 1,
                               o_.monitor, best_, *current, path)
                << std::endl;
    best_ = *current;
  } else if (o_.verbose > 0) {
    std::cout << fmt::format("\nEpoch {}: saving model to {}", epoch + 1, path) << std::endl;
  }
  using saving::ends_with;
  const bool whole_model =
      !o_.save_weights_only && !ends_with(path, ".weights.h5") && (ends_with(path, ".keras") || ends_with(path, ".h5"));
  if (whole_model)
    model().save(path);
  else
    model().save_weights(path);
}

void History::on_epoch_end(int epoch_index, Logs& logs) {
  epoch.push_back(epoch_index);
  for (const auto& [k, v] : logs) history[k].push_back(v);
}

// BackupAndRestore -----------------------------------------------------------------------------------
// backup_dir/training_metadata.json names the weights file of the last finished epoch and holds
// the epoch and the random streams; it is written last, so it is the commit point of a backup.

BackupAndRestore::BackupAndRestore(std::string backup_dir, BackupAndRestoreOptions options)
    : dir_(std::move(backup_dir)), o_(options) {
  KCPP_CHECK(!dir_.empty(), ValueError, "BackupAndRestore: expected a backup directory, received an empty path");
}

namespace {
std::filesystem::path metadata_path(const std::string& dir) {
  return std::filesystem::path(dir) / "training_metadata.json";
}
// The committed backup's metadata, or null when there is none; throws IOError when it is not JSON.
Config read_metadata(const std::string& dir) {
  const auto path = metadata_path(dir);
  if (!std::filesystem::exists(path)) return nullptr;
  std::ifstream in(path);
  try {
    return Config::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw IOError(fmt::format("BackupAndRestore: {} is not valid JSON: {}", path.string(), e.what()));
  }
}
// The weights file a metadata names, when it is a plain name inside the backup folder.
std::string weights_named(const Config& meta) {
  if (!meta.is_object() || !meta.contains("weights") || !meta["weights"].is_string()) return "";
  const std::string name = meta["weights"].get<std::string>();
  return name.find('/') == std::string::npos ? name : "";
}
}  // namespace

void BackupAndRestore::on_train_begin(Logs&) {
  const Config meta = read_metadata(dir_);
  if (meta.is_null()) return;
  serialization::ConfigReader r(meta, "BackupAndRestore metadata " + metadata_path(dir_).string());
  const int64_t epoch = r.integer("epoch");
  const std::string weights = (std::filesystem::path(dir_) / r.string("weights")).string();
  KCPP_CHECK(r.string("weights").find('/') == std::string::npos, IOError,
             "BackupAndRestore: the metadata names a weights file outside {}", dir_);
  model().load_weights(weights);
  const auto generators = model().seed_generators();
  const auto states = r.raw("seed_generators");
  KCPP_CHECK(states.is_array() && states.size() == generators.size(), ValueError,
             "BackupAndRestore: the backup holds {} random streams, the model has {}", states.size(),
             generators.size());
  for (size_t i = 0; i < generators.size(); ++i) generators[i]->set_state(states[i].get<uint64_t>());
  random::set_global_state(r.raw("global_seed").get<uint64_t>());
  r.finish();
  model().resume_epoch = static_cast<int>(epoch + 1);
  detail::log_info(fmt::format("BackupAndRestore: resuming from the backup of epoch {} in {}", epoch + 1, dir_));
}

void BackupAndRestore::on_epoch_end(int epoch, Logs&) {
  if (!model().is_chief()) return;  // data parallel: replicas are identical, one writes
  std::filesystem::create_directories(dir_);
  const std::string weights_name = fmt::format("epoch_{}.weights.h5", epoch + 1);
  model().save_weights((std::filesystem::path(dir_) / weights_name).string());
  Config states = Config::array();
  for (random::SeedGenerator* g : model().seed_generators()) states.push_back(g->state());
  const Config meta{{"epoch", epoch},
                    {"weights", weights_name},
                    {"seed_generators", states},
                    {"global_seed", random::global_state()}};
  // The metadata commits the backup; the previous epoch's weights go only after it.
  const std::string previous = weights_named(read_metadata(dir_));
  saving::write_file_atomically(metadata_path(dir_).string(), meta.dump());
  if (!previous.empty() && previous != weights_name) std::filesystem::remove(std::filesystem::path(dir_) / previous);
}

void BackupAndRestore::on_train_end(Logs&) {
  if (!o_.delete_checkpoint || !model().is_chief()) return;
  std::error_code ec;
  const std::string weights = weights_named(read_metadata(dir_));
  if (!weights.empty()) std::filesystem::remove(std::filesystem::path(dir_) / weights, ec);
  std::filesystem::remove(metadata_path(dir_), ec);
  std::filesystem::remove(dir_, ec);  // only when empty
}

}  // namespace keras::callbacks
