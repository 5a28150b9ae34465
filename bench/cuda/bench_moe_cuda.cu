// The sparse MoE block alone (Backend::moe_block: router, top-k, experts, combine, shared
// expert) at the Qwen3-30B-A3B and Qwen1.5-MoE-A2.7B layer shapes, bf16, T = 1, 2, 4, 8, 12, 16, 24, 32 (--quick: 1, 8, 32).
// Every layer has its own random weights (as many layers as the model, so a step streams
// from HBM, not L2) and its own input rows. Measured per shape and T:
//   call      one moe_block after another, layer by layer (median of CUDA event timings)
//   graph     one CUDA graph of all the layers' blocks, like the MoE part of a decode step
// each for the fused decode path (CudaBackend::moe_block) and the three-op sequence it
// replaces (Backend::moe_block: linear, moe_route, moe_experts). Bytes are what a block
// must read: router, the distinct experts its tokens chose (counted from the routing the
// run produced), the shared expert, x and out; GB/s and % of the device copy bandwidth
// measured first (read + write of a 1 GiB device-to-device copy). Then, for the shapes
// without a shared expert, the fused path's three kernels alone and chained (bench_kernels).
// With TLLM_MOE_GEMM=mma|wgmma the 3-op sequence's experts take that grouped GEMM at every T
// and moe_block takes no fused path.
// Usage: bench_moe_cuda [--quick]   (--quick: 8 layers per shape, fewer reps)
//        bench_moe_cuda --quant-prefill [--quick] [--scheme bf16|fp8|int4|int8] [--tokens T]
//          (bench_quant_prefill below; --scheme / --tokens: that row only, e.g. for a trace)
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/moe_ops.h"
#include "bench_timing.h"

using namespace tllm;
using tllm::cuda::bf16;

namespace {

// Uniform values in [-scale, scale) from a per-element hash (any fixed pattern would do for
// timing; random ones give realistic routing).
__global__ void fill_uniform(void* p, int64_t n, bool is_bf16, uint32_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed ^ static_cast<uint32_t>(i >> 32) * 40503u;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    const float v = (static_cast<float>(h >> 8) * (1.0f / 8388608.0f) - 1.0f) * scale;
    if (is_bf16) static_cast<bf16*>(p)[i] = __float2bfloat16(v);
    else static_cast<float*>(p)[i] = v;
  }
}

Tensor random_tensor(Backend& be, Shape s, DType dt, uint32_t seed, float scale) {
  Tensor t = be.empty(s, dt);
  fill_uniform<<<1024, 256, 0, static_cast<cuda::CudaBackend&>(be).stream()>>>(t.raw(), t.numel(), dt == DType::BF16,
                                                                              seed, scale);
  CUDA_CHECK_LAUNCH("fill_uniform");
  return t;
}

LinearWeight linear_weight(Backend& be, int64_t rows, int64_t cols, uint32_t seed) {
  LinearWeight w;
  w.weight = random_tensor(be, {rows, cols}, DType::BF16, seed, 1.7f / std::sqrt(float(cols)));
  w.out_features = rows;
  w.in_features = cols;
  return w;
}

// Warm-up: one batch of `inner` calls.
double time_us(cudaStream_t s, const std::function<void(int)>& fn, int inner, int reps) {
  return tllm::bench::time_us(s, fn, inner, reps, inner);
}

struct ModelShape {
  const char* name;
  int E, k;
  int64_t H, I, S;
  int layers;
  bool renorm;
};

struct Layer {
  LinearWeight router;
  MoeExperts experts;
  Tensor x, out, logits, ids, weights;  // x, out [Tmax, H]; logits [Tmax, E]; ids, weights [Tmax, k]
};

void bench_kernels(cuda::CudaBackend& be, const ModelShape& m, std::vector<Layer>& layers, double copy_gbps,
                   bool quick);

