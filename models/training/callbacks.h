#pragma once
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../../core/export.h"
#include "../../core/tensor.h"

namespace keras {
class Model;

namespace callbacks {

/// What fit() reports: "loss", metrics, "val_" ones, and "learning_rate" where a callback adds it.
using Logs = std::map<std::string, double>;

/// Hooks into fit(), as keras.callbacks.Callback. `model()` is the model being trained.
class KERASCPP_API Callback {
 public:
  virtual ~Callback();
  virtual void on_train_begin(Logs& logs) {}
  virtual void on_train_end(Logs& logs) {}
  virtual void on_epoch_begin(int epoch, Logs& logs) {}
  virtual void on_epoch_end(int epoch, Logs& logs) {}
  virtual void on_train_batch_begin(int batch, Logs& logs) {}
  virtual void on_train_batch_end(int batch, Logs& logs) {}
  /// Batch hooks read the running logs, which on a GPU means waiting for the device: callbacks
  /// that do not need them say so and fit() skips the read.
  virtual bool needs_batch_logs() const { return false; }
  void set_model(Model* model) { model_ = model; }
  Model& model() const;

 private:
  Model* model_ = nullptr;
};

/// A callback by value (`callbacks::EarlyStopping({.patience = 2})`) or shared.
class KERASCPP_API CallbackRef {
 public:
  template <typename C,
            typename = std::enable_if_t<std::is_base_of_v<Callback, std::decay_t<C>> && !std::is_lvalue_reference_v<C>>>
  CallbackRef(C&& c) : ptr_(std::make_shared<std::decay_t<C>>(std::move(c))) {}  // NOLINT
  template <typename C, typename = std::enable_if_t<std::is_base_of_v<Callback, C>>>
  CallbackRef(std::shared_ptr<C> c) : ptr_(std::move(c)) {}  // NOLINT
  const std::shared_ptr<Callback>& get() const { return ptr_; }

 private:
  std::shared_ptr<Callback> ptr_;
};

/// Records every epoch's logs (loss, metrics, val_ ones), as keras.callbacks.History; fit() adds one
/// as its last callback and returns it.
class KERASCPP_API History : public Callback {
 public:
  void on_train_begin(Logs& logs) override { epoch.clear(); }
  void on_epoch_end(int epoch_index, Logs& logs) override;
  std::map<std::string, std::vector<double>> history;
  std::vector<int> epoch;
};

struct BackupAndRestoreOptions {
  bool delete_checkpoint = true;  // remove the backup once fit() ends normally
};
/// Keras' BackupAndRestore: after each epoch, saves the weights, the optimizer state, the epoch and
/// the random streams (dropout masks, shuffling) under `backup_dir`; a fit() that finds a backup
/// restores it and continues from the next epoch, so an interrupted run resumed with the same seed
/// ends with the same weights as an uninterrupted one. Each backup is committed atomically by its
/// metadata file; a crash mid-save leaves the previous backup usable.
class KERASCPP_API BackupAndRestore : public Callback {
 public:
  explicit BackupAndRestore(std::string backup_dir, BackupAndRestoreOptions options = {});
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;

 private:
  std::string dir_;
  BackupAndRestoreOptions o_;
};

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0;
  int patience = 0;
  int verbose = 0;
  std::string mode = "auto";  // "min", "max", or "auto" (max for accuracy-like names)
  std::optional<double> baseline;
  bool restore_best_weights = false;
  int start_from_epoch = 0;
};
/// Stops training when the monitored value stops improving (Keras' defaults and rules).
class KERASCPP_API EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;
  /// The epoch (0-based) at which training stopped, 0 when it ran to the end.
  int stopped_epoch() const { return stopped_epoch_; }
  int best_epoch() const { return best_epoch_; }

