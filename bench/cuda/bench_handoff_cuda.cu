// bench_handoff_cuda: what one kernel-to-kernel hand-off costs inside a decode graph, by
// mechanism, with a GEMV's data flow and no weights. The question (session 36,
// docs/cuda-notes.md): a 7B int4 decode layer spends ~28 us beyond its bytes in five kernels,
// a 0.5B layer in the persistent stack kernel ~16 us in five grid barriers. How much of each
// boundary is the hand-off itself, and is the hardware's grid-completion path
// (griddepcontrol.wait) slower than a counter the producer's blocks bump?
//
// A chain of N hops. Hop i: G blocks of 256 threads; every block reads the whole vector
// v_i (n floats, through L2), sums it (block reduction), and writes its 1/G slice of
// v_{i+1}[j] = 0.5 v_i[j] + 1e-6 sum. Mechanisms:
//   stream      plain stream order (no PDL attribute)
//   pdl         PDL attribute; launch_dependents at entry; griddepcontrol.wait before the read
//   pdl-late    same, launch_dependents after the wait
//   flag        PDL attribute; launch_dependents at entry; no griddepcontrol.wait: thread 0
//               polls hop i-1's counter (ld.acquire.gpu) until all its G blocks have bumped
//               it (red.release.gpu after their writes)
//   flag-late   same, launch_dependents after the poll (at most one hop resident ahead)
//   persistent  one kernel of G blocks (G <= resident blocks), the hops separated by a grid
//               barrier (the decoder stack kernel's arrive / wait)
// Each graph: a memset of the counters, then the N hops; timed by events over replays.
// Printed: us per hop, and the largest difference of the final vector against `stream`.
// Answer (H200, runs 216-218, n = 896 / 3,584 floats, us per hop at G = 132 blocks): pdl
// 1.24 / 1.65, persistent 1.58 / 1.81, stream 1.55 / 1.96, flag-late 1.64 / 2.03, flag 2.49
// / 2.85, persist-fence 1.79, persist-go 2.11, flags-4B 2.81, flags-32B 2.90 (n = 896). So
// the hardware's hand-off (griddepcontrol.wait on a grid that completed) is the cheapest
// one, ~0.35 us below the decoder stack kernel's counter barrier, and every software form
// tried is slower than that barrier; a counter the producer's blocks bump, polled by
// already-resident consumers, loses to griddepcontrol.wait at every G. Per hop of a decode
// phase, ~1.2-1.6 us go to the hand-off and the input vector's L2 read before any weight.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "kernels/cuda/cuda_common.cuh"

namespace {

using tllm::cuda::pdl_launch_dependents;
using tllm::cuda::pdl_wait;

constexpr int kThreads = 256;
constexpr int kHops = 256;

enum Mode { kStream, kPdl, kPdlLate, kFlag, kFlagLate, kPersistent, kPersistentGo, kPersistentFenced, kFlags4, kFlags32 };
const char* mode_name(int m) {
  static const char* names[] = {"stream", "pdl", "pdl-late", "flag", "flag-late", "persistent", "persist-go", "persist-fence", "flags-4B", "flags-32B"};
  return names[m];
}

__device__ __forceinline__ void poll_at_least(const unsigned* c, unsigned target) {
  if (threadIdx.x == 0) {
    unsigned v;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(c) : "memory");
    } while (v < target);
  }
  __syncthreads();
}
__device__ __forceinline__ void bump(unsigned* c) {
  __syncthreads();
  if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(c) : "memory");
}

// One hop's work: sum of in[0, n) (L2 loads, fixed order), then this block's slice of out.
__device__ __forceinline__ void hop_work(const float* in, float* out, int n, int block, int blocks) {
  __shared__ float red[kThreads / 32];
  float s = 0.0f;
  for (int j = threadIdx.x * 4; j < n; j += kThreads * 4) {
    const float4 v = __ldcg(reinterpret_cast<const float4*>(in + j));
    s += (v.x + v.y) + (v.z + v.w);
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
  __syncthreads();
  float sum = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) sum += red[w];
  const int per = (n + blocks - 1) / blocks;
  const int j0 = block * per, j1 = min(n, j0 + per);
  for (int j = j0 + threadIdx.x; j < j1; j += kThreads) out[j] = 0.5f * __ldcg(in + j) + 1e-6f * sum;
  __syncthreads();  // red is reused by the next hop (persistent mode)
}