void bench_shape(cuda::CudaBackend& be, const ModelShape& m, bool quick, double copy_gbps) {
  const int L = quick ? std::min(8, m.layers) : m.layers;
  const int Tmax = 32;
  cudaStream_t s = be.stream();
  std::printf("\n== %s: %d experts top-%d, hidden %lld, moe_intermediate %lld, shared %lld, %d layers%s\n", m.name,
              m.E, m.k, (long long)m.H, (long long)m.I, (long long)m.S, L, m.renorm ? ", norm_topk_prob" : "");
  std::vector<Layer> layers(L);
  for (int l = 0; l < L; ++l) {
    Layer& y = layers[l];
    const uint32_t seed = 1000u * (l + 1);
    y.router = linear_weight(be, m.E, m.H, seed + 1);
    MoeExperts& w = y.experts;
    w.num_experts = m.E;
    w.hidden = m.H;
    w.inter = m.I;
    w.gate_up = linear_weight(be, int64_t{m.E} * 2 * m.I, m.H, seed + 2);
    w.down = linear_weight(be, int64_t{m.E} * m.H, m.I, seed + 3);
    if (m.S > 0) {
      w.shared_inter = m.S;
      w.shared_gate_up = linear_weight(be, 2 * m.S, m.H, seed + 4);
      w.shared_down = linear_weight(be, m.H, m.S, seed + 5);
      w.shared_gate = random_tensor(be, {m.H}, DType::F32, seed + 6, 0.05f);
    }
    y.x = random_tensor(be, {Tmax, m.H}, DType::BF16, seed + 7, 1.0f);
    y.out = be.empty({Tmax, m.H}, DType::BF16);
    y.logits = be.empty({Tmax, m.E}, DType::BF16);
    y.ids = be.empty({Tmax, m.k}, DType::I32);
    y.weights = be.empty({Tmax, m.k}, DType::F32);
    be.moe_reserve(Tmax, m.k, w);
  }
  be.synchronize();

  for (int T : {1, 2, 4, 8, 12, 16, 24, 32}) {
    if (quick && T != 1 && T != 8 && T != 32) continue;
    auto block = [&](int l, bool fused) {
      Layer& y = layers[l];
      Tensor x = y.x.slice_rows(0, T), out = y.out.slice_rows(0, T), lg = y.logits.slice_rows(0, T);
      Tensor ids = y.ids.slice_rows(0, T), wt = y.weights.slice_rows(0, T);
      if (fused) be.moe_block(out, x, y.router, y.experts, lg, ids, wt, m.renorm);
      else be.Backend::moe_block(out, x, y.router, y.experts, lg, ids, wt, m.renorm);
    };
    // Bytes one block must read, from the routing this input produces (the same every run).
    for (int l = 0; l < L; ++l) block(l, true);
    be.synchronize();
    double bytes = 0, experts = 0;
    for (int l = 0; l < L; ++l) {
      Tensor ids = be.download(layers[l].ids.slice_rows(0, T));
      std::set<int32_t> distinct(ids.data<int32_t>(), ids.data<int32_t>() + ids.numel());
      experts += double(distinct.size()) / L;
      bytes += (double(m.E) * m.H * 2 + double(distinct.size()) * 3 * m.I * m.H * 2 + 3.0 * m.S * m.H * 2 +
                (m.S > 0 ? m.H * 4.0 : 0.0) + 2.0 * T * m.H * 2) /
               L;
    }
    std::printf("-- T = %d: %.1f of %d experts per layer, %.2f MB per block (%.2f us at copy bandwidth)\n", T,
                experts, m.E, bytes / 1e6, bytes / copy_gbps / 1e3);
    const char* fused_path = T <= 16 ? "fused (3 kernels)" : "fallback (linear+route+experts)";
    for (bool fused : {true, false}) {
      const char* what = fused ? fused_path : "unfused 3-op sequence";
      const double us = time_us(s, [&](int i) { block(i % L, fused); }, L, quick ? 5 : 15);
      std::printf("   call   %-34s %9.2f us/block  %8.1f GB/s  %5.1f%% of copy\n", what, us, bytes / us / 1e3,
                  100.0 * bytes / us / 1e3 / copy_gbps);
      auto graph = be.capture([&] {
        for (int l = 0; l < L; ++l) block(l, fused);
      });
      if (!graph) {
        std::printf("   graph  %-34s capture not supported\n", what);
        continue;
      }
      const double gus = time_us(s, [&](int) { graph->replay(); }, 1, quick ? 10 : 30);
      std::printf("   graph  %-34s %9.2f us/block  %8.1f GB/s  %5.1f%% of copy  (%d blocks: %.1f us)\n", what,
                  gus / L, bytes * L / gus / 1e3, 100.0 * bytes * L / gus / 1e3 / copy_gbps, L, gus);
    }
  }
  bench_kernels(be, m, layers, copy_gbps, quick);
}

