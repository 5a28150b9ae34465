// qk_norm_rope_kv_write and paged attention (prefill, decode, mixed batches, GQA, block
// sizes, split-KV for long contexts, sliding window, a decode step of rope then attention)
// against the double references.
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/attention_variants.h"
#include "kernels/cuda/cuda_test_util.h"
#include "kernels/reference/reference.h"

namespace tllm::test {
namespace {

using CudaAttention = CudaTest;

struct Seq {
  int q_len, kv_len;
};

// The AttentionParams that CudaBackend::attention builds, with the fields the kernel choice
// reads (pointers left null): to assert which kernel a case exercises.
cuda::AttentionParams routing_params(const cuda::CudaBackend& be, int n_q, int n_kv, int D,
                                     const std::vector<Seq>& seqs) {
  cuda::AttentionParams p{};
  p.num_seqs = static_cast<int>(seqs.size());
  for (const Seq& s : seqs) {
    p.num_tokens += s.q_len;
    p.max_seqlen_q = std::max(p.max_seqlen_q, s.q_len);
    p.max_seqlen_k = std::max(p.max_seqlen_k, s.kv_len);
  }
  p.n_q_heads = n_q;
  p.n_kv_heads = n_kv;
  p.head_dim = D;
  p.num_sms = be.num_sms();
  return p;
}

// ref::attention_dense restricted to the tokens with checked[t] (others left untouched), with
// Q converted once and contiguous float64 dot products: the 8 x 512-token batches at the
// 7B shape would take ~40 s through the generic reference.
void sampled_attention_ref(Tensor& out, const std::vector<char>& checked, const Tensor& qkv, const QKVLayout& L,
                           const std::vector<Tensor>& k, const std::vector<Tensor>& v, const std::vector<int32_t>& cu,
                           float scale, int window) {
  const int D = L.head_dim, G = L.n_q_heads / L.n_kv_heads, n_kv = L.n_kv_heads;
  const int64_t stride = L.row_stride();
  std::vector<double> q(D), s, acc(D);
  for (size_t b = 0; b + 1 < cu.size(); ++b) {
    const int q_len = cu[b + 1] - cu[b];
    const int k_len = static_cast<int>(k[b].dim(0));
    const float* kp = k[b].data<float>();
    const float* vp = v[b].data<float>();
    for (int i = 0; i < q_len; ++i) {
      const int64_t t = cu[b] + i;
      if (!checked[t]) continue;
      const int pos = k_len - q_len + i;
      const int lo = window > 0 ? std::max(0, pos - window + 1) : 0;
      for (int h = 0; h < L.n_q_heads; ++h) {
        const int g = h / G;
        for (int d = 0; d < D; ++d) q[d] = value_at(qkv, t * stride + static_cast<int64_t>(h) * D + d);
        s.assign(pos + 1 - lo, 0.0);
        double mx = -INFINITY;
        for (int j = lo; j <= pos; ++j) {
          const float* kr = kp + (static_cast<int64_t>(j) * n_kv + g) * D;
          double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
          for (int d = 0; d < D; d += 4) {
            a0 += q[d] * kr[d];
            a1 += q[d + 1] * kr[d + 1];
            a2 += q[d + 2] * kr[d + 2];
            a3 += q[d + 3] * kr[d + 3];
          }
          s[j - lo] = ((a0 + a1) + (a2 + a3)) * scale;
          mx = std::max(mx, s[j - lo]);
        }
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - mx));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int j = lo; j <= pos; ++j) {
          const float* vr = vp + (static_cast<int64_t>(j) * n_kv + g) * D;
          const double w = s[j - lo];
          for (int d = 0; d < D; ++d) acc[d] += w * vr[d];
        }
        for (int d = 0; d < D; ++d)
          out.data<float>()[t * L.n_q_heads * D + static_cast<int64_t>(h) * D + d] = static_cast<float>(acc[d] / z);
      }
    }
  }
}