template <int M>
__global__ void __launch_bounds__(kThreads) hop_kernel(const float* in, float* out, int n, const unsigned* wait_on,
                                                       unsigned* done, int first) {
  if constexpr (M == kPdl || M == kFlag) pdl_launch_dependents();
  if constexpr (M == kPdl || M == kPdlLate) pdl_wait();
  if constexpr (M == kFlag || M == kFlagLate) {
    if (!first) poll_at_least(wait_on, gridDim.x);
  }
  if constexpr (M == kPdlLate || M == kFlagLate) pdl_launch_dependents();
  hop_work(in, out, n, blockIdx.x, gridDim.x);
  if constexpr (M == kFlag || M == kFlagLate) bump(done);
}

// All hops in one launch; vectors at v + i * stride. Barrier forms:
//   kPersistent       the decoder stack kernel's: red.release of a counter, thread 0 polls it
//                     with ld.acquire (132 atomics and 132 pollers on one line)
//   kPersistentGo     the last arriver (atom.acq_rel returns the count) bumps a separate
//                     "go" word, 128 bytes away, that the others poll: the pollers do not
//                     share the line the atomics go to
//   kPersistentFenced fence.acq_rel + relaxed red; relaxed polls (ld.relaxed), one fence after
//   kFlags4 / kFlags32  no counter: block b stores the hop number into its own word (st.release
//                     after bar.sync), 4 or 32 bytes apart; warp 0 of every block polls all G
//                     words (ld.acquire, each lane a few) until each holds the hop number
template <int M>
__global__ void __launch_bounds__(kThreads) persistent_kernel(float* v, int64_t stride, int n, int hops,
                                                              unsigned* counter) {
  unsigned target = 0;
  unsigned* go = counter + 32;
  for (int i = 0; i < hops; ++i) {
    if (i > 0) {
      if constexpr (M == kPersistent) {
        target += gridDim.x;
        poll_at_least(counter, target);
      } else if constexpr (M == kPersistentGo) {
        poll_at_least(go, static_cast<unsigned>(i));
      } else if constexpr (M == kFlags4 || M == kFlags32) {
        constexpr int kStride = M == kFlags4 ? 1 : 8;
        if (threadIdx.x < 32) {
          for (int b = threadIdx.x; b < gridDim.x; b += 32) {
            unsigned c;
            do {
              asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(c) : "l"(counter + 64 + b * kStride) : "memory");
            } while (c < static_cast<unsigned>(i));
          }
          __syncwarp();
        }
        __syncthreads();
      } else {
        target += gridDim.x;
        if (threadIdx.x == 0) {
          unsigned c;
          do {
            asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(c) : "l"(counter) : "memory");
          } while (c < target);
          asm volatile("fence.acq_rel.gpu;" ::: "memory");
        }
        __syncthreads();
      }
    }
    hop_work(v + i * stride, v + (i + 1) * stride, n, blockIdx.x, gridDim.x);
    if constexpr (M == kPersistent) {
      bump(counter);
    } else if constexpr (M == kFlags4 || M == kFlags32) {
      constexpr int kStride = M == kFlags4 ? 1 : 8;
      __syncthreads();
      if (threadIdx.x == 0)
        asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(counter + 64 + blockIdx.x * kStride), "r"(i + 1)
                     : "memory");
    } else if constexpr (M == kPersistentGo) {
      __syncthreads();
      if (threadIdx.x == 0) {
        unsigned before;
        asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(before) : "l"(counter) : "memory");
        if (before == (i + 1) * gridDim.x - 1)
          asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(go) : "memory");
      }
    } else {
      __syncthreads();
      if (threadIdx.x == 0) {
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
        asm volatile("red.relaxed.gpu.global.add.u32 [%0], 1;" ::"l"(counter) : "memory");
      }
    }
  }
}

template <typename K, typename... Args>
void launch(K kernel, bool pdl, int grid, cudaStream_t s, Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(kThreads);
  cfg.stream = s;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = pdl ? 1 : 0;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, args...));
}

