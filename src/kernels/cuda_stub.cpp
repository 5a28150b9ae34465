// make_cuda_backend when tinyllm is built without CUDA (no nvcc at build time).
#ifndef TLLM_HAVE_CUDA
#include "kernels/backend.h"

namespace tllm {
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions&) {
  TLLM_THROW("this tinyllm was built without CUDA (nvcc was not found at build time); "
             "use --device cpu or rebuild on a machine with the CUDA toolkit");
}
bool cuda_available() { return false; }
}  // namespace tllm
#endif
