// Micro-benchmarks of the CUDA backend. First the two ceilings of this card (device-to-
// device copy bandwidth counting read + write, cuBLASLt bf16 GEMM at 8192^3), then every op
// at Qwen2.5-7B shapes with its bytes / FLOPs over those ceilings. Times are medians of CUDA
// event timings after warm-up; weights rotate through copies larger than L2 so HBM is what
// is measured. Usage: bench_kernels_cuda [--quick | --prefill | --gemv NxK[,NxK...]]
// (--prefill: the ceilings, prefill GEMMs, prefill attention and elementwise ops only;
// --gemv: the ceilings, then batch-1 decode GEMVs of the given shapes and every variant, e.g.
// to see how a grid of N/16 blocks that does not fill the SMs evenly streams).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemv_variants.h"
#include "bench_timing.h"

using namespace tllm;
using tllm::cuda::bf16;

namespace {

struct Row {
  std::string name, shape;
  double us = 0, gbps = 0, tflops = 0;
};
std::vector<Row> g_rows;
double g_copy_gbps = 0, g_peak_tflops = 0;

__global__ void fill_random_bf16(bf16* p, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f) - 0.5f;
    p[i] = __float2bfloat16(u * scale);
  }
}
__global__ void fill_random_f32(float* p, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 31;
    p[i] = (static_cast<float>(z >> 40) * (1.0f / 16777216.0f) - 0.5f) * scale;
  }
}

Tensor rand_bf16(Backend& be, Shape s, uint64_t seed, float scale = 1.0f) {
  Tensor t = be.empty(s, DType::BF16);
  fill_random_bf16<<<1024, 256>>>(t.data<bf16>(), t.numel(), seed, scale);
  CUDA_CHECK_LAUNCH("fill");
  return t;
}
Tensor rand_f32(Backend& be, Shape s, uint64_t seed, float scale = 1.0f) {
  Tensor t = be.empty(s, DType::F32);
  fill_random_f32<<<1024, 256>>>(t.data<float>(), t.numel(), seed, scale);
  CUDA_CHECK_LAUNCH("fill");
  return t;
}

// Copies of an [N, K] weight that together exceed L2 (~300 MB), so that timings rotating
// through them read HBM.
// max |got - want| over two host tensors of one shape, and max |want| in mx. download()
// returns float data as f32 on the host, whatever the device dtype.
double max_abs_diff(const Tensor& got, const Tensor& want, double& mx) {
  double md = 0;
  mx = 0;
  for (int64_t j = 0; j < want.numel(); ++j) {
    const double a = got.data<float>()[j], b = want.data<float>()[j];
    md = std::max(md, std::abs(a - b));
    mx = std::max(mx, std::abs(b));
  }
  return md;
}

std::vector<LinearWeight> weight_copies(Backend& be, int N, int K) {
  const int copies = std::max(1, static_cast<int>(std::ceil(300e6 / (2.0 * N * K))));
  std::vector<LinearWeight> ws(copies);
  for (int c = 0; c < copies; ++c) ws[c].weight = rand_bf16(be, {N, K}, 100 + c, 0.03f);
  return ws;
}

double time_us(cudaStream_t s, const std::function<void(int)>& fn, int inner = 10, int reps = 15) {
  return tllm::bench::time_us(s, fn, inner, reps, 3);
}

void report(const std::string& name, const std::string& shape, double us, double bytes, double flops) {
  Row r{name, shape, us, bytes / us / 1e3, flops / us / 1e6};
  g_rows.push_back(r);
  std::printf("%-28s %-34s %10.2f us", name.c_str(), shape.c_str(), us);
  if (bytes > 0) std::printf("  %8.1f GB/s (%5.1f%% of copy)", r.gbps, 100.0 * r.gbps / g_copy_gbps);
  if (flops > 0 && g_peak_tflops > 0) std::printf("  %7.1f TFLOP/s (%5.1f%% of cuBLAS peak)", r.tflops, 100.0 * r.tflops / g_peak_tflops);
  std::printf("\n");
  std::fflush(stdout);
}

