// Small host-to-device copies carried in a kernel launch's parameters. A step's metadata
// (112 bytes for one sequence) and its sampling parameters are tiny; copied with
// cudaMemcpyAsync from pinned memory each costs the copy engine's turn in the stream,
// ~2-4 us between the previous and the next kernel on an H200 (run 102's timeline: the
// chain between two decode graphs was 36 us, eight stream operations). A launch carries
// up to 4 KB of parameters with it, so the copy becomes one small kernel writing them.
#include <algorithm>
#include <cstring>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {
namespace {

constexpr uint32_t kChunkBytes = 4000;  // with dst and n, under the 4 KB parameter limit

struct InlineChunk {
  uint8_t* dst;
  uint32_t n;
  uint32_t release_early;  // trigger the dependent launch at entry (upload_inline)
  alignas(16) uint8_t data[kChunkBytes];
};

// Launched with PDL: its launch overlaps the previous kernel (between two decode steps that
// is the draw), and it writes only once that kernel has completed. With release_early 0 the
// next kernel starts only when this one has completed (its bytes visible to everything the
// next kernel reads, before its own griddepcontrol.wait too).
__global__ void inline_upload_kernel(const __grid_constant__ InlineChunk p) {
  if (p.release_early) pdl_launch_dependents();
  pdl_wait();
  for (uint32_t i = threadIdx.x; i < p.n; i += blockDim.x) p.dst[i] = p.data[i];
}

}  // namespace

void upload_inline(void* dst, const void* src, size_t bytes, cudaStream_t stream, bool release_early) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  for (size_t off = 0; off < bytes; off += kChunkBytes) {
    InlineChunk p;
    p.dst = d + off;
    p.n = static_cast<uint32_t>(std::min<size_t>(kChunkBytes, bytes - off));
    p.release_early = release_early ? 1 : 0;
    std::memcpy(p.data, s + off, p.n);
    launch_pdl(inline_upload_kernel, dim3(1), dim3(256), 0, stream, p);
    CUDA_CHECK_LAUNCH("upload_inline");
  }
}

}  // namespace tllm::cuda
