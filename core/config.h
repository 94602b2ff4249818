#pragma once
#include <string>
#include <vector>

#include "export.h"

namespace keras {

/// Settings read from the environment. This is the only place kerascpp reads environment
/// variables; everything else asks here.
struct KERASCPP_API Settings {
  /// KERASCPP_BACKEND: "cpu", "cuda", "auto" (default) or a path to a plugin library.
  std::string backend = "auto";
  /// KERASCPP_BACKEND_PATH: extra plugin folders, ':'-separated, searched first.
  std::vector<std::string> backend_path;
  /// KERASCPP_LOG_LEVEL: trace, debug, info (default), warn, error, critical, off.
  std::string log_level = "info";
  /// KERAS_HOME, else ~/.keras: where Keras keeps downloaded weights and data sets.
  std::string keras_home;
  /// KERASCPP_DATASETS_DIR: where data sets are looked for (Debian's packages use /usr/share/datasets).
  std::string datasets_dir = "/usr/share/datasets";
  /// KERASCPP_TF32: "0" starts with TensorFloat-32 off.
  bool tf32 = true;
  /// KERASCPP_CONV_WINOGRAD: "0" keeps inference convolutions on the CPU on the direct kernels
  /// (Winograd is faster for 3x3 filters, with float32 rounding errors a few times larger).
  bool conv_winograd = true;
  /// KERASCPP_NATIVE_LOW_PRECISION, read by backends when they are created: which float16/bfloat16
  /// kernels they use; the other ops run on float32 copies rounded back.
  enum class LowPrecisionKernels {
    none,  // "0": every op on float32 copies (to compare, or to rule a kernel out)
    fast,  // "auto" (default): the kernels faster than the copies on this hardware
    all,   // "all": every kernel the hardware can run, even slowly (to test them)
  };
  LowPrecisionKernels native_low_precision = LowPrecisionKernels::fast;
  /// KERASCPP_CUDA_GRAPHS: whether repeated model steps replay recorded device graphs
  /// (models/step_graphs.h).
  enum class StepRecording {
    off,     // "0": every step runs op by op
    on,      // "1": every step that can be recorded is
    measure, // "auto" (default): a recorded step is kept where its replay was faster than op by op
  };
  StepRecording cuda_graphs = StepRecording::measure;
  /// KERASCPP_CUDNN_RNN_ALGO: cuDNN's RNN algorithm (standard, static, dynamic, small_h); empty: standard.
  std::string cudnn_rnn_algo;
  /// KERASCPP_CUDNN_RNN_LAYOUT: "seq_major" sends sequences to cuDNN time-major and packed.
  std::string cudnn_rnn_layout;

  // Multi-process training (distributed/): set by mpirun (OMPI_COMM_WORLD_*) or, as torchrun
  // does, by the launcher (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
  /// This process' rank and the number of processes; 0 and 1 outside a launcher.
  int rank = 0;
  int world_size = 1;
  /// The rank among the processes of this node: which GPU this process uses.
  int local_rank = 0;
  /// True when launched by mpirun (OpenMPI sets OMPI_COMM_WORLD_SIZE).
  bool launched_by_mpi = false;
  /// MASTER_ADDR and MASTER_PORT: where rank 0 listens for the others (the rendezvous without MPI).
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  /// KERASCPP_DISTRIBUTED_TIMEOUT: seconds a collective waits for the other ranks before it fails.
  double distributed_timeout_s = 300;
  /// KERASCPP_CUDA_DEVICE: the GPU this process uses; local_rank when unset.
  int cuda_device = 0;
  /// Variables that were set but could not be read (their defaults are used); logged by their users.
  std::vector<std::string> warnings;
};

/// TensorFloat-32 for float32 matrix products and convolutions on GPUs that have it (default on,
/// as in TensorFlow; KERASCPP_TF32=0 turns it off at start-up).
KERASCPP_API void enable_tensor_float_32_execution(bool enabled);
KERASCPP_API bool tensor_float_32_execution_enabled();

/// The configuration, read from the environment on first use.
KERASCPP_API const Settings& settings();
/// Reads the environment again (tests, or a program that changes its own environment).
KERASCPP_API void reload_settings();

}  // namespace keras
