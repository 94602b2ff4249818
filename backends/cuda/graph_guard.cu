// The kernel that opens or closes a recorded step's guarded section (CudaBackend::
// begin_guarded_by_checks): a module of its own, since cudaGraphSetConditional is resolved by
// the driver when the module loads, and a driver without it should fail this launch only.
#include <cuda_runtime.h>

#include "backends/cuda/kernels.h"

namespace keras::cuda::kernels {

namespace {
__global__ void set_conditional_if_passed_kernel(const int* any_failed, cudaGraphConditionalHandle handle) {
  cudaGraphSetConditional(handle, *any_failed == 0 ? 1u : 0u);
}
}  // namespace

void set_conditional_if_passed(const int* any_failed, unsigned long long handle, cudaStream_t stream) {
  set_conditional_if_passed_kernel<<<1, 1, 0, stream>>>(any_failed, static_cast<cudaGraphConditionalHandle>(handle));
}

}  // namespace keras::cuda::kernels