// Each of `kernels` on the same inputs against one float64 reference: kAuto through
// CudaBackend::attention, the others forced through cuda::attention_with_kernel. row_tol > 0
// also bounds the worst (token, head) row's relative error.
void attention_case(CudaTest& t, cuda::CudaBackend& be, uint64_t seed, int n_q, int n_kv, int D,
                    const std::vector<Seq>& seqs, int block_size, int window, double tol = 1.2e-2,
                    const std::vector<cuda::AttentionKernel>& kernels = {cuda::AttentionKernel::kAuto},
                    double row_tol = 0.0, int token_every = 1) {
  std::mt19937_64 rng(seed);
  QKVLayout L{n_q, n_kv, D};
  const int B = static_cast<int>(seqs.size());
  std::vector<int32_t> cu(B + 1, 0);
  std::vector<Tensor> k, v;
  for (int b = 0; b < B; ++b) {
    cu[b + 1] = cu[b] + seqs[b].q_len;
    k.push_back(randn({seqs[b].kv_len, n_kv, D}, rng, DType::F32));
    v.push_back(randn({seqs[b].kv_len, n_kv, D}, rng, DType::F32));
    ref::round_to(k.back(), DType::BF16);
    ref::round_to(v.back(), DType::BF16);
  }
  const int T = cu[B];
  Tensor qkv = randn({T, L.row_stride()}, rng, DType::BF16);
  ref::PagedKV kv = ref::make_paged_kv(k, v, cu, block_size, DType::BF16, 3, seed + 1);
  AttentionMeta m = kv.meta;
  m.cu_seqlens_q = be.upload(kv.meta.cu_seqlens_q, DType::I32);
  m.seq_lens_k = be.upload(kv.meta.seq_lens_k, DType::I32);
  m.block_tables = be.upload(kv.meta.block_tables, DType::I32);
  Tensor kc = be.upload(kv.k_cache, DType::BF16), vc = be.upload(kv.v_cache, DType::BF16);
  Tensor out_h = Tensor::empty({T, n_q * D}, DType::BF16);
  poison(out_h);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  Tensor d_qkv = be.upload(qkv, DType::BF16);
  Tensor want = Tensor::empty({T, n_q * D}, DType::F32);
  // Tokens compared: all, or (token_every > 1, long batches) a sample that still covers
  // every 128-row tile and both ends of every sequence.
  std::vector<char> checked(T, 1);
  if (token_every <= 1) {
    ref::attention_dense(want, qkv, L, k, v, cu, scale, window);
  } else {
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < seqs[b].q_len; ++i)
        checked[cu[b] + i] = i % token_every == 0 || i == 1 || i + 1 == seqs[b].q_len;
    sampled_attention_ref(want, checked, qkv, L, k, v, cu, scale, window);
  }
  for (cuda::AttentionKernel kernel : kernels) {
    Tensor out = be.upload(out_h, DType::BF16);  // NaN: unwritten rows fail
    if (kernel == cuda::AttentionKernel::kAuto) {
      be.attention(out, d_qkv, L, kc, vc, m, scale, window);
    } else {
      cuda::AttentionParams p = routing_params(be, n_q, n_kv, D, seqs);
      p.q = d_qkv.data<cuda::bf16>();
      p.q_stride = L.row_stride();
      p.k_cache = kc.data<cuda::bf16>();
      p.v_cache = vc.data<cuda::bf16>();
      p.out = out.data<cuda::bf16>();
      p.cu_seqlens_q = m.cu_seqlens_q.data<int32_t>();
      p.seq_lens_k = m.seq_lens_k.data<int32_t>();
      p.block_tables = m.block_tables.data<int32_t>();
      p.block_size = m.block_size;
      p.max_blocks_per_seq = m.max_blocks_per_seq;
      p.scale = scale;
      p.sliding_window = window;
      p.workspace_bytes = cuda::attention_workspace_bytes(p);
      Tensor ws = be.empty({static_cast<int64_t>(std::max<size_t>(p.workspace_bytes, 256))}, DType::U8);
      p.workspace = static_cast<float*>(ws.raw());
      cuda::attention_with_kernel(p, kernel, be.stream());
      be.synchronize();  // ws is freed at the end of this scope
    }
    const Tensor got = be.download(out);
    std::string desc = "kernel=" + std::to_string(static_cast<int>(kernel)) + " n_q=" + std::to_string(n_q) +
                       " n_kv=" + std::to_string(n_kv) + " D=" + std::to_string(D) + " bs=" +
                       std::to_string(block_size) + " window=" + std::to_string(window) + " seqs:";
    for (auto s : seqs) desc += " (" + std::to_string(s.q_len) + "," + std::to_string(s.kv_len) + ")";
    if (token_every > 1) desc += " (every " + std::to_string(token_every) + "th token checked)";
    if (token_every <= 1) {
      EXPECT_LT(rel_err(got, want), tol) << desc;
    }
    // Worst (token, head) row: the norm over the whole output would hide one wrong row.
    double worst = 0, num_all = 0, den_all = 0;
    int64_t worst_row = -1;
    for (int64_t r = 0; r < static_cast<int64_t>(T) * n_q; ++r) {
      if (!checked[r / n_q]) continue;
      double num = 0, den = 0;
      for (int d = 0; d < D; ++d) {
        const double a = value_at(got, r * D + d), b = value_at(want, r * D + d);
        num += (a - b) * (a - b);
        den += b * b;
      }
      num_all += num;
      den_all += den;
      const double e = std::isfinite(num) ? std::sqrt(num / std::max(den, 1e-30)) : INFINITY;
      if (!(e <= worst)) worst = e, worst_row = r;
    }
    if (token_every > 1) {
      const double e = std::isfinite(num_all) ? std::sqrt(num_all / std::max(den_all, 1e-30)) : INFINITY;
      EXPECT_LT(e, tol) << desc;
    }
    if (row_tol <= 0) continue;
    EXPECT_LT(worst, row_tol) << desc << " (token " << worst_row / n_q << ", head " << worst_row % n_q << ")";
  }
}

