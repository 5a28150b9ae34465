// Element-type conversion between f32 / bf16 / f16 (upload, download, copies).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {
namespace {

template <typename D, typename S>
__global__ void convert_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = from_f32<D>(to_f32<S>(src[i]));
}

template <typename D, typename S>
void launch(void* dst, const void* src, int64_t n, cudaStream_t stream) {
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 132 * 16));
  convert_kernel<D, S><<<blocks, threads, 0, stream>>>(static_cast<D*>(dst),
                                                       static_cast<const S*>(src), n);
  CUDA_CHECK_LAUNCH("convert");
}

template <typename S>
void dispatch_dst(void* dst, DType dd, const void* src, int64_t n, cudaStream_t stream) {
  switch (dd) {
    case DType::F32: return launch<float, S>(dst, src, n, stream);
    case DType::BF16: return launch<__nv_bfloat16, S>(dst, src, n, stream);
    case DType::F16: return launch<__half, S>(dst, src, n, stream);
    default: TLLM_THROW("cuda convert: unsupported destination dtype ", dtype_name(dd),
                        " (supported: f32, bf16, f16)");
  }
}

}  // namespace

void convert(void* dst, DType dd, const void* src, DType sd, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (dd == sd) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, dtype_nbytes(dd, n), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  switch (sd) {
    case DType::F32: return dispatch_dst<float>(dst, dd, src, n, stream);
    case DType::BF16: return dispatch_dst<__nv_bfloat16>(dst, dd, src, n, stream);
    case DType::F16: return dispatch_dst<__half>(dst, dd, src, n, stream);
    default: TLLM_THROW("cuda convert: unsupported source dtype ", dtype_name(sd),
                        " (supported: f32, bf16, f16)");
  }
}

}  // namespace tllm::cuda
