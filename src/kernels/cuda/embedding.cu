// out[T, H] = table[tokens[t], :]. One block per token; an id outside [0, vocab) writes
// zeros instead of reading out of bounds (the backend validates ids on the host when it can).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {
namespace {

template <typename D, typename S>
__global__ void embedding_kernel(D* __restrict__ out, const S* __restrict__ table,
                                 const int32_t* __restrict__ tokens, int H, int64_t vocab) {
  const int64_t t = blockIdx.x;
  const int64_t id = tokens[t];
  const bool ok = id >= 0 && id < vocab;
  const S* src = table + (ok ? id : 0) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x)
    out[t * H + i] = from_f32<D>(ok ? to_f32<S>(src[i]) : 0.0f);
}

// bf16 -> bf16 with 16-byte vectors.
__global__ void embedding_bf16_vec_kernel(uint4* __restrict__ out, const uint4* __restrict__ table,
                                          const int32_t* __restrict__ tokens, int nvec, int64_t vocab) {
  const int64_t t = blockIdx.x;
  const int64_t id = tokens[t];
  const bool ok = id >= 0 && id < vocab;
  for (int i = threadIdx.x; i < nvec; i += blockDim.x)
    out[t * nvec + i] = ok ? table[id * nvec + i] : make_uint4(0, 0, 0, 0);
}

template <typename D, typename S>
void launch(void* out, const void* table, const int32_t* tokens, int T, int H, int64_t vocab,
            cudaStream_t stream) {
  embedding_kernel<D, S><<<T, 256, 0, stream>>>(static_cast<D*>(out), static_cast<const S*>(table),
                                                tokens, H, vocab);
  CUDA_CHECK_LAUNCH("embedding");
}

template <typename D>
void dispatch_table(void* out, const void* table, DType td, const int32_t* tokens, int T, int H,
                    int64_t vocab, cudaStream_t stream) {
  switch (td) {
    case DType::F32: return launch<D, float>(out, table, tokens, T, H, vocab, stream);
    case DType::BF16: return launch<D, __nv_bfloat16>(out, table, tokens, T, H, vocab, stream);
    case DType::F16: return launch<D, __half>(out, table, tokens, T, H, vocab, stream);
    default: TLLM_THROW("cuda embedding: table dtype ", dtype_name(td), " unsupported (f32, bf16, f16)");
  }
}

}  // namespace

void embedding(void* out, DType od, const void* table, DType td, const int32_t* tokens, int T, int H,
               int64_t vocab, cudaStream_t stream) {
  if (T == 0) return;
  if (od == DType::BF16 && td == DType::BF16 && H % 8 == 0 &&
      (reinterpret_cast<uintptr_t>(out) | reinterpret_cast<uintptr_t>(table)) % 16 == 0) {
    const int nvec = H / 8;
    embedding_bf16_vec_kernel<<<T, std::min(512, (nvec + 31) / 32 * 32), 0, stream>>>(
        static_cast<uint4*>(out), static_cast<const uint4*>(table), tokens, nvec, vocab);
    CUDA_CHECK_LAUNCH("embedding");
    return;
  }
  switch (od) {
    case DType::F32: return dispatch_table<float>(out, table, td, tokens, T, H, vocab, stream);
    case DType::BF16: return dispatch_table<__nv_bfloat16>(out, table, td, tokens, T, H, vocab, stream);
    default: TLLM_THROW("cuda embedding: output dtype ", dtype_name(od), " unsupported (f32, bf16)");
  }
}

}  // namespace tllm::cuda