TEST_F(CudaAttention, PrefillSingleSequence) {
  attention_case(*this, be(), 21, 4, 4, 64, {{37, 37}}, 16, 0);
  attention_case(*this, be(), 22, 8, 8, 128, {{700, 700}}, 16, 0);
  attention_case(*this, be(), 23, 2, 1, 128, {{129, 129}}, 32, 0);
}

TEST_F(CudaAttention, MixedPrefillAndDecodeGqa) {
  const std::vector<Seq> mixed = {{1, 300}, {17, 17}, {5, 100}, {1, 1}, {64, 64}, {130, 200}};
  for (int bs : {16, 32}) {
    attention_case(*this, be(), 31, 8, 4, 64, mixed, bs, 0);
    attention_case(*this, be(), 32, 28, 4, 128, mixed, bs, 0);
    attention_case(*this, be(), 33, 14, 7, 128, mixed, bs, 0);
  }
}

TEST_F(CudaAttention, LongDecodeSplitKv) {
  attention_case(*this, be(), 41, 14, 2, 128, {{1, 5000}}, 16, 0);
  attention_case(*this, be(), 42, 28, 4, 128, {{1, 2000}, {1, 1500}, {1, 33}}, 16, 0);
  attention_case(*this, be(), 43, 8, 8, 64, {{1, 4097}}, 32, 0);
  attention_case(*this, be(), 44, 7, 1, 128, {{3, 3000}}, 16, 0);  // speculative-style q_len 3
  attention_case(*this, be(), 45, 7, 1, 128, {{2, 3000}, {1, 17}}, 16, 0);  // 14 rows: split-keys tile
  attention_case(*this, be(), 46, 16, 1, 64, {{1, 700}, {1, 64}}, 32, 0);   // G = 16
  attention_case(*this, be(), 47, 4, 2, 256, {{1, 2500}}, 16, 0);
}

TEST_F(CudaAttention, ManyDecodeSequences) {
  std::mt19937_64 rng(5);
  std::vector<Seq> seqs;
  std::uniform_int_distribution<int> d(1, 600);
  for (int i = 0; i < 40; ++i) seqs.push_back({1, d(rng)});
  attention_case(*this, be(), 51, 28, 4, 128, seqs, 16, 0);
}

TEST_F(CudaAttention, SlidingWindow) {
  attention_case(*this, be(), 61, 8, 2, 128, {{40, 100}, {1, 300}, {1, 20}, {70, 70}}, 16, 33);
  attention_case(*this, be(), 62, 4, 4, 64, {{1, 3000}}, 16, 100);
}

// Head dim 32 (small draft models, e.g. the shipped demo draft): the generic kernel with its
// own swizzle; prefill, chunks on a cache, decode rows, split keys, GQA, a sliding window.
TEST_F(CudaAttention, HeadDim32) {
  attention_case(*this, be(), 81, 4, 2, 32, {{37, 37}, {1, 90}, {150, 300}, {1, 1}}, 16, 0);
  attention_case(*this, be(), 82, 8, 1, 32, {{1, 3000}, {2, 700}}, 16, 0);
  attention_case(*this, be(), 83, 4, 4, 32, {{200, 200}, {1, 300}}, 32, 33);
}

TEST_F(CudaAttention, HeadDim256) {
  attention_case(*this, be(), 71, 4, 2, 256, {{20, 50}, {1, 70}, {1, 1000}}, 16, 0);
}

// The prefill kernel forced on varlen batches (it handles any batch without split-KV):
// long prefills beside decode rows, chunked prefill on top of an existing cache, GQA ratios
// 1/4/7/8, head_dim 64 and 128, block size 16 pages in shuffled order, sliding windows,
// tiles that end mid-page and mid-tile; both key-tile widths (and the generic kernel).
// The prefill kernels a test runs: both mma.sync widths, the wgmma kernel where this device
// and build have it, and the generic kernel.
std::vector<cuda::AttentionKernel> prefill_kernels(bool with_auto) {
  using K = cuda::AttentionKernel;
  std::vector<K> k = {K::kPrefill, K::kPrefillN32, K::kGeneric};
  if (cuda::attention_prefill_sm90_available()) k.push_back(K::kPrefillSm90);
  if (with_auto) k.insert(k.begin(), K::kAuto);
  return k;
}

