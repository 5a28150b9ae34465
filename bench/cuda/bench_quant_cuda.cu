// Micro-benchmark of the quantized decode path (quant_gemv: W4A16 / W8A16, T <= 16) at
// Qwen2.5-7B shapes, against the device-to-device copy rate it measures first. For int4
// group 128, int4 group 64 and int8 per channel (the schemes of --quantization int4 / int8):
//   - every linear alone (qkv +bias, o_proj, gate_up, down; lm_head int8 per channel, as
//     quantize-on-load keeps it) at T = 1, 8, 16, the launcher's choice and, at T = 1, each
//     panels-per-block split of the T = 1 kernels (x from L1, x staged "xs", and for 8-bit
//     codes the deep staged kernel "xs2"); weights rotate
//     through copies larger than L2, so HBM is what is measured;
//   - the whole decode step's weight stream: 28 layers x {qkv, o_proj, gate_up, down} +
//     lm_head captured in one CUDA graph (PDL between the kernels, as the engine runs it).
// Bytes counted per kernel: packed codes (padded to 16 rows and the k tile) + scales and
// offsets (f16) + x + out. Usage: bench_quant_cuda [--quick | --profile | --sweep-n]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <cuda_fp16.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/quant_ops.h"
#include "bench_timing.h"

using namespace tllm;
using tllm::cuda::bf16;

namespace {

double g_copy_gbps = 0;

__device__ __forceinline__ uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// Any byte is a valid code in either layout, so random words stand for packed weights.
__global__ void fill_random_u32(uint32_t* p, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = static_cast<uint32_t>(mix((i + 1) * 0x9E3779B97F4A7C15ull ^ seed));
}
__global__ void fill_random_f16(__half* p, int64_t n, uint64_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float u = static_cast<float>(mix((i + 1) * 0x9E3779B97F4A7C15ull ^ seed) >> 40) * (1.0f / 16777216.0f);
    p[i] = __float2half(lo + (hi - lo) * u);
  }
}
__global__ void fill_random_bf16(bf16* p, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float u = static_cast<float>(mix((i + 1) * 0x9E3779B97F4A7C15ull ^ seed) >> 40) * (1.0f / 16777216.0f);
    p[i] = __float2bfloat16((u - 0.5f) * scale);
  }
}

Tensor rand_bf16(Backend& be, Shape s, uint64_t seed, float scale = 1.0f) {
  Tensor t = be.empty(s, DType::BF16);
  fill_random_bf16<<<1024, 256>>>(t.data<bf16>(), t.numel(), seed, scale);
  CUDA_CHECK_LAUNCH("fill");
  return t;
}

struct Scheme {
  const char* name;
  int bits, group;  // group 0: one group per row (per channel)
};

// A packed quantized weight [N, K] on the device with random codes / scales / offsets.
struct QWeight {
  Tensor codes, scales, offsets, bias;
  cuda::QuantGemmParams p;
  double bytes = 0;  // codes + scales + offsets, as the kernel reads them
};

QWeight make_weight(cuda::CudaBackend& be, int N, int K, const Scheme& sc, bool bias, uint64_t seed) {
  QWeight w;
  const int tile = sc.bits == 4 ? 128 : 64;
  const int64_t rows = (N + 15) / 16 * 16, ktiles = (K + tile - 1) / tile;
  const int64_t code_bytes = rows / 16 * ktiles * 1024;
  const int groups = sc.group ? (K + sc.group - 1) / sc.group : 1;
  w.codes = be.empty({rows, ktiles * 1024 / 16}, DType::U8);
  w.scales = be.empty({rows, groups}, DType::F16);
  w.offsets = be.empty({rows, groups}, DType::F16);
  fill_random_u32<<<1024, 256>>>(static_cast<uint32_t*>(w.codes.raw()), code_bytes / 4, seed);
  fill_random_f16<<<256, 256>>>(static_cast<__half*>(w.scales.raw()), rows * groups, seed + 1, 0.005f, 0.05f);
  fill_random_f16<<<256, 256>>>(static_cast<__half*>(w.offsets.raw()), rows * groups, seed + 2, -0.4f, 0.4f);
  CUDA_CHECK_LAUNCH("fill");
  cuda::QuantGemmParams& p = w.p;
  p.codes = static_cast<const uint8_t*>(w.codes.raw());
  p.scales = w.scales.raw();
  p.offsets = w.offsets.raw();
  p.scales_f16 = true;
  p.bits = sc.bits;
  p.N = N;
  p.K = K;
  p.groups = groups;
  p.group_size = sc.group ? sc.group : K;
  p.ktiles = static_cast<int>(ktiles);
  if (bias) {
    w.bias = be.empty({N}, DType::F32);
    CUDA_CHECK(cudaMemsetAsync(w.bias.raw(), 0, N * 4, be.stream()));
    p.bias = w.bias.raw();
    p.bias_dtype = DType::F32;
  }
  w.bytes = static_cast<double>(code_bytes) + 2.0 * rows * groups * 2;
  return w;
}