// The three kernels of the fused decode block one by one (moe_ops.h), at the shapes without a
// shared expert: a graph of L launches of one kernel (each layer with its own weights and
// scratch, the routing left there by a full run first), then of the first two, then of all
// three, so that both each kernel's own time and its cost inside the chain (PDL overlap,
// the routing tail) show. Bytes: router E H + T H; gate|up the distinct experts' 2 I H;
// down_combine their I H + T H (bf16).
void bench_kernels(cuda::CudaBackend& be, const ModelShape& m, std::vector<Layer>& layers, double copy_gbps,
                   bool quick) {
  if (m.S > 0) return;
  const int L = static_cast<int>(layers.size());
  cudaStream_t s = be.stream();
  for (int T : {1, 8}) {
    const int64_t P = int64_t{T} * m.k;
    const size_t meta_bytes = (cuda::moe_meta_bytes(P, m.E) + 255) / 256 * 256;
    std::vector<Tensor> scratch(L);
    std::vector<cuda::MoeDecodeParams> params(L);
    for (int l = 0; l < L; ++l) {
      scratch[l] = be.empty({int64_t(256 + meta_bytes + P * m.I * 2)}, DType::U8);
      char* base = static_cast<char*>(scratch[l].raw());
      CUDA_CHECK(cudaMemsetAsync(base, 0, 256, s));  // the router's done counter
      Layer& y = layers[l];
      cuda::MoeDecodeParams& p = params[l];
      p.x = y.x.data<bf16>();
      p.router = y.router.weight.data<bf16>();
      p.logits = y.logits.raw();
      p.logits_dtype = DType::BF16;
      p.ids = y.ids.data<int32_t>();
      p.weights = y.weights.data<float>();
      p.renormalize = m.renorm;
      p.done = reinterpret_cast<unsigned*>(base);
      p.gate_up = y.experts.gate_up.weight.data<bf16>();
      p.down = y.experts.down.weight.data<bf16>();
      p.meta = cuda::moe_meta_layout(base + 256, P, m.E);
      p.act = reinterpret_cast<bf16*>(base + 256 + meta_bytes);
      p.out = y.out.data<bf16>();
      p.T = T;
      p.k = m.k;
      p.E = m.E;
      p.H = static_cast<int>(m.H);
      p.I = static_cast<int>(m.I);
    }
    for (int l = 0; l < L; ++l) {  // routing and act of every layer, for the kernels run alone
      cuda::moe_router_topk(params[l], s);
      cuda::moe_decode_gate_up(params[l], s);
      cuda::moe_decode_down_combine(params[l], s);
    }
    be.synchronize();
    double distinct = 0;
    for (int l = 0; l < L; ++l) {
      Tensor ids = be.download(layers[l].ids.slice_rows(0, T));
      distinct += double(std::set<int32_t>(ids.data<int32_t>(), ids.data<int32_t>() + ids.numel()).size()) / L;
    }
    const double router_b = double(m.E) * m.H * 2 + 2.0 * T * m.H, gate_up_b = distinct * 2 * m.I * m.H * 2,
                 down_b = distinct * m.I * m.H * 2 + 2.0 * T * m.H;
    std::printf("-- T = %d, fused block kernel by kernel (graph of %d layers, %.1f experts per layer)\n", T, L,
                distinct);
    struct Run {
      const char* what;
      int first, last;  // kernels [first, last] of router_topk, gate_up, down_combine
      double bytes;
    };
    const Run runs[] = {{"router_topk alone", 0, 0, router_b},
                        {"gate_up alone", 1, 1, gate_up_b},
                        {"down_combine alone", 2, 2, down_b},
                        {"router_topk + gate_up", 0, 1, router_b + gate_up_b},
                        {"all three", 0, 2, router_b + gate_up_b + down_b}};
    for (const Run& r : runs) {
      auto graph = be.capture([&] {
        for (int l = 0; l < L; ++l) {
          if (r.first <= 0 && r.last >= 0) cuda::moe_router_topk(params[l], s);
          if (r.first <= 1 && r.last >= 1) cuda::moe_decode_gate_up(params[l], s);
          if (r.first <= 2 && r.last >= 2) cuda::moe_decode_down_combine(params[l], s);
        }
      });
      if (!graph) {
        std::printf("   %-24s capture not supported\n", r.what);
        continue;
      }
      const double us = time_us(s, [&](int) { graph->replay(); }, 1, quick ? 10 : 30) / L;
      std::printf("   %-24s %9.2f us/block  %8.2f MB  %8.1f GB/s  %5.1f%% of copy  (%.2f us at copy bandwidth)\n",
                  r.what, us, r.bytes / 1e6, r.bytes / us / 1e3, 100.0 * r.bytes / us / 1e3 / copy_gbps,
                  r.bytes / copy_gbps / 1e3);
    }
  }
}