// On an sm_90 GPU the build's sm_90a code must be found, else prefill silently falls back
// to the mma.sync kernel (TLLM_ATTN_SM90=0 turns it off on purpose).
TEST_F(CudaAttention, WgmmaPrefillAvailableOnHopper) {
  int dev = 0, major = 0, minor = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev), cudaSuccess);
  const char* env = std::getenv("TLLM_ATTN_SM90");
  if (major != 9 || minor != 0 || (env != nullptr && env[0] == '0')) {
    EXPECT_FALSE(cuda::attention_prefill_sm90_available() && major != 9);
    GTEST_SKIP() << "not an sm_90 device (or TLLM_ATTN_SM90=0)";
  }
  EXPECT_TRUE(cuda::attention_prefill_sm90_available());
}

TEST_F(CudaAttention, PrefillKernelVarlenMatchesReference) {
  const std::vector<cuda::AttentionKernel> kernels = prefill_kernels(false);
  // GQA 7 (Qwen2.5-7B heads): one long prefill, a chunk on a 300-key cache, decode rows.
  attention_case(*this, be(), 101, 28, 4, 128, {{333, 333}, {1, 90}, {150, 300}, {19, 19}, {1, 1}}, 16, 0,
                 1.2e-2, kernels, 5e-2);
  // GQA 1 and 8 at D 64, GQA 4 at D 128.
  attention_case(*this, be(), 102, 8, 8, 64, {{257, 257}, {64, 200}, {3, 70}}, 16, 0, 1.2e-2, kernels, 5e-2);
  attention_case(*this, be(), 103, 8, 1, 64, {{129, 129}, {40, 1000}, {1, 33}}, 16, 0, 1.2e-2, kernels, 5e-2);
  attention_case(*this, be(), 104, 16, 4, 128, {{200, 200}, {77, 377}}, 16, 0, 1.2e-2, kernels, 5e-2);
  // Qwen2.5-0.5B heads (GQA 7, D 64).
  attention_case(*this, be(), 105, 14, 2, 64, {{300, 300}, {128, 640}}, 16, 0, 1.2e-2, kernels, 5e-2);
  // Sliding windows: narrower than a tile, wider than one, on a chunked prefill.
  attention_case(*this, be(), 106, 8, 2, 128, {{200, 200}, {70, 300}, {1, 300}}, 16, 33, 1.2e-2, kernels, 5e-2);
  attention_case(*this, be(), 107, 14, 2, 64, {{260, 500}, {90, 90}}, 16, 100, 1.2e-2, kernels, 5e-2);
  // Block size 32 and a sequence whose rows fill exactly one 128-row tile.
  attention_case(*this, be(), 108, 4, 4, 128, {{128, 128}, {256, 300}}, 32, 0, 1.2e-2, kernels, 5e-2);
  // More than 1,024 keys (the wgmma kernel's 128-key tiles; 64-key tiles below that): a
  // chunk on a long cache ending mid-tile, beside a decode row and a short prompt.
  attention_case(*this, be(), 109, 28, 4, 128, {{160, 1500}, {1, 1100}, {70, 70}}, 16, 0, 1.2e-2, kernels, 5e-2);
  attention_case(*this, be(), 110, 14, 2, 64, {{130, 1300}, {40, 1030}}, 32, 0, 1.2e-2, kernels, 5e-2);
}

// Batched prompts in one varlen launch (issue #7: the bench row "attn 7B 8 prompts x 512"
// showed max|diff| 1.9 between the prefill and generic kernels). The exact bench layout
// (8 x 512 tokens, 28 q / 4 kv heads, D 128, block size 16: 3584 rows = 28 tiles of 128 per
// sequence) and neighbours: 2..8 sequences, row counts that are and are not multiples of
// the 128- and 64-row tiles, chunks on a cache, G 7 and 8, D 64 and 128; every kernel
// against the float64 reference on every 3rd token (all tiles, both ends of each sequence).
TEST_F(CudaAttention, PrefillKernelBatchedPromptsMatchesReference) {
  const std::vector<cuda::AttentionKernel> all = prefill_kernels(true);
  struct Case {
    int n_q, n_kv, D;
    std::vector<Seq> seqs;
    int block_size;
  };
  const std::vector<Case> cases = {
      {28, 4, 128, std::vector<Seq>(8, Seq{512, 512}), 16},  // the bench row
      {14, 2, 64, std::vector<Seq>(8, Seq{512, 512}), 16},   // its 0.5B twin
      {28, 4, 128, std::vector<Seq>(2, Seq{512, 512}), 16},
      {28, 4, 128, {{512, 512}, {300, 300}, {513, 513}}, 16},              // 3584, 2100, 3591 rows
      {28, 4, 128, {{160, 160}, {512, 512}, {128, 640}, {384, 384}, {37, 37}}, 16},
      {32, 4, 128, std::vector<Seq>(4, Seq{256, 256}), 16},                 // G 8: 16 tiles each
      {32, 4, 128, {{256, 256}, {200, 200}, {129, 129}, {16, 16}, {300, 300}, {256, 512}}, 16},
      {8, 1, 64, std::vector<Seq>(6, Seq{384, 384}), 16},                   // G 8, D 64
      {14, 2, 64, {{512, 512}, {100, 100}, {511, 511}, {64, 64}, {256, 256}, {512, 1024}, {1, 77}}, 32},
  };
  uint64_t seed = 201;
  for (const Case& c : cases) {
    attention_case(*this, be(), seed++, c.n_q, c.n_kv, c.D, c.seqs, c.block_size, 0, 1.2e-2, all, 5e-2, 3);
  }
  // The bench row must still take the prefill kernel through cuda::attention.
  EXPECT_TRUE(cuda::attention_uses_prefill_kernel(
      routing_params(be(), 28, 4, 128, std::vector<Seq>(8, Seq{512, 512}))));
}

