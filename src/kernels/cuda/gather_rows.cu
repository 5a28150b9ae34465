// out[i, :] = x[indices[i], :] for rows of any element type (copied as bytes).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {
namespace {

// An index outside [0, x_rows) yields a zero row rather than an out-of-bounds read.
template <typename V>
__global__ void gather_rows_kernel(V* __restrict__ out, const V* __restrict__ x,
                                   const int32_t* __restrict__ indices, int64_t x_rows, int64_t nv) {
  pdl_wait();  // launched with PDL
  pdl_launch_dependents();
  const int64_t i = blockIdx.x;
  const int64_t r = indices[i];
  const bool ok = r >= 0 && r < x_rows;
  for (int64_t j = threadIdx.x; j < nv; j += blockDim.x) {
    V v{};
    if (ok) v = x[r * nv + j];
    out[i * nv + j] = v;
  }
}

}  // namespace

void gather_rows(void* out, const void* x, const int32_t* indices, int n, int64_t x_rows,
                 int64_t row_bytes, cudaStream_t stream) {
  if (n == 0 || row_bytes == 0) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(out) | reinterpret_cast<uintptr_t>(x);
  if (row_bytes % 16 == 0 && a % 16 == 0) {
    const int64_t nv = row_bytes / 16;
    launch_pdl(gather_rows_kernel<uint4>, dim3(n), dim3(static_cast<int>(std::min<int64_t>(256, (nv + 31) / 32 * 32))),
               0, stream, static_cast<uint4*>(out), static_cast<const uint4*>(x), indices, x_rows, nv);
  } else if (row_bytes % 4 == 0 && a % 4 == 0) {
    launch_pdl(gather_rows_kernel<uint32_t>, dim3(n), dim3(256), 0, stream, static_cast<uint32_t*>(out),
               static_cast<const uint32_t*>(x), indices, x_rows, row_bytes / 4);
  } else {
    launch_pdl(gather_rows_kernel<uint8_t>, dim3(n), dim3(256), 0, stream, static_cast<uint8_t*>(out),
               static_cast<const uint8_t*>(x), indices, x_rows, row_bytes);
  }
  CUDA_CHECK_LAUNCH("gather_rows");
}

}  // namespace tllm::cuda