// Random quantized codes for a [rows, cols] weight, packed by the backend: FP8 (e4m3, NaN codes
// moved to their neighbour; per-row scales in blocks of 128 columns), int4 g128 or int8 per
// channel (scales and offsets), as a checkpoint's would be after loading. Timing only.
LinearWeight random_quantized(cuda::CudaBackend& be, int64_t rows, int64_t cols, const std::string& scheme,
                              uint64_t seed) {
  QuantizedMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.fp8 = scheme == "fp8";
  m.bits = scheme == "int4" ? 4 : 8;
  m.group_size = scheme == "int8" ? static_cast<int>(cols) : 128;
  const int64_t G = m.groups();
  m.codes = Tensor::empty({rows, cols}, DType::U8);
  m.scales = Tensor::empty({rows, G}, DType::F32);
  m.offsets = Tensor::empty({rows, G}, DType::F32);
  uint8_t* c = m.codes.data<uint8_t>();
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < rows * cols; i += 8) {
    z ^= z << 13, z ^= z >> 7, z ^= z << 17;
    uint64_t v = z;
    if (m.bits == 4) v &= 0x0f0f0f0f0f0f0f0full;
    std::memcpy(c + i, &v, static_cast<size_t>(std::min<int64_t>(8, rows * cols - i)));
  }
  if (m.fp8)
    for (int64_t i = 0; i < rows * cols; ++i)
      if ((c[i] & 0x7f) == 0x7f) c[i] ^= 1;
  for (int64_t i = 0; i < rows * G; ++i) {
    m.scales.data<float>()[i] = m.fp8 ? 1e-4f : 2e-3f;
    m.offsets.data<float>()[i] = m.fp8 ? 0.0f : -m.scales.data<float>()[i] * (m.bits == 4 ? 8.0f : 128.0f);
  }
  return be.pack_quantized(m, false);
}