// Shapes that cuda::attention itself routes to the prefill kernel (so the dispatch and the
// launcher are what is tested), against the float64 reference.
TEST_F(CudaAttention, PrefillDispatchMatchesReference) {
  struct Case {
    int n_q, n_kv, D;
    std::vector<Seq> seqs;
    int window;
  };
  // Many moderate sequences reach the generic kernel's no-split tile count (3 waves of
  // 64-row tiles on 132 SMs) while keeping the float64 reference cheap.
  const std::vector<Case> cases = {
      // Qwen2.5-7B heads: prompts, a chunked prefill on a 250-key cache, a decode row.
      {28, 4, 128, {{300, 300}, {200, 200}, {150, 150}, {130, 130}, {100, 350}, {64, 64}, {1, 500}}, 0},
      // Qwen2.5-0.5B heads (D 64).
      {14, 2, 64, std::vector<Seq>(12, Seq{160, 160}), 0},
      // Sliding window on two prompts.
      {28, 4, 128, {{500, 500}, {450, 450}}, 64},
  };
  uint64_t seed = 111;
  for (const Case& c : cases) {
    EXPECT_TRUE(cuda::attention_uses_prefill_kernel(routing_params(be(), c.n_q, c.n_kv, c.D, c.seqs)))
        << "case " << seed << " no longer routes to the prefill kernel";
    attention_case(*this, be(), seed++, c.n_q, c.n_kv, c.D, c.seqs, 16, c.window, 1.2e-2,
                   {cuda::AttentionKernel::kAuto, cuda::AttentionKernel::kGeneric}, 5e-2);
  }
  // Grids below 3 waves take the wgmma kernel where it exists (its keys split where the grid
  // is below one wave), else the generic kernel with split keys.
  const std::vector<Case> small = {{28, 4, 128, {{256, 2048}}, 0},            // 56 blocks: 2 parts
                                   {28, 4, 128, {{512, 512}}, 0},             // 112 blocks: whole
                                   {28, 4, 128, {{300, 300}, {1, 700}}, 0},   // a decode row beside
                                   {14, 2, 64, {{512, 1024}}, 0},
                                   {28, 4, 128, {{64, 3000}, {40, 1000}}, 0},  // 24 blocks: 5 parts
                                   {14, 2, 64, {{160, 2500}}, 0}};             // 18 blocks: 7 parts
  for (const Case& c : small) {
    const bool wgmma = cuda::attention_uses_prefill_kernel(routing_params(be(), c.n_q, c.n_kv, c.D, c.seqs));
    EXPECT_EQ(wgmma, cuda::attention_prefill_sm90_available()) << "case " << seed;
    attention_case(*this, be(), seed++, c.n_q, c.n_kv, c.D, c.seqs, 16, c.window, 1.2e-2,
                   {cuda::AttentionKernel::kAuto, cuda::AttentionKernel::kGeneric}, 5e-2);
  }

  // Decode and small batches stay on the generic kernel.
  EXPECT_FALSE(cuda::attention_uses_prefill_kernel(routing_params(be(), 28, 4, 128, {{1, 4096}})));
  EXPECT_FALSE(cuda::attention_uses_prefill_kernel(routing_params(be(), 28, 4, 128, {{17, 17}, {1, 300}})));
  EXPECT_FALSE(cuda::attention_uses_prefill_kernel(routing_params(be(), 4, 2, 256, {{4096, 4096}})));
}