std::string shp(std::initializer_list<int64_t> d) {
  std::ostringstream os;
  bool first = true;
  for (int64_t x : d) {
    if (!first) os << 'x';
    os << x;
    first = false;
  }
  return os.str();
}
template <typename... A>
std::string cat(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool prefill_only = argc > 1 && std::strcmp(argv[1], "--prefill") == 0;
  // --batch: the batched-decode linears (T = 8..32) of the 0.5B / 1.5B / 7B shapes, every
  // skinny-GEMM variant against cuBLASLt.
  const bool batch_only = argc > 1 && std::strcmp(argv[1], "--batch") == 0;
  std::vector<std::pair<int, int>> gemv_shapes;  // --gemv NxK,...
  if (argc > 2 && std::strcmp(argv[1], "--gemv") == 0) {
    std::stringstream ss(argv[2]);
    std::string item;
    while (std::getline(ss, item, ',')) {
      int n = 0, k = 0;
      if (std::sscanf(item.c_str(), "%dx%d", &n, &k) != 2 || n <= 0 || k <= 0 || k % 8 != 0) {
        std::fprintf(stderr, "--gemv: \"%s\" is not NxK with K a multiple of 8\n", item.c_str());
        return 2;
      }
      gemv_shapes.emplace_back(n, k);
    }
  }
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to benchmark\n");
    return 0;
  }
  cuda::CudaBackend be(CudaBackendOptions{});
  cudaStream_t s = be.stream();
  std::printf("device: %s\n", be.name().c_str());

  // --- ceilings -----------------------------------------------------------------------
  {
    const tllm::bench::CopyCeiling c = tllm::bench::copy_ceiling(be, 3);
    g_copy_gbps = c.gbps;
    std::printf("CEILING copy d2d 1 GiB: %.1f us, %.1f GB/s (read + write)\n", c.us, g_copy_gbps);
  }
  {
    const int M = 8192;
    Tensor x = rand_bf16(be, {M, M}, 1), y = be.empty({M, M}, DType::BF16);
    LinearWeight w;
    w.weight = rand_bf16(be, {M, M}, 2, 0.05f);
    const double us = time_us(s, [&](int) { be.linear_cublas(y, x, w); }, 3, 9);
    g_peak_tflops = 2.0 * M * double(M) * M / us / 1e6;
    std::printf("CEILING cuBLASLt bf16 GEMM 8192^3: %.1f us, %.1f TFLOP/s\n", us, g_peak_tflops);
  }
  if (!gemv_shapes.empty()) {
    for (auto [N, K] : gemv_shapes) {
      const std::vector<LinearWeight> ws = weight_copies(be, N, K);
      const int copies = static_cast<int>(ws.size());
      Tensor x = rand_bf16(be, {1, K}, 7), y = be.empty({1, N}, DType::BF16);
      const double bytes = 2.0 * N * K + 2.0 * (K + N);
      const std::string sh = cat("T1 ", shp({N, K}), " (", (N + 15) / 16, " panels)");
      report("gemv", sh, time_us(s, [&](int i) { be.linear_gemv(y, x, ws[i % copies]); }), bytes, 0);
      be.linear_gemv(y, x, ws[0]);
      const Tensor want = be.download(y);
      for (const auto& v : cuda::gemv_variants()) {
        report(cat("gemv_", v.name), sh,
               time_us(s, [&](int i) { v.run(y.raw(), x.data<bf16>(), ws[i % copies].weight.data<bf16>(), 1, N, K, s); }),
               bytes, 0);
        v.run(y.raw(), x.data<bf16>(), ws[0].weight.data<bf16>(), 1, N, K, s);
        double mx = 0;  // against the default kernel: bf16 roundings of other summation orders
        const double md = max_abs_diff(be.download(y), want, mx);
        std::printf("  %s: max |diff| %.3g of max |out| %.3g%s\n", v.name, md, mx, md <= 0.02 * mx ? "" : "  MISMATCH");
      }
    }
    return 0;
  }
  if (batch_only) {
    struct BLin { const char* name; int N, K; };
    const std::vector<BLin> bl = {{"qkv_7b", 4608, 3584},      {"o_7b", 3584, 3584},      {"gate_up_7b", 37888, 3584},
                                  {"down_7b", 3584, 18944},    {"lm_head_7b", 152064, 3584}, {"qkv_0.5b", 1152, 896},
                                  {"o_0.5b", 896, 896},        {"gate_up_0.5b", 9728, 896}, {"down_0.5b", 896, 4864},
                                  {"lm_head_0.5b", 151936, 896}, {"qkv_1.5b", 2048, 1536}, {"o_1.5b", 1536, 1536},
                                  {"gate_up_1.5b", 17920, 1536}, {"down_1.5b", 1536, 8960}};
    for (const BLin& l : bl) {
      const std::vector<LinearWeight> ws = weight_copies(be, l.N, l.K);
      const int copies = static_cast<int>(ws.size());
      for (int T : {8, 16, 24, 32}) {
        Tensor x = rand_bf16(be, {T, l.K}, 7), y = be.empty({T, l.N}, DType::BF16);
        const double bytes = 2.0 * l.N * l.K + 2.0 * T * (l.K + l.N);
        const double flops = 2.0 * T * l.N * double(l.K);
        const std::string sh = cat("T", T, " ", shp({l.N, l.K}));
        report(cat("cublas_", l.name), sh, time_us(s, [&](int i) { be.linear_cublas(y, x, ws[i % copies]); }), bytes, flops);
        be.linear_cublas(y, x, ws[0]);
        const Tensor want = be.download(y);
        report(cat("gemv_", l.name), sh, time_us(s, [&](int i) { be.linear_gemv(y, x, ws[i % copies]); }), bytes, flops);
        for (const auto& v : cuda::gemv_variants()) {
          report(cat("gemv_", v.name, "_", l.name), sh,
                 time_us(s, [&](int i) { v.run(y.raw(), x.data<bf16>(), ws[i % copies].weight.data<bf16>(), T, l.N, l.K, s); }),
                 bytes, flops);
          v.run(y.raw(), x.data<bf16>(), ws[0].weight.data<bf16>(), T, l.N, l.K, s);
          double mx = 0;
          const double md = max_abs_diff(be.download(y), want, mx);
          if (md > 0.02 * mx) std::printf("  %s T%d %s: max |diff| %.3g of max |out| %.3g  MISMATCH\n", v.name, T, l.name, md, mx);
        }
      }
    }
    return 0;
  }
  report("copy_d2d", "1GiB", 0, 0, 0);
  g_rows.back().gbps = g_copy_gbps;
  g_rows.back().us = 2.0 * (size_t{1} << 30) / g_copy_gbps / 1e3;

  // --- linear at Qwen2.5-7B shapes -----------------------------------------------------
  struct Lin { const char* name; int N, K; };
  const std::vector<Lin> lins = {{"qkv", 4608, 3584}, {"o_proj", 3584, 3584}, {"gate_up", 37888, 3584},
                                 {"down", 3584, 18944}, {"lm_head", 152064, 3584}};
  const std::vector<int> Ts = quick ? std::vector<int>{1, 8} : std::vector<int>{1, 2, 4, 8, 16};
  // Decode GEMVs: the 7B shapes, then the 0.5B ones (K = 896: few steps per warp).
  std::vector<Lin> decode_lins = lins;
  for (const Lin& l : {Lin{"qkv_0.5b", 1152, 896}, Lin{"o_proj_0.5b", 896, 896}, Lin{"gate_up_0.5b", 9728, 896},
                       Lin{"down_0.5b", 896, 4864}, Lin{"lm_head_0.5b", 151936, 896}})
    decode_lins.push_back(l);
  for (const Lin& l : decode_lins) {
    if (prefill_only) break;
    const double wbytes = 2.0 * l.N * l.K;
    const std::vector<LinearWeight> ws = weight_copies(be, l.N, l.K);
    const int copies = static_cast<int>(ws.size());
    for (int T : Ts) {
      Tensor x = rand_bf16(be, {T, l.K}, 7), y = be.empty({T, l.N}, DType::BF16);
      const double bytes = wbytes + 2.0 * T * (l.K + l.N);
      const double flops = 2.0 * T * l.N * double(l.K);
      const std::string sh = cat("T", T, " ", shp({l.N, l.K}));
      report(cat("gemv_", l.name), sh, time_us(s, [&](int i) { be.linear_gemv(y, x, ws[i % copies]); }), bytes, flops);
      report(cat("cublas_", l.name), sh, time_us(s, [&](int i) { be.linear_cublas(y, x, ws[i % copies]); }), bytes, flops);
      if (T == 1 || T == 8)
        for (const auto& v : cuda::gemv_variants())
          report(cat("gemv_", v.name, "_", l.name), sh,
                 time_us(s, [&](int i) { v.run(y.raw(), x.data<bf16>(), ws[i % copies].weight.data<bf16>(), T, l.N, l.K, s); }),
                 bytes, flops);
    }
  }
  // Prefill-size GEMMs through linear() (cuBLASLt).
  for (int T : {512, 4096}) {
    for (const Lin& l : lins) {
      if (std::string(l.name) == "lm_head") continue;
      LinearWeight w;
      w.weight = rand_bf16(be, {l.N, l.K}, 5, 0.03f);
      Tensor x = rand_bf16(be, {T, l.K}, 6), y = be.empty({T, l.N}, DType::BF16);
      report(cat("gemm_", l.name), cat("T", T, " ", shp({l.N, l.K})),
             time_us(s, [&](int) { be.linear(y, x, w); }, 5, 9), 0, 2.0 * T * l.N * double(l.K));
    }
  }

  // --- whole-model weight stream at batch 1 (Qwen2.5-7B: 28 layers + lm_head), CUDA graph --
  if (!quick && !prefill_only) {
    const int L = 28;
    std::vector<LinearWeight> W;
    for (int l = 0; l < L; ++l)
      for (const Lin& li : lins)
        if (std::string(li.name) != "lm_head") {
          LinearWeight w;
          w.weight = rand_bf16(be, {li.N, li.K}, 1000 + l * 8 + W.size() % 4, 0.03f);
          W.push_back(w);
        }
    LinearWeight head;
    head.weight = rand_bf16(be, {152064, 3584}, 999, 0.03f);
    double total_bytes = 2.0 * 152064 * 3584;
    for (auto& w : W) total_bytes += 2.0 * w.weight.numel();
    for (int T : {1, 8}) {
      Tensor xin = rand_bf16(be, {T, 18944}, 3), xout = be.empty({T, 37888}, DType::BF16);
      Tensor lg = be.empty({T, 152064}, DType::F32);
      auto graph = be.capture([&] {
        for (auto& w : W) {
          Tensor xi = xin.view({T * 18944}).slice_rows(0, T * w.weight.dim(1)).view({T, w.weight.dim(1)});
          Tensor yo = xout.view({T * 37888}).slice_rows(0, T * w.weight.dim(0)).view({T, w.weight.dim(0)});
          be.linear(yo, xi, w);
        }
        Tensor xi = xin.view({T * 18944}).slice_rows(0, T * 3584).view({T, 3584});
        be.linear(lg, xi, head);
      });
      const double us = time_us(s, [&](int) { graph->replay(); }, 3, 9);
      report("decode_weights_7b_graph", cat("T", T, " 113 linears"), us, total_bytes, 0);
      std::printf("    -> %.1f tok/s per sequence at batch %d from the linears alone; HBM roofline at the copy rate %.1f tok/s\n",
                  1e6 / us, T, g_copy_gbps * 1e9 / total_bytes);
    }
  }

  // --- attention --------------------------------------------------------------------------
  {
    const int nq = 28, nkv = 4, D = 128, bs = 16;
    QKVLayout layout{nq, nkv, D};
    auto run_attn = [&](const std::string& name, std::vector<std::pair<int, int>> seqs) {
      const int B = static_cast<int>(seqs.size());
      std::vector<int32_t> cu(B + 1, 0), lens(B);
      int max_q = 0, max_k = 0, max_blocks = 0, total_blocks = 0;
      for (int b = 0; b < B; ++b) {
        cu[b + 1] = cu[b] + seqs[b].first;
        lens[b] = seqs[b].second;
        max_q = std::max(max_q, seqs[b].first);
        max_k = std::max(max_k, seqs[b].second);
        max_blocks = std::max(max_blocks, (seqs[b].second + bs - 1) / bs);
        total_blocks += (seqs[b].second + bs - 1) / bs;
      }
      std::vector<int32_t> tables(size_t(B) * max_blocks, 0);
      int next = 0;
      for (int b = 0; b < B; ++b)
        for (int j = 0; j < (seqs[b].second + bs - 1) / bs; ++j) tables[size_t(b) * max_blocks + j] = next++;
      const int T = cu[B];
      Tensor kc = rand_bf16(be, {total_blocks, bs, nkv, D}, 11), vc = rand_bf16(be, {total_blocks, bs, nkv, D}, 12);
      Tensor qkv = rand_bf16(be, {T, layout.row_stride()}, 13), out = be.empty({T, nq * D}, DType::BF16);
      AttentionMeta m;
      m.num_seqs = B;
      m.num_tokens = T;
      m.max_seqlen_q = max_q;
      m.max_seqlen_k = max_k;
      m.block_size = bs;
      m.max_blocks_per_seq = max_blocks;
      auto up = [&](const std::vector<int32_t>& v, Shape sh) {
        Tensor h = Tensor::empty(sh, DType::I32);
        std::memcpy(h.raw(), v.data(), v.size() * 4);
        return be.upload(h, DType::I32);
      };
      m.cu_seqlens_q = up(cu, {B + 1});
      m.seq_lens_k = up(lens, {B});
      m.block_tables = up(tables, {B, max_blocks});
      double pairs = 0, kv_bytes = 0;
      for (auto [q, k] : seqs) {
        for (int i = 0; i < q; ++i) pairs += k - q + i + 1;
        kv_bytes += 2.0 * k * nkv * D * 2;
      }
      const double flops = 4.0 * D * pairs * nq;
      const double us = time_us(s, [&](int) { be.attention(out, qkv, layout, kc, vc, m, 0.088f, 0); }, 5, 11);
      report(name, "nq28 nkv4 D128 bs16", us, kv_bytes + 2.0 * T * (layout.row_stride() + nq * D), flops);
    };
    run_attn("attn_prefill_4096", {{4096, 4096}});
    run_attn("attn_prefill_8x512", std::vector<std::pair<int, int>>(8, {512, 512}));
    run_attn("attn_chunk_512_ctx4096", {{512, 4096}});
    if (!prefill_only) {
      for (int ctx : {1024, 4096, 16384, 32768}) run_attn(cat("attn_decode_b1_ctx", ctx), {{1, ctx}});
      run_attn("attn_decode_b32_ctx2048", std::vector<std::pair<int, int>>(32, {1, 2048}));
      run_attn("attn_decode_b128_ctx1024", std::vector<std::pair<int, int>>(128, {1, 1024}));
      std::vector<std::pair<int, int>> mixed(31, {1, 2048});
      mixed.push_back({512, 1024});
      run_attn("attn_mixed_31dec_1x512", mixed);
    }
  }

  // --- elementwise ------------------------------------------------------------------------
  {
    const int H = 3584;
    for (int T : {1, 16384}) {
      Tensor x = rand_bf16(be, {T, H}, 21), r = rand_bf16(be, {T, H}, 22), o = be.empty({T, H}, DType::BF16);
      Tensor w = rand_f32(be, {H}, 23);
      report("rms_norm", cat("T", T, " H3584"), time_us(s, [&](int) { be.rms_norm(o, x, w, 1e-6f); }),
             2.0 * 2 * T * H, 0);
      report("add_rms_norm", cat("T", T, " H3584"),
             time_us(s, [&](int) { be.add_rms_norm(r, x, o, w, 1e-6f); }), 2.0 * 4 * T * H, 0);
    }
    for (int T : {1, 4096}) {
      const int I = 18944;
      Tensor gu = rand_bf16(be, {T, 2 * I}, 24), o = be.empty({T, I}, DType::BF16);
      report("silu_mul", cat("T", T, " I18944"), time_us(s, [&](int) { be.silu_mul(o, gu); }),
             2.0 * 3 * T * I, 0);
    }
    {
      const int T = 4096, V = 152064;
      Tensor table = rand_bf16(be, {V, H}, 25), o = be.empty({T, H}, DType::BF16);
      std::vector<int32_t> ids(T);
      for (int i = 0; i < T; ++i) ids[i] = (i * 7919) % V;
      Tensor h = Tensor::empty({T}, DType::I32);
      std::memcpy(h.raw(), ids.data(), T * 4);
      Tensor d = be.upload(h, DType::I32);
      report("embedding", "T4096 H3584", time_us(s, [&](int) { be.embedding(o, table, d); }), 2.0 * 2 * T * H, 0);
    }
    for (int T : {1, 4096}) {
      QKVLayout layout{28, 4, 128};
      const int nb = (T + 15) / 16 + 1;
      Tensor qkv = rand_bf16(be, {T, layout.row_stride()}, 26);
      Tensor kc = be.empty({nb, 16, 4, 128}, DType::BF16), vc = be.empty({nb, 16, 4, 128}, DType::BF16);
      Tensor cs = rand_f32(be, {T + 1, 128}, 27);
      std::vector<int32_t> rows(T);
      std::vector<int64_t> slots(T);
      for (int i = 0; i < T; ++i) rows[i] = i, slots[i] = i;
      Tensor hr = Tensor::empty({T}, DType::I32), hs = Tensor::empty({T}, DType::I64);
      std::memcpy(hr.raw(), rows.data(), T * 4);
      std::memcpy(hs.raw(), slots.data(), T * 8);
      Tensor dr = be.upload(hr, DType::I32), ds = be.upload(hs, DType::I64);
      Tensor qn = rand_f32(be, {128}, 28), kn = rand_f32(be, {128}, 29);
      report("qk_norm_rope_kv_write", cat("T", T, " 28/4x128"),
             time_us(s, [&](int) {
               be.qk_norm_rope_kv_write(qkv, layout, qn, kn, 1e-6f, RopeSpec{128, false}, cs, dr, ds, kc, vc);
             }),
             2.0 * T * (2 * layout.row_stride() + 2 * 4 * 128), 0);
    }
  }

  // --- sampling -------------------------------------------------------------------------
  for (int R : {1, 64}) {
    if (prefill_only) break;
    const int V = 152064;
    Tensor logits = rand_f32(be, {R, V}, 31, 8.0f);
    SampleBatch greedy, topkp;
    greedy.rows.resize(R);
    topkp.rows.resize(R);
    for (auto& r : greedy.rows) r.temperature = 0.0f;
    for (auto& r : topkp.rows) r.top_k = 50, r.top_p = 0.9f, r.temperature = 0.8f, r.num_top_logprobs = 5;
    SampleBatch nucleus = topkp;
    for (auto& r : nucleus.rows) r.top_k = 0;
    report("sample_greedy", cat("R", R, " V152064"), time_us(s, [&](int) { be.sample(logits, greedy); }, 3, 9),
           4.0 * R * V, 0);
    report("sample_topk50_topp0.9", cat("R", R, " V152064"),
           time_us(s, [&](int) { be.sample(logits, topkp); }, 3, 9), 4.0 * R * V, 0);
    report("sample_topp0.9", cat("R", R, " V152064"),
           time_us(s, [&](int) { be.sample(logits, nucleus); }, 3, 9), 4.0 * R * V, 0);
  }

  std::printf("\nSUMMARY (%s; copy %.0f GB/s, cuBLASLt bf16 %.0f TFLOP/s)\n", be.name().c_str(), g_copy_gbps,
              g_peak_tflops);
  std::printf("%-28s %-22s %10s %9s %7s %9s %7s\n", "kernel", "shape", "us", "GB/s", "%copy", "TFLOP/s", "%peak");
  for (const Row& r : g_rows) {
    if (r.name.rfind("gemv_w", 0) == 0) continue;  // variants: in the full log only
    std::printf("%-28s %-22s %10.2f %9.1f %6.1f%% %9.1f %6.1f%%\n", r.name.c_str(), r.shape.substr(0, 22).c_str(), r.us,
                r.gbps, 100.0 * r.gbps / g_copy_gbps, r.tflops, g_peak_tflops > 0 ? 100.0 * r.tflops / g_peak_tflops : 0.0);
  }
  return 0;
}