double time_us(cudaStream_t s, const std::function<void(int)>& fn, int inner = 20, int reps = 15) {
  return tllm::bench::time_us(s, fn, inner, reps, 3);
}

template <typename... A>
std::string fmt(const char* f, A... a) {
  char buf[160];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}

void report(const std::string& name, const std::string& shape, double us, double bytes) {
  const double gbps = bytes / us / 1e3;
  std::printf("%-34s %-26s %9.2f us %10.1f MB %8.1f GB/s %6.1f%% of copy\n", name.c_str(), shape.c_str(), us, bytes / 1e6,
              gbps, 100.0 * gbps / g_copy_gbps);
  std::fflush(stdout);
}

struct Lin {
  const char* name;
  int N, K;
  bool bias;
};
const Lin kLayer[] = {{"qkv", 4608, 3584, true}, {"o_proj", 3584, 3584, false}, {"gate_up", 37888, 3584, false},
                      {"down", 3584, 18944, false}};
const Lin kHead = {"lm_head", 152064, 3584, false};
const Scheme kHeadScheme = {"int8", 8, 0};  // quantize-on-load keeps the lm_head int8 per channel

}  // namespace

// --profile: each 7B linear once at T = 1 (int4 g128, int8, then bf16 through the skinny
// GEMM for comparison) and nothing else, for `ncu --kernel-name regex:gemv`.
void profile_once(cuda::CudaBackend& be, const Tensor& x, Tensor& y) {
  for (const Scheme& sc : {Scheme{"int4_g128", 4, 128}, Scheme{"int8", 8, 0}})
    for (const Lin& l : kLayer) {
      QWeight w = make_weight(be, l.N, l.K, sc, l.bias, 5);
      cuda::QuantGemmParams p = w.p;
      p.x = x.data<bf16>();
      p.T = 1;
      p.out = y.raw();
      p.out_dtype = DType::BF16;
      cuda::quant_gemv(p, be.stream());
      be.synchronize();
      std::printf("profiled %s %s T1 %dx%d\n", sc.name, l.name, l.N, l.K);
    }
  for (const Lin& l : kLayer) {
    LinearWeight w;
    w.weight = rand_bf16(be, {l.N, l.K}, 6, 0.03f);
    w.in_features = l.K;
    w.out_features = l.N;
    Tensor xi = x.view({16 * 18944}).slice_rows(0, l.K).view({1, l.K});
    Tensor out = be.empty({1, l.N}, DType::BF16);
    be.linear_gemv(out, xi, w);
    be.synchronize();
    std::printf("profiled bf16 %s T1 %dx%d\n", l.name, l.N, l.K);
  }
}

// Copies of one N x K weight, more than L2 holds, for the timed launches to rotate through.
struct Rotation {
  std::vector<QWeight> ws;
  double bytes = 0;  // what one launch reads: codes, scales, offsets, x and out
};
Rotation rotation(cuda::CudaBackend& be, int N, int K, const Scheme& sc, bool bias) {
  Rotation r;
  const double one = make_weight(be, N, K, sc, bias, 1).bytes;
  const int copies = std::max(1, static_cast<int>(std::ceil(300e6 / one)));
  for (int c = 0; c < copies; ++c) r.ws.push_back(make_weight(be, N, K, sc, bias, 100 + c));
  r.bytes = one + 2.0 * (K + N);
  return r;
}
// us of one T = 1 launch through `kernel` with pb panels per block.
double time_t1(cudaStream_t s, const Rotation& r, const Tensor& x, Tensor& y, int pb,
               cuda::QuantGemmParams::GemvKernel kernel) {
  return time_us(s, [&](int i) {
    cuda::QuantGemmParams p = r.ws[i % r.ws.size()].p;
    p.x = x.data<bf16>();
    p.T = 1;
    p.out = y.raw();
    p.out_dtype = DType::BF16;
    p.gemv_panels_per_block = pb;
    p.gemv_kernel = kernel;
    cuda::quant_gemv(p, s);
  });
}