// --quant-prefill: Backend::moe_experts at the Qwen3-30B-A3B layer shape (128 experts of 2048 x
// 768, top-8) for prefill-sized batches, bf16 experts against quantized ones (FP8, int4 g128,
// int8) on each quantized path (TLLM_MOE_QUANT=decode: the decode kernels, which read the active
// experts' codes in one pass per 32 of an expert's pairs, up to T = 512; fused: the grouped
// GEMM over the codes; dequant, from T = 128: every expert to bf16, then the bf16 grouped GEMM, each kernel of it). TFLOP/s counts the routed pairs'
// multiply-adds (2 x 3 x H x I per pair) against the cuBLASLt bf16 ceiling; weights GB/s the
// routed experts' codes (or bf16 weights) over the time.
void bench_quant_prefill(cuda::CudaBackend& be, bool quick, const std::string& only_scheme, int only_T) {
  const int E = 128, k = 8, H = 2048, I = 768;
  const double peak = tllm::bench::gemm_peak_tflops(be);
  cudaStream_t s = be.stream();
  std::printf("\nMoE experts, prefill, Qwen3-30B-A3B layer (E %d, top-%d, H %d, I %d)\n", E, k, H, I);
  std::printf("   %-6s %-14s %6s %10s %9s %7s %14s\n", "scheme", "path", "T", "us", "TFLOP/s", "% peak",
              "weights GB/s");
  for (const std::string scheme : {"bf16", "fp8", "int4", "int8"}) {
    if (!only_scheme.empty() && scheme != only_scheme) continue;
    MoeExperts w;
    w.num_experts = E;
    w.hidden = H;
    w.inter = I;
    if (scheme == "bf16") {
      w.gate_up = linear_weight(be, int64_t{E} * 2 * I, H, 11);
      w.down = linear_weight(be, int64_t{E} * H, I, 12);
    } else {
      w.gate_up = random_quantized(be, int64_t{E} * 2 * I, H, scheme, 11);
      w.down = random_quantized(be, int64_t{E} * H, I, scheme, 12);
    }
    setenv("TLLM_MOE_QUANT", "dequant", 1);  // reserve the bf16 copy too
    be.moe_reserve(8192, k, w);
    for (int T : {1, 2, 4, 8, 12, 16, 24, 32, 64, 128, 256, 512, 2048, 4096, 8192}) {
      if (quick && T > 2048) continue;
      if (only_T > 0 && T != only_T) continue;
      Tensor x = random_tensor(be, {T, H}, DType::BF16, 21, 1.0f), out = be.empty({T, H}, DType::BF16);
      Tensor logits = random_tensor(be, {T, E}, DType::F32, 22, 2.0f);
      Tensor ids = be.empty({T, k}, DType::I32), wts = be.empty({T, k}, DType::F32);
      be.moe_route(ids, wts, logits, true);
      const double flops = 2.0 * T * k * 3.0 * H * I;
      // The routed experts' weights (codes only), each read once.
      const Tensor ids_h = be.download(ids);
      const std::set<int32_t> routed(ids_h.data<int32_t>(), ids_h.data<int32_t>() + ids_h.numel());
      const double wbytes =
          3.0 * static_cast<double>(routed.size()) * H * I * (scheme == "bf16" ? 2.0 : scheme == "int4" ? 0.5 : 1.0);
      // bf16 experts, and the dequantizing path's bf16 copy: each grouped GEMM (TLLM_MOE_GEMM)
      // above the decode kernels' T.
      for (const char* path : {"decode", "fused", "dequant"}) {
        if (scheme == "bf16" && std::strcmp(path, "fused") != 0) continue;
        if (std::strcmp(path, "decode") == 0 && T > 512) continue;
        if (std::strcmp(path, "dequant") == 0 && T < 128) continue;
        // TLLM_MOE_GEMM for each row: bf16 experts auto (the decode kernels up to their limit,
        // then the default GEMM) and each grouped GEMM forced at every T; the dequantized copy
        // each grouped GEMM; the codes' own kernels the default.
        std::vector<const char*> kernels = {"auto"};
        if (scheme == "bf16") kernels = {"auto", "mma", "wgmma"};
        else if (std::strcmp(path, "dequant") == 0) kernels = {"mma", "wgmma"};
        for (const char* kernel : kernels) {
          if (std::strcmp(kernel, "wgmma") == 0 && !cuda::sm90a_available()) continue;
          setenv("TLLM_MOE_QUANT", path, 1);
          setenv("TLLM_MOE_GEMM", kernel, 1);
          const double us = tllm::bench::time_us(s, [&](int) { be.moe_experts(out, x, ids, wts, w); }, 1,
                                                 quick ? 5 : 15, 2);
          const double tf = flops / us / 1e6;
          const std::string label = scheme == "bf16"                        ? std::string(kernel)
                                    : std::strcmp(path, "dequant") == 0 ? std::string(path) + "+" + kernel
                                                                        : std::string(path);
          std::printf("   %-6s %-14s %6d %10.1f %9.1f %6.1f%% %14.1f\n", scheme.c_str(), label.c_str(), T, us, tf,
                      100.0 * tf / peak, wbytes / us / 1e3);
        }
        unsetenv("TLLM_MOE_GEMM");
      }
    }
    unsetenv("TLLM_MOE_QUANT");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (argc > 1 && std::strcmp(argv[1], "--quant-prefill") == 0) {
    if (!cuda_available()) {
      std::printf("no CUDA device: nothing to benchmark\n");
      return 0;
    }
    cuda::CudaBackend be(CudaBackendOptions{});
    std::printf("device: %s\n", be.name().c_str());
    bool q = false;
    std::string scheme;
    int tokens = 0;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--quick") == 0) q = true;
      else if (std::strcmp(argv[i], "--scheme") == 0 && i + 1 < argc) scheme = argv[++i];
      else if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) tokens = std::atoi(argv[++i]);
      else {
        std::fprintf(stderr, "bench_moe_cuda --quant-prefill: unknown argument %s\n", argv[i]);
        return 2;
      }
    }
    bench_quant_prefill(be, q, scheme, tokens);
    return 0;
  }
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to benchmark\n");
    return 0;
  }
  cuda::CudaBackend be(CudaBackendOptions{});
  cudaStream_t s = be.stream();
  std::printf("device: %s\n", be.name().c_str());
  const double copy_gbps = tllm::bench::copy_ceiling(be, 5).gbps;  // warm-up: one batch, as time_us here
  std::printf("copy bandwidth (1 GiB device-to-device, read + write): %.1f GB/s\n", copy_gbps);
  const ModelShape shapes[] = {
      {"qwen3-30b-a3b", 128, 8, 2048, 768, 0, 48, true},
      {"qwen1.5-moe-a2.7b", 60, 4, 2048, 1408, 5632, 24, false},
  };
  for (const ModelShape& m : shapes) bench_shape(be, m, quick, copy_gbps);
  return 0;
}
