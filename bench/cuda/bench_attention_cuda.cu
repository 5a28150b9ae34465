// Prefill attention benchmark (issue #7): the generic paged-attention kernel against the
// prefill specialisation, on one causal prompt of T tokens at the Qwen2.5-7B (28 q / 4 kv
// heads, D 128) and Qwen2.5-0.5B (14 q / 2 kv heads, D 64) shapes, block size 16 pages in
// shuffled order. FLOPs: 4 * D * n_q * (causal query-key pairs, T(T+1)/2), against a
// cuBLASLt bf16 8192^3 GEMM measured here. Each variant's output is compared with the
// generic kernel's (max |diff|). Usage: bench_attention_cuda [--quick]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/attention_variants.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "bench_timing.h"

using namespace tllm;
using tllm::cuda::bf16;
using tllm::bench::rand_bf16;
using tllm::bench::to_host_f32;

namespace {

double time_us(cudaStream_t s, const std::function<void()>& fn, int inner, int reps) {
  return tllm::bench::time_us(s, [&](int) { fn(); }, inner, reps, 2);
}

struct Shape3 {
  const char* name;
  int n_q, n_kv, D;
};

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to benchmark\n");
    return 0;
  }
  cuda::CudaBackend be(CudaBackendOptions{});
  cudaStream_t s = be.stream();
  std::printf("device: %s, %d SMs\n", be.name().c_str(), be.num_sms());

  const double peak = bench::gemm_peak_tflops(be);

  using K = cuda::AttentionKernel;
  struct Variant {
    const char* name;
    K kernel;
  };
  std::vector<Variant> variants = {{"generic", K::kGeneric}, {"prefill", K::kPrefill}, {"prefill_n32", K::kPrefillN32}};
  if (cuda::attention_prefill_sm90_available()) variants.push_back({"prefill_sm90", K::kPrefillSm90});
  else std::printf("(no wgmma prefill kernel here: not sm_90, no sm_90a code, or TLLM_ATTN_SM90=0)\n");
  variants.push_back({"auto", K::kAuto});
  const Shape3 shapes[] = {{"7B", 28, 4, 128}, {"0.5B", 14, 2, 64}};
  std::vector<int> lengths = {256, 512, 4096, 16384};
  if (quick) lengths = {4096};
  const int bs = 16;
  std::vector<std::string> summary;

  // seqs: (q_len, kv_len) per sequence; queries sit at the end of their keys (causal).
  auto run_case = [&](const Shape3& sh, const std::string& label, const std::vector<std::pair<int, int>>& seqs) {
    const int B = static_cast<int>(seqs.size());
    std::vector<int32_t> cu(B + 1, 0), lens(B);
    int max_q = 0, max_k = 0, max_blocks = 0, total_blocks = 0;
    double pairs = 0;
    for (int b = 0; b < B; ++b) {
      const auto [q, k] = seqs[b];
      cu[b + 1] = cu[b] + q;
      lens[b] = k;
      max_q = std::max(max_q, q);
      max_k = std::max(max_k, k);
      max_blocks = std::max(max_blocks, (k + bs - 1) / bs);
      total_blocks += (k + bs - 1) / bs;
      pairs += static_cast<double>(q) * (k - q) + 0.5 * q * (q + 1.0);
    }
    // Pages handed out in a shuffled order, as a block manager with churn would.
    std::vector<int32_t> perm(total_blocks);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
    std::vector<int32_t> tables(static_cast<size_t>(B) * max_blocks, 0);
    int next = 0;
    for (int b = 0; b < B; ++b)
      for (int j = 0; j < (seqs[b].second + bs - 1) / bs; ++j)
        tables[static_cast<size_t>(b) * max_blocks + j] = perm[next++];
    auto up = [&](const std::vector<int32_t>& v) {
      Tensor h = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
      std::memcpy(h.raw(), v.data(), v.size() * sizeof(int32_t));
      return be.upload(h, DType::I32);
    };
    Tensor d_cu = up(cu), d_lens = up(lens), d_tables = up(tables);
    const int T = cu[B];
    const int64_t q_stride = static_cast<int64_t>(sh.n_q + 2 * sh.n_kv) * sh.D;
    Tensor qkv = rand_bf16(be, {T, q_stride}, 13, 2.0f);
    Tensor kc = rand_bf16(be, {total_blocks, bs, sh.n_kv, sh.D}, 11, 2.0f);
    Tensor vc = rand_bf16(be, {total_blocks, bs, sh.n_kv, sh.D}, 12, 2.0f);
    Tensor out = be.empty({T, sh.n_q * sh.D}, DType::BF16);

    cuda::AttentionParams p{};
    p.q = qkv.data<bf16>();
    p.q_stride = q_stride;
    p.k_cache = kc.data<bf16>();
    p.v_cache = vc.data<bf16>();
    p.out = out.data<bf16>();
    p.cu_seqlens_q = d_cu.data<int32_t>();
    p.seq_lens_k = d_lens.data<int32_t>();
    p.block_tables = d_tables.data<int32_t>();
    p.num_seqs = B;
    p.num_tokens = T;
    p.max_seqlen_q = max_q;
    p.max_seqlen_k = max_k;
    p.block_size = bs;
    p.max_blocks_per_seq = max_blocks;
    p.n_q_heads = sh.n_q;
    p.n_kv_heads = sh.n_kv;
    p.head_dim = sh.D;
    p.scale = 1.0f / std::sqrt(static_cast<float>(sh.D));
    p.sliding_window = 0;
    p.num_sms = be.num_sms();
    p.workspace_bytes = cuda::attention_workspace_bytes(p);
    Tensor ws = be.empty({static_cast<int64_t>(std::max<size_t>(p.workspace_bytes, 256))}, DType::U8);
    p.workspace = static_cast<float*>(ws.raw());

    be.synchronize();  // inputs written before any variant runs
    const double flops = 4.0 * sh.D * sh.n_q * pairs;
    const int reps = pairs > 5e7 ? 5 : 11;
    std::vector<float> ref;
    double generic_us = 0;
    for (const Variant& v : variants) {
      CUDA_CHECK(cudaMemsetAsync(out.raw(), 0xff, out.numel() * sizeof(bf16), s));  // NaN
      cuda::attention_with_kernel(p, v.kernel, s);
      be.synchronize();
      std::vector<float> got = to_host_f32(be, out);
      double max_diff = 0;
      if (ref.empty()) {
        ref = got;
      } else {
        for (size_t i = 0; i < got.size(); ++i) {
          const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
          max_diff = std::isnan(d) ? INFINITY : std::max(max_diff, d);
        }
      }
      const double us = time_us(s, [&] { cuda::attention_with_kernel(p, v.kernel, s); }, 3, reps);
      if (v.kernel == K::kGeneric) generic_us = us;
      const double tflops = flops / us / 1e6;
      std::printf("attn %-5s %-22s %-12s %10.1f us  %6.1f TFLOP/s  %5.1f%% of GEMM peak  x%.2f vs generic  max|diff| %.3g\n",
                  sh.name, label.c_str(), v.name, us, tflops, 100.0 * tflops / peak, generic_us / us, max_diff);
      std::fflush(stdout);
      if (v.kernel == K::kAuto) {
        char line[256];
        std::snprintf(line, sizeof(line), "SUMMARY attn %s %s: %s kernel %.1f us, %.1f TFLOP/s (%.1f%% of peak), x%.2f vs generic",
                      sh.name, label.c_str(), !cuda::attention_uses_prefill_kernel(p)     ? "generic"
                      : cuda::attention_prefill_sm90_available() ? "prefill_sm90"
                                                                 : "prefill",
                      us,
                      tflops, 100.0 * tflops / peak, generic_us / us);
        summary.push_back(line);
      }
    }
    // The reference above is the generic kernel's first call: a second call must match it
    // bit for bit (the kernel is deterministic), else the inputs changed under it.
    CUDA_CHECK(cudaMemsetAsync(out.raw(), 0xff, out.numel() * sizeof(bf16), s));
    cuda::attention_with_kernel(p, K::kGeneric, s);
    be.synchronize();
    const std::vector<float> again = to_host_f32(be, out);
    double rerun_diff = 0;
    for (size_t i = 0; i < again.size(); ++i) {
      const double d = std::fabs(static_cast<double>(again[i]) - ref[i]);
      rerun_diff = std::isnan(d) ? INFINITY : std::max(rerun_diff, d);
    }
    std::printf("attn %-5s %-22s generic rerun vs first call: max|diff| %.3g%s\n", sh.name, label.c_str(), rerun_diff,
                rerun_diff == 0 ? "" : "  <- inputs not stable (bench bug)");
  };

  for (const Shape3& sh : shapes) {
    for (int T : lengths) run_case(sh, "prompt T=" + std::to_string(T), {{T, T}});
    if (!quick) {
      run_case(sh, "chunk 512 on ctx 4096", {{512, 4096}});
      run_case(sh, "chunk 256 on ctx 8192", {{256, 8192}});
      run_case(sh, "chunk 2048 on ctx 16384", {{2048, 16384}});
      run_case(sh, "8 prompts x 512", std::vector<std::pair<int, int>>(8, {512, 512}));
      // A serving step: a prompt chunk beside 16 decode rows at 4,096 keys.
      std::vector<std::pair<int, int>> mixed(16, {1, 4096});
      mixed.insert(mixed.begin(), {512, 512});
      run_case(sh, "chunk 512 + 16 decodes", mixed);
    }
  }
  for (const std::string& l : summary) std::printf("%s\n", l.c_str());
  return 0;
}