// --sweep-n: the T = 1 kernel of o_proj / down (x from L1, one panel per block) at the 7B
// K's over N = 66 .. 396 panels, int4 g128. Does a 224-block grid (1.7 blocks per SM: 92 SMs
// run two blocks, 40 one) take as long as 264 blocks (two on every SM)? Then the SMs with two
// blocks set its time, not the bytes, and an even split of the k tiles over the SMs would pay.
// (Run 278: neither; a block's own chain sets it. docs/cuda-notes.md, session 53.)
void sweep_n(cuda::CudaBackend& be, const Tensor& x, Tensor& y) {
  using Kernel = cuda::QuantGemmParams::GemvKernel;
  const Scheme sc = {"int4_g128", 4, 128};
  cudaStream_t s = be.stream();
  for (int K : {18944, 3584})
    for (int panels : {66, 132, 176, 198, 224, 240, 264, 288, 330, 396}) {
      const Rotation r = rotation(be, panels * 16, K, sc, false);
      report(fmt("sweep_int4_g128 pb1 %d panels", panels), fmt("T1 %dx%d", panels * 16, K),
             time_t1(s, r, x, y, 1, Kernel::XFromL1), r.bytes);
    }
  // The 7B o_proj / down / q|k|v shapes through each T = 1 kernel of 4-bit codes: x from L1,
  // x staged (3 blocks per SM, 3 tiles in flight per lane). (Run 279 also had the deep staged
  // kernel take 4-bit codes: down 14.7 -> 13.5 us alone, o_proj 5.3 -> 5.9, the engine's 7B
  // int4 step 3% slower; docs/measurements/run277/deep4.diff.)
  for (const Lin& l : kLayer) {
    if (std::string(l.name) == "gate_up") continue;
    const Rotation r = rotation(be, l.N, l.K, sc, l.bias);
    for (Kernel kernel : {Kernel::XFromL1, Kernel::XStaged})
      for (int pb : {1, 2})
        report(fmt("kernels_int4_g128 %s %s pb%d", l.name, kernel == Kernel::XStaged ? "xs" : "l1", pb),
               fmt("T1 %dx%d", l.N, l.K), time_t1(s, r, x, y, pb, kernel), r.bytes);
  }
}

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool profile = argc > 1 && std::strcmp(argv[1], "--profile") == 0;
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to benchmark\n");
    return 0;
  }
  cuda::CudaBackend be(CudaBackendOptions{});
  cudaStream_t s = be.stream();
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  std::printf("device: %s (%d SMs)\n", be.name().c_str(), sms);
  {
    const tllm::bench::CopyCeiling c = tllm::bench::copy_ceiling(be, 3);
    g_copy_gbps = c.gbps;
    std::printf("CEILING copy d2d 1 GiB: %.1f us, %.1f GB/s (read + write)\n\n", c.us, g_copy_gbps);
  }

  const std::vector<Scheme> schemes = {{"int4_g128", 4, 128}, {"int4_g64", 4, 64}, {"int8", 8, 0}};
  const std::vector<int> Ts = quick ? std::vector<int>{1} : std::vector<int>{1, 8, 16};
  Tensor x = rand_bf16(be, {16, 18944}, 7), y = be.empty({16, 152064}, DType::BF16);
  if (profile) {
    profile_once(be, x, y);
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "--sweep-n") == 0) {
    sweep_n(be, x, y);
    return 0;
  }

  // --- each linear alone ----------------------------------------------------------------
  for (const Scheme& sc : schemes) {
    std::vector<Lin> lins(std::begin(kLayer), std::end(kLayer));
    lins.push_back(kHead);
    for (const Lin& l : lins) {
      const Scheme& wsc = std::string(l.name) == "lm_head" ? kHeadScheme : sc;
      const double one = make_weight(be, l.N, l.K, wsc, false, 1).bytes;
      const int copies = std::max(1, static_cast<int>(std::ceil(300e6 / one)));
      std::vector<QWeight> ws;
      for (int c = 0; c < copies; ++c) ws.push_back(make_weight(be, l.N, l.K, wsc, l.bias, 100 + c));
      for (int T : Ts) {
        const double bytes = one + 2.0 * T * (l.K + l.N);
        using Kernel = cuda::QuantGemmParams::GemvKernel;
        auto run = [&](int pb, Kernel kernel) {
          return time_us(s, [&](int i) {
            cuda::QuantGemmParams p = ws[i % copies].p;
            p.x = x.data<bf16>();
            p.T = T;
            p.out = y.raw();
            p.out_dtype = DType::BF16;
            p.gemv_panels_per_block = pb;
            p.gemv_kernel = kernel;
            cuda::quant_gemv(p, s);
          });
        };
        cuda::QuantGemmParams pa = ws[0].p;
        pa.T = T;
        const cuda::QuantGemvChoice ch = cuda::quant_gemv_choice(pa);
        const std::string shape = fmt("T%d %dx%d", T, l.N, l.K);
        auto tag = [](Kernel k) { return k == Kernel::XStaged ? " xs" : k == Kernel::XStagedDeep ? " xs2" : ""; };
        report(fmt("qgemv_%s_%s auto(pb%d%s)", wsc.name, l.name, ch.panels_per_block, tag(ch.kernel)), shape,
               run(0, Kernel::Auto), bytes);
        if (T == 1 && !quick)
          for (Kernel kernel : {Kernel::XFromL1, Kernel::XStaged}) {
            if (kernel == Kernel::XStagedDeep && wsc.bits != 8) continue;  // 8-bit codes only
            for (int pb : {1, 2, 4, 8})
              report(fmt("qgemv_%s_%s pb%d%s", wsc.name, l.name, pb, tag(kernel)), shape, run(pb, kernel), bytes);
          }
      }
    }
    std::printf("\n");
  }

  // --- the whole decode step's weight stream, one CUDA graph ------------------------------
  for (const Scheme& sc : schemes) {
    for (bool bf16_head : {false, true}) {
      if (bf16_head && std::string(sc.name) != "int4_g128") continue;
      std::vector<QWeight> W;
      double total = 0;
      for (int layer = 0; layer < 28; ++layer)
        for (const Lin& l : kLayer) {
          W.push_back(make_weight(be, l.N, l.K, sc, l.bias, 1000 + 8 * layer + W.size() % 4));
          total += W.back().bytes;
        }
      QWeight head;
      LinearWeight head_bf16;
      if (bf16_head) {
        head_bf16.weight = rand_bf16(be, {kHead.N, kHead.K}, 999, 0.03f);
        total += 2.0 * kHead.N * kHead.K;
      } else {
        head = make_weight(be, kHead.N, kHead.K, kHeadScheme, false, 999);
        total += head.bytes;
      }
      for (int T : quick ? std::vector<int>{1} : std::vector<int>{1, 8}) {
        Tensor logits = be.empty({T, kHead.N}, DType::F32);
        auto step = [&] {
          for (const QWeight& w : W) {
            cuda::QuantGemmParams p = w.p;
            p.x = x.data<bf16>();
            p.T = T;
            p.out = y.raw();
            p.out_dtype = DType::BF16;
            cuda::quant_gemv(p, s);
          }
          if (bf16_head) {
            Tensor xi = x.view({16 * 18944}).slice_rows(0, T * kHead.K).view({T, kHead.K});
            be.linear(logits, xi, head_bf16);
          } else {
            cuda::QuantGemmParams p = head.p;
            p.x = x.data<bf16>();
            p.T = T;
            p.out = logits.raw();
            p.out_dtype = DType::F32;
            cuda::quant_gemv(p, s);
          }
        };
        auto graph = be.capture(step);
        const double us = time_us(s, [&](int) { graph->replay(); }, 3, 9);
        report(fmt("decode_step_7b_%s_%s", sc.name, bf16_head ? "bf16head" : "int8head"), fmt("T%d 113 linears", T), us,
               total);
        std::printf("    -> %.1f steps/s from the linears alone; at the copy rate %.1f (%.2f GB per step)\n", 1e6 / us,
                    g_copy_gbps * 1e9 / total, total / 1e9);
      }
      be.synchronize();
    }
  }
  return 0;
}