template <int M>
void add_hops(float* v, int64_t stride, int n, int G, unsigned* ctr, cudaStream_t s) {
  for (int i = 0; i < kHops; ++i) {
    const bool pdl = M != kStream && i > 0;
    launch(hop_kernel<M>, pdl, G, s, static_cast<const float*>(v + i * stride), v + (i + 1) * stride, n,
           static_cast<const unsigned*>(ctr + (i > 0 ? i - 1 : 0)), ctr + i, i == 0 ? 1 : 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 3584;
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  int sms = 0, per_sm = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, persistent_kernel<kPersistent>, kThreads, 0));
  const int64_t stride = (n + 63) / 64 * 64;
  float* v = nullptr;
  unsigned* ctr = nullptr;
  CUDA_CHECK(cudaMalloc(&v, sizeof(float) * stride * (kHops + 1)));
  CUDA_CHECK(cudaMalloc(&ctr, sizeof(unsigned) * (kHops + 64 + 8 * 1024)));
  std::vector<float> init(n), ref(n), got(n);
  for (int j = 0; j < n; ++j) init[j] = std::sin(0.37 * j);
  std::printf("n = %d floats per vector, %d hops per graph, %d SMs, %d resident blocks per SM (persistent)\n", n,
              kHops, sms, per_sm);
  std::printf("%-11s %6s %10s %12s\n", "mechanism", "G", "us/hop", "max|diff|");
  for (int G : {4, 32, sms, 2 * sms, 592}) {
    for (int m = kStream; m <= kFlags32; ++m) {
      if (m >= kPersistent && G > sms * per_sm) continue;
      CUDA_CHECK(cudaMemcpyAsync(v, init.data(), sizeof(float) * n, cudaMemcpyHostToDevice, s));
      cudaGraph_t graph;
      CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
      CUDA_CHECK(cudaMemsetAsync(ctr, 0, sizeof(unsigned) * (kHops + 64 + 8 * 1024), s));
      switch (m) {
        case kStream: add_hops<kStream>(v, stride, n, G, ctr, s); break;
        case kPdl: add_hops<kPdl>(v, stride, n, G, ctr, s); break;
        case kPdlLate: add_hops<kPdlLate>(v, stride, n, G, ctr, s); break;
        case kFlag: add_hops<kFlag>(v, stride, n, G, ctr, s); break;
        case kFlagLate: add_hops<kFlagLate>(v, stride, n, G, ctr, s); break;
        case kPersistent: launch(persistent_kernel<kPersistent>, false, G, s, v, stride, n, kHops, ctr); break;
        case kPersistentGo: launch(persistent_kernel<kPersistentGo>, false, G, s, v, stride, n, kHops, ctr); break;
        case kPersistentFenced: launch(persistent_kernel<kPersistentFenced>, false, G, s, v, stride, n, kHops, ctr); break;
        case kFlags4: launch(persistent_kernel<kFlags4>, false, G, s, v, stride, n, kHops, ctr); break;
        default: launch(persistent_kernel<kFlags32>, false, G, s, v, stride, n, kHops, ctr); break;
      }
      CUDA_CHECK(cudaStreamEndCapture(s, &graph));
      cudaGraphExec_t exec;
      CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
      const double us = tllm::bench::time_us(s, [&](int) { CUDA_CHECK(cudaGraphLaunch(exec, s)); }, 10, 9, 3);
      CUDA_CHECK(cudaMemcpyAsync(got.data(), v + kHops * stride, sizeof(float) * n, cudaMemcpyDeviceToHost, s));
      CUDA_CHECK(cudaStreamSynchronize(s));
      if (m == kStream) ref = got;
      double diff = 0;
      for (int j = 0; j < n; ++j) diff = std::max(diff, static_cast<double>(std::fabs(got[j] - ref[j])));
      std::printf("%-11s %6d %10.3f %12.3g\n", mode_name(m), G, us / kHops, diff);
      CUDA_CHECK(cudaGraphExecDestroy(exec));
      CUDA_CHECK(cudaGraphDestroy(graph));
    }
  }
  CUDA_CHECK(cudaFree(v));
  CUDA_CHECK(cudaFree(ctr));
  return 0;
}