 private:
  bool improved(double current, double reference) const;
  EarlyStoppingOptions o_;
  bool maximize_ = false;
  int wait_ = 0, stopped_epoch_ = 0, best_epoch_ = 0;
  double best_ = 0;
  std::optional<std::vector<Tensor>> best_weights_;
};

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int patience = 10;
  int verbose = 0;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int cooldown = 0;
  double min_lr = 0;
};
/// Multiplies the learning rate by `factor` after `patience` epochs without improvement.
class KERASCPP_API ReduceLROnPlateau : public Callback {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {});
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;

 private:
  ReduceLROnPlateauOptions o_;
  bool maximize_ = false;
  int wait_ = 0, cooldown_counter_ = 0;
  double best_ = 0;
};

/// Sets the learning rate at each epoch's start to schedule(epoch, current learning rate).
class KERASCPP_API LearningRateScheduler : public Callback {
 public:
  explicit LearningRateScheduler(std::function<double(int epoch, double lr)> schedule, int verbose = 0);
  void on_epoch_begin(int epoch, Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;

 private:
  std::function<double(int, double)> schedule_;
  int verbose_;
};

/// Stops training when a batch's loss is NaN or infinite.
class KERASCPP_API TerminateOnNaN : public Callback {
 public:
  void on_train_batch_end(int batch, Logs& logs) override;
  bool needs_batch_logs() const override { return true; }
};

/// Streams each epoch's logs to a CSV file: a header `epoch,<keys sorted>`, then one row per epoch.
class KERASCPP_API CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string filename, char separator = ',', bool append = false);
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;

 private:
  std::string filename_;
  char separator_;
  bool append_;
  std::vector<std::string> keys_;
  std::shared_ptr<std::FILE> file_;
};

/// Callbacks made of functions, as keras.callbacks.LambdaCallback.
struct LambdaCallbackOptions {
  std::function<void(int, Logs&)> on_epoch_begin, on_epoch_end, on_train_batch_begin, on_train_batch_end;
  std::function<void(Logs&)> on_train_begin, on_train_end;
};
class KERASCPP_API LambdaCallback : public Callback {
 public:
  explicit LambdaCallback(LambdaCallbackOptions functions) : f_(std::move(functions)) {}
  void on_train_begin(Logs& logs) override {
    if (f_.on_train_begin) f_.on_train_begin(logs);
  }
  void on_train_end(Logs& logs) override {
    if (f_.on_train_end) f_.on_train_end(logs);
  }
  void on_epoch_begin(int e, Logs& logs) override {
    if (f_.on_epoch_begin) f_.on_epoch_begin(e, logs);
  }
  void on_epoch_end(int e, Logs& logs) override {
    if (f_.on_epoch_end) f_.on_epoch_end(e, logs);
  }
  void on_train_batch_begin(int b, Logs& logs) override {
    if (f_.on_train_batch_begin) f_.on_train_batch_begin(b, logs);
  }
  void on_train_batch_end(int b, Logs& logs) override {
    if (f_.on_train_batch_end) f_.on_train_batch_end(b, logs);
  }
  bool needs_batch_logs() const override { return static_cast<bool>(f_.on_train_batch_end); }

 private:
  LambdaCallbackOptions f_;
};

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  int verbose = 0;
  bool save_best_only = false;
  bool save_weights_only = false;
  std::string mode = "auto";
};
/// Saves the model after each epoch (or only when the monitored value improves): ".keras" and ".h5"
/// paths get the whole model (Model::save, as Keras), others (".weights.h5", or kerascpp's own
/// weights file) and save_weights_only get the weights. Every save is written to a temporary file
/// and renamed, so an interrupted save leaves the previous file intact. `{epoch}` in the path becomes
/// the epoch number (from 1).
class KERASCPP_API ModelCheckpoint : public Callback {
 public:
  explicit ModelCheckpoint(std::string filepath, ModelCheckpointOptions options = {});
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;

 private:
  std::string filepath_;
  ModelCheckpointOptions o_;
  bool maximize_ = false;
  double best_ = 0;
};

}  // namespace callbacks
}  // namespace keras