TEST_F(CudaAttention, QkNormRopeKvWriteMatchesReference) {
  struct Case {
    int n_q, n_kv, D, rot;
    bool interleaved, norm;
    int block_size;
  };
  // Without norms, split-half over the whole head at 64 / 128 / 256: the block-per-token kernel
  // (the 7B heads among them), which must also give the warp-per-head kernel's bits.
  const std::vector<Case> cases = {{4, 4, 64, 64, false, false, 16},   {14, 2, 64, 64, false, true, 32},
                                   {28, 4, 128, 128, false, true, 16}, {7, 1, 128, 64, true, false, 16},
                                   {8, 2, 256, 256, false, true, 16},  {28, 4, 128, 128, false, false, 16},
                                   {8, 2, 256, 256, false, false, 32}, {60, 2, 64, 64, false, false, 16},
                                   {4, 2, 96, 64, true, true, 16}};  // 96: the one-element-per-lane path
  std::mt19937_64 rng(81);
  for (const Case& c : cases) {
    QKVLayout L{c.n_q, c.n_kv, c.D};
    const int T = 19, rows = 64, num_blocks = 6;
    Tensor qkv = randn({T, L.row_stride()}, rng, DType::BF16, 1.5f);
    const Tensor cos_sin = cos_sin_table(rows, c.rot, 10000.0);
    std::vector<int32_t> rope_rows(T);
    std::vector<int64_t> slots(T);
    std::vector<int64_t> perm(num_blocks * c.block_size);
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int t = 0; t < T; ++t) {
      rope_rows[t] = static_cast<int32_t>((t * 7 + 3) % rows);
      slots[t] = t % 5 == 4 ? -1 : perm[t];
    }
    Tensor qn, kn;
    if (c.norm) {
      qn = randn({c.D}, rng, DType::BF16, 0.2f, 1.0f);
      kn = randn({c.D}, rng, DType::BF16, 0.2f, 1.0f);
    }
    Tensor kc = randn({num_blocks, c.block_size, c.n_kv, c.D}, rng, DType::BF16);
    Tensor vc = randn({num_blocks, c.block_size, c.n_kv, c.D}, rng, DType::BF16);
    RopeSpec rope{c.rot, c.interleaved};
    Tensor d_qkv = dev(qkv), d_kc = dev(kc), d_vc = dev(vc);
    be().qk_norm_rope_kv_write(d_qkv, L, c.norm ? dev(qn) : Tensor(), c.norm ? dev(kn) : Tensor(), 1e-6f, rope,
                               dev(cos_sin), dev(ints(rope_rows)), dev(ints64(slots)), d_kc, d_vc);
    Tensor w_qkv = as_f32(qkv), w_kc = as_f32(kc), w_vc = as_f32(vc);
    ref::qk_norm_rope_kv_write(w_qkv, L, qn, kn, 1e-6f, rope, cos_sin, ints(rope_rows), ints64(slots), w_kc, w_vc);
    const std::string desc = "n_q=" + std::to_string(c.n_q) + " D=" + std::to_string(c.D) +
                             " rot=" + std::to_string(c.rot) + " norm=" + std::to_string(c.norm);
    EXPECT_LT(rel_err(host(d_qkv), w_qkv), 6e-3) << desc;
    EXPECT_LT(rel_err(host(d_kc), w_kc), 6e-3) << desc;
    EXPECT_LT(rel_err(host(d_vc), w_vc), 1e-6) << desc;
    Tensor d_qkv2 = dev(qkv), d_kc2 = dev(kc), d_vc2 = dev(vc);
    be().set_rope_token_blocks(false);
    be().qk_norm_rope_kv_write(d_qkv2, L, c.norm ? dev(qn) : Tensor(), c.norm ? dev(kn) : Tensor(), 1e-6f, rope,
                               dev(cos_sin), dev(ints(rope_rows)), dev(ints64(slots)), d_kc2, d_vc2);
    be().set_rope_token_blocks(true);
    expect_same_bits(be(), d_qkv, d_qkv2, desc + ": qkv, token blocks against a warp per head");
    expect_same_bits(be(), d_kc, d_kc2, desc + ": k cache");
    expect_same_bits(be(), d_vc, d_vc2, desc + ": v cache");
  }
}

// A decode step as the model runs it: qk_norm_rope_kv_write (or, without q/k norms, the
// q|k|v GEMV with the rotation and cache writes in its epilogue: linear_rope_kv_write; or the
// rotation kernel releasing attention at its entry, as on the quantized path), then attention
// on the same stream (both launched with PDL, so attention starts while the kernel before it
// still runs, and issues the loads of earlier steps' keys before its griddepcontrol.wait;
// this test guards that chain).
// Each round the new slots hold 1000 in K and V before the step: an attention that read a
// new key before the rope kernel wrote it would be far off the reference (computed from the
// roped q and the cache after the step), and would differ from a second attention run alone
// on the same inputs afterwards, which must give the same bits. Splits 1 and > 1; per split
// count: a partition holding only the new key, first tiles that mix cached and new keys,
// two new keys per sequence (astride two partitions), a sequence whose only key is new, a
// sliding window (empty partitions).
TEST_F(CudaAttention, RopeThenAttentionDecodeStep) {
  const int n_q = 28, n_kv = 4, D = 128, block_size = 16, rounds = 20;  // Qwen2.5-7B heads
  const int max_len = 2000;
  const QKVLayout L{n_q, n_kv, D};
  const RopeSpec rope{D, false};
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  std::mt19937_64 rng(91);
  const Tensor d_cos_sin = dev(cos_sin_table(max_len, D, 10000.0));
  const Tensor qn = randn({D}, rng, DType::BF16, 0.2f, 1.0f), kn = randn({D}, rng, DType::BF16, 0.2f, 1.0f);
  const Tensor d_qn = dev(qn), d_kn = dev(kn);

  // The split count depends on the batch shape (sequences, tokens, longest q and k), not on
  // the other lengths: with S splits, a sequence of 64 (S - 1) + 1 keys has 64-key
  // partitions and its last one holds only the new key.
  const std::vector<Seq> shape = {{1, max_len}, {1, 1}, {1, 1}, {2, 1}, {1, 1}, {1, 1}};
  const int S = cuda::attention_splits(routing_params(be(), n_q, n_kv, D, shape));
  ASSERT_GT(S, 1);
  const int edge = 64 * (S - 1);
  struct Config {
    std::vector<Seq> seqs;
    int window;
    bool norm;
    bool fused = false;  // qkv from linear_rope_kv_write (T = 7 <= 8, no norms)
    bool early = false;  // the rotation kernel releasing attention at its entry (the quantized path's
                         // chain: the fused GEMV turned off, no norms)
  };
  const std::vector<Config> configs = {
      {{{1, max_len}, {1, edge + 1}, {1, edge + 30}, {2, edge + 1}, {1, 100}, {1, 1}}, 0, true},
      {{{1, max_len}, {1, edge + 1}, {1, edge + 30}, {2, edge + 1}, {1, 100}, {1, 1}}, 100, false},
      {{{1, 1}, {1, 17}, {1, 64}, {1, 65}, {2, 130}, {1, 256}}, 0, true},  // splits 1
      {{{1, max_len}, {1, edge + 1}, {1, edge + 30}, {2, edge + 1}, {1, 100}, {1, 1}}, 0, false, true},
      {{{1, 1}, {1, 17}, {1, 64}, {1, 65}, {2, 130}, {1, 256}}, 0, false, true},
      {{{1, max_len}, {1, edge + 1}, {1, edge + 30}, {2, edge + 1}, {1, 100}, {1, 1}}, 0, false, false, true},
      {{{1, 1}, {1, 17}, {1, 64}, {1, 65}, {2, 130}, {1, 256}}, 100, false, false, true},
  };
  const int K = 192;  // the fused configs' q|k|v projection: [T, K] x [row_stride, K]^T
  LinearWeight w;
  w.weight = dev(randn({L.row_stride(), K}, rng, DType::BF16, 1.0f / std::sqrt(static_cast<float>(K))));
  w.bias = dev(randn({L.row_stride()}, rng, DType::F32, 0.5f));
  w.out_features = static_cast<int>(L.row_stride());
  w.in_features = K;
  for (const Config& c : configs) {
    const cuda::AttentionParams rp = routing_params(be(), n_q, n_kv, D, c.seqs);
    ASSERT_TRUE(cuda::attention_uses_split_keys(rp));
    ASSERT_EQ(cuda::attention_splits(rp), c.seqs[0].kv_len == max_len ? S : 1);
    const int B = static_cast<int>(c.seqs.size());
    std::vector<int32_t> cu(B + 1, 0);
    for (int b = 0; b < B; ++b) cu[b + 1] = cu[b] + c.seqs[b].q_len;
    const int T = cu[B];
    std::string desc = "window=" + std::to_string(c.window) + " splits=" + std::to_string(cuda::attention_splits(rp)) +
                       " fused=" + std::to_string(c.fused) + " early=" + std::to_string(c.early) + " seqs:";
    for (const Seq& s : c.seqs) desc += " (" + std::to_string(s.q_len) + "," + std::to_string(s.kv_len) + ")";

    for (int round = 0; round < rounds; ++round) {
      const std::string where = desc + " round " + std::to_string(round);
      // Cached keys random; this step's positions hold 1000 until the rope kernel writes them.
      std::vector<Tensor> k, v;
      for (const Seq& s : c.seqs) {
        k.push_back(randn({s.kv_len, n_kv, D}, rng, DType::F32));
        v.push_back(randn({s.kv_len, n_kv, D}, rng, DType::F32));
        ref::round_to(k.back(), DType::BF16);
        ref::round_to(v.back(), DType::BF16);
        for (int64_t i = static_cast<int64_t>(s.kv_len - s.q_len) * n_kv * D; i < k.back().numel(); ++i)
          k.back().data<float>()[i] = v.back().data<float>()[i] = 1000.0f;
      }
      const ref::PagedKV kv = ref::make_paged_kv(k, v, cu, block_size, DType::BF16, 3, 1000 + round);
      const int width = kv.meta.max_blocks_per_seq;
      std::vector<int64_t> slots(T);
      std::vector<int32_t> positions(T);
      for (int b = 0; b < B; ++b)
        for (int i = 0; i < c.seqs[b].q_len; ++i) {
          const int pos = c.seqs[b].kv_len - c.seqs[b].q_len + i;
          positions[cu[b] + i] = pos;
          slots[cu[b] + i] = static_cast<int64_t>(kv.block_tables[b * width + pos / block_size]) * block_size +
                             pos % block_size;
        }
      AttentionMeta m = kv.meta;
      m.cu_seqlens_q = be().upload(kv.meta.cu_seqlens_q, DType::I32);
      m.seq_lens_k = be().upload(kv.meta.seq_lens_k, DType::I32);
      m.block_tables = be().upload(kv.meta.block_tables, DType::I32);
      Tensor d_qkv = dev(randn({T, L.row_stride()}, rng, DType::BF16));
      Tensor d_kc = dev(kv.k_cache), d_vc = dev(kv.v_cache);
      const Tensor d_slots = dev(ints64(slots)), d_rows = dev(ints(positions));
      Tensor d_out = dev_poisoned({T, n_q * D}, DType::BF16), d_again = dev_poisoned({T, n_q * D}, DType::BF16);

      if (c.fused || c.early) {
        const Tensor none, d_x = dev(randn({T, K}, rng, DType::BF16, 2.0f));
        const Tensor& qn_used = c.norm ? d_qn : none;
        const Tensor& kn_used = c.norm ? d_kn : none;
        const cuda::CudaBackend::RopeKvWrite r{&L,      &qn_used, &kn_used, 1e-6f, &rope, &d_cos_sin,
                                               &d_rows, &d_slots, &d_kc,    &d_vc, c.early};
        be().set_fused_rope(!c.early);
        const bool fusable = be().rope_fusable(d_x, w, r);
        be().linear_rope_kv_write(d_qkv, d_x, w, r);
        be().set_fused_rope(true);
        ASSERT_EQ(fusable, c.fused) << where;
      } else {
        be().qk_norm_rope_kv_write(d_qkv, L, c.norm ? d_qn : Tensor(), c.norm ? d_kn : Tensor(), 1e-6f, rope,
                                   d_cos_sin, d_rows, d_slots, d_kc, d_vc);
      }
      be().attention(d_out, d_qkv, L, d_kc, d_vc, m, scale, c.window);
      const Tensor got = host(d_out);  // synchronises: the attention below runs alone
      be().attention(d_again, d_qkv, L, d_kc, d_vc, m, scale, c.window);
      const Tensor again = host(d_again);
      ASSERT_EQ(std::memcmp(got.raw(), again.raw(), got.nbytes()), 0) << where << ": differs from attention run alone";

      // The rope kernel wrote every new slot (the same bits as the roped qkv row).
      const Tensor qkv = host(d_qkv), kc = host(d_kc), vc = host(d_vc);
      const int64_t kv_width = static_cast<int64_t>(n_kv) * D;
      for (int t = 0; t < T; ++t)
        for (int64_t i = 0; i < kv_width; ++i) {
          ASSERT_EQ(value_at(kc, slots[t] * kv_width + i), value_at(qkv, t * L.row_stride() + L.k_offset() + i))
              << where << " token " << t;
          ASSERT_EQ(value_at(vc, slots[t] * kv_width + i), value_at(qkv, t * L.row_stride() + L.v_offset() + i))
              << where << " token " << t;
        }
      // Reference from the roped q and the cache after the step.
      std::vector<Tensor> k2, v2;
      for (int b = 0; b < B; ++b) {
        k2.push_back(Tensor::empty({c.seqs[b].kv_len, n_kv, D}, DType::F32));
        v2.push_back(Tensor::empty({c.seqs[b].kv_len, n_kv, D}, DType::F32));
        for (int pos = 0; pos < c.seqs[b].kv_len; ++pos) {
          const int64_t slot =
              static_cast<int64_t>(kv.block_tables[b * width + pos / block_size]) * block_size + pos % block_size;
          for (int64_t i = 0; i < kv_width; ++i) {
            k2.back().data<float>()[pos * kv_width + i] = static_cast<float>(value_at(kc, slot * kv_width + i));
            v2.back().data<float>()[pos * kv_width + i] = static_cast<float>(value_at(vc, slot * kv_width + i));
          }
        }
      }
      Tensor want = Tensor::empty({T, n_q * D}, DType::F32);
      sampled_attention_ref(want, std::vector<char>(T, 1), qkv, L, k2, v2, cu, scale, c.window);
      ASSERT_LT(rel_err(got, want), 1.2e-2) << where;
    }
  }
}

}  // namespace
}  // namespace tllm::test
