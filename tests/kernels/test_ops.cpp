// Per-op test registry in the spirit of llama.cpp's test-backend-ops: every op on fresh
// random inputs at many shapes (odd sizes, GQA ratios 1/2/7, head_dim 64/128/80/72, block
// sizes 1/16/32, sequences crossing block boundaries, mixed prefill + decode batches,
// sliding windows, split-key decode), on every CPU instruction-set variant this machine
// runs, against the double-precision reference with a normalised-MSE tolerance chosen
// for f32. Outputs are poisoned with NaN first so unwritten elements fail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <sstream>

#include "kernel_test_util.h"
#include "kernels/reference/reference.h"

namespace tllm::test {
namespace {

struct OpCase {
  std::string name;
  double tol;  // on nmse
  std::function<double(CpuBackend&, std::mt19937_64&)> run;
};

std::string dt(DType d) { return dtype_name(d); }

void add_embedding(std::vector<OpCase>& cases) {
  for (DType d : {DType::F32, DType::BF16, DType::F16})
    for (auto [V, H, T] : std::vector<std::tuple<int, int, int>>{{50, 1, 1}, {1000, 17, 7}, {300, 896, 33}, {64, 64, 2}}) {
      std::ostringstream n;
      n << "embedding/" << dt(d) << "/V" << V << "_H" << H << "_T" << T;
      cases.push_back({n.str(), 0.0, [=](CpuBackend& be, std::mt19937_64& rng) {
                         Tensor table = randn({V, H}, rng, d);
                         std::vector<int32_t> ids(T);
                         for (int& i : ids) i = static_cast<int>(rng() % V);
                         ids[0] = V - 1;
                         Tensor out = Tensor::empty({T, H}, DType::F32), want = Tensor::empty({T, H}, DType::F32);
                         poison(out);
                         be.embedding(out, table, ints(ids));
                         ref::embedding(want, table, ints(ids));
                         return nmse(out, want);
                       }});
    }
}

void add_norms(std::vector<OpCase>& cases) {
  for (auto [rows, dim] : std::vector<std::pair<int, int>>{{1, 1}, {3, 7}, {2, 16}, {17, 64}, {5, 100}, {4, 896}, {1, 1000}, {9, 4097}}) {
    for (DType wd : {DType::F32, DType::BF16}) {
      std::ostringstream n;
      n << "rms_norm/w" << dt(wd) << "/" << rows << "x" << dim;
      cases.push_back({n.str(), 1e-10, [=](CpuBackend& be, std::mt19937_64& rng) {
                         Tensor x = randn({rows, dim}, rng, DType::F32, 3.0f);
                         Tensor w = randn({dim}, rng, wd, 0.5f, 1.0f);
                         Tensor out = Tensor::empty({rows, dim}, DType::F32), want = out.clone();
                         poison(out);
                         be.rms_norm(out, x, w, 1e-6f);
                         ref::rms_norm(want, x, w, 1e-6f);
                         double e = nmse(out, want);
                         Tensor inplace = x.clone();  // out aliasing x
                         be.rms_norm(inplace, inplace, w, 1e-6f);
                         return std::max(e, nmse(inplace, want));
                       }});
    }
    std::ostringstream n;
    n << "add_rms_norm/" << rows << "x" << dim;
    cases.push_back({n.str(), 1e-10, [=](CpuBackend& be, std::mt19937_64& rng) {
                       Tensor res = randn({rows, dim}, rng), x = randn({rows, dim}, rng);
                       Tensor w = randn({dim}, rng, DType::F32, 0.5f, 1.0f);
                       Tensor res_ref = res.clone();
                       Tensor out = Tensor::empty({rows, dim}, DType::F32), want = out.clone();
                       poison(out);
                       be.add_rms_norm(res, x, out, w, 1e-5f);
                       ref::add_rms_norm(res_ref, x, want, w, 1e-5f);
                       return std::max(nmse(out, want), nmse(res, res_ref));
                     }});
  }
}

void add_linear(std::vector<OpCase>& cases) {
  const std::vector<std::tuple<int, int, int>> shapes = {
      {1, 1, 1},      {1, 17, 33},    {1, 64, 896},  {2, 100, 130}, {3, 45, 64},   {4, 33, 100},
      {5, 129, 257},  {7, 33, 100},   {8, 31, 48},   {15, 70, 31},  {16, 64, 64},  {17, 100, 300},
      {33, 47, 129},  {64, 256, 512}, {1, 896, 4864}, {13, 5, 1000}, {40, 160, 96}, {2, 3, 4097},
      {1, 2050, 64},  {3, 1000, 200}};  // the last two: decode-sized, columns in per-thread shares
  for (DType d : {DType::F32, DType::BF16, DType::F16})
    for (auto [T, N, K] : shapes)
      for (bool bias : {false, true}) {
        if (bias && (T + N) % 2) continue;  // bias on about half the shapes
        std::ostringstream n;
        n << "linear/" << dt(d) << "/T" << T << "_N" << N << "_K" << K << (bias ? "_bias" : "");
        cases.push_back({n.str(), 1e-9, [=](CpuBackend& be, std::mt19937_64& rng) {
                           Tensor x = randn({T, K}, rng);
                           LinearWeight w;
                           w.weight = randn({N, K}, rng, d, 0.1f);
                           if (bias) w.bias = randn({N}, rng);
                           w.out_features = N;
                           w.in_features = K;
                           Tensor out = Tensor::empty({T, N}, DType::F32), want = out.clone();
                           poison(out);
                           be.linear(out, x, w);
                           ref::linear(want, x, w);
                           return nmse(out, want);
                         }});
      }
}

void add_rope(std::vector<OpCase>& cases) {
  struct S {
    int nq, nkv, D, rd, T;
    bool interleaved, qk_norm;
    DType cache;
  };
  const std::vector<S> shapes = {
      {2, 1, 64, 64, 1, false, false, DType::F32},   {4, 4, 128, 128, 5, false, true, DType::F32},
      {7, 1, 80, 80, 19, false, false, DType::BF16}, {14, 2, 64, 64, 9, true, false, DType::F32},
      {4, 2, 64, 32, 6, false, true, DType::BF16},   {3, 3, 72, 72, 4, true, true, DType::F16},
      {16, 8, 128, 64, 33, false, true, DType::F32}};
  for (const S& s : shapes) {
    std::ostringstream n;
    n << "qk_norm_rope_kv_write/q" << s.nq << "_kv" << s.nkv << "_D" << s.D << "_rd" << s.rd << "_T" << s.T
      << (s.interleaved ? "_interleaved" : "_half") << (s.qk_norm ? "_qknorm" : "") << "_" << dt(s.cache);
    // bf16/f16 caches: the kernel's f32 and the reference's double may round to neighbouring values.
    const double tol = s.cache == DType::F32 ? 1e-10 : 1e-6;
    cases.push_back({n.str(), tol, [=](CpuBackend& be, std::mt19937_64& rng) {
                       QKVLayout L{s.nq, s.nkv, s.D};
                       const int bs = 16, blocks = (s.T + bs - 1) / bs + 2, positions = 100;
                       Tensor qkv = randn({s.T, L.row_stride()}, rng, DType::F32, 2.0f);
                       Tensor qkv_ref = qkv.clone();
                       Tensor qn = randn({s.D}, rng, DType::F32, 0.3f, 1.0f), kn = randn({s.D}, rng, DType::F32, 0.3f, 1.0f);
                       Tensor cs = cos_sin_table(positions, s.rd, 10000.0);
                       std::vector<int32_t> rows(s.T);
                       for (int& r : rows) r = static_cast<int>(rng() % positions);
                       std::vector<int64_t> slots(static_cast<size_t>(blocks) * bs);
                       std::iota(slots.begin(), slots.end(), 0);
                       std::shuffle(slots.begin(), slots.end(), rng);
                       slots.resize(s.T);
                       if (s.T > 2) slots[1] = -1;  // not written
                       Tensor kc = randn({blocks, bs, s.nkv, s.D}, rng, s.cache), vc = randn({blocks, bs, s.nkv, s.D}, rng, s.cache);
                       Tensor kc_ref = kc.clone(), vc_ref = vc.clone();
                       RopeSpec rope{s.rd, s.interleaved};
                       Tensor none;
                       be.qk_norm_rope_kv_write(qkv, L, s.qk_norm ? qn : none, s.qk_norm ? kn : none, 1e-6f, rope, cs,
                                                ints(rows), ints64(slots), kc, vc);
                       ref::qk_norm_rope_kv_write(qkv_ref, L, s.qk_norm ? qn : none, s.qk_norm ? kn : none, 1e-6f, rope,
                                                  cs, ints(rows), ints64(slots), kc_ref, vc_ref);
                       return std::max({nmse(qkv, qkv_ref), nmse(kc, kc_ref), nmse(vc, vc_ref)});
                     }});
  }
}

struct AttnCase {
  int nq, nkv, D, block_size, window;
  DType cache;
  std::vector<std::pair<int, int>> seqs;  // (q_len, k_len)
};

std::string attn_name(const AttnCase& c) {
  std::ostringstream n;
  n << "attention/q" << c.nq << "_kv" << c.nkv << "_D" << c.D << "_bs" << c.block_size << "_" << dt(c.cache);
  if (c.window) n << "_win" << c.window;
  for (auto [q, k] : c.seqs) n << "_" << q << "of" << k;
  return n.str();
}

double run_attention(const AttnCase& c, CpuBackend& be, std::mt19937_64& rng) {
  QKVLayout L{c.nq, c.nkv, c.D};
  std::vector<int32_t> cu{0};
  std::vector<Tensor> k, v;
  for (auto [q_len, k_len] : c.seqs) {
    cu.push_back(cu.back() + q_len);
    k.push_back(randn({k_len, c.nkv, c.D}, rng));
    v.push_back(randn({k_len, c.nkv, c.D}, rng));
    ref::round_to(k.back(), c.cache);
    ref::round_to(v.back(), c.cache);
  }
  const int T = cu.back();
  Tensor qkv = randn({T, L.row_stride()}, rng, DType::F32, 1.5f);
  ref::PagedKV kv = ref::make_paged_kv(k, v, cu, c.block_size, c.cache, 3, rng());
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  Tensor out = Tensor::empty({T, c.nq * c.D}, DType::F32), want = out.clone();
  poison(out);
  be.attention(out, qkv, L, kv.k_cache, kv.v_cache, kv.meta, scale, c.window);
  ref::attention_dense(want, qkv, L, k, v, cu, scale, c.window);
  return nmse(out, want);
}

void add_attention(std::vector<OpCase>& cases) {
  std::vector<AttnCase> all;
  const std::vector<std::vector<std::pair<int, int>>> batches = {
      {{1, 1}},                                   // first token
      {{37, 37}},                                 // prefill crossing blocks
      {{1, 300}, {1, 17}, {1, 33}},               // decode batch
      {{20, 50}, {1, 700}, {1, 1}, {5, 5}},       // chunked prefill + decode + new sequences
      {{1, 2000}},                                // long decode: keys split over threads
      {{3, 600}},                                 // speculative-style verify of 3 tokens
  };
  for (auto [nq, nkv] : std::vector<std::pair<int, int>>{{2, 2}, {4, 2}, {7, 1}, {14, 2}})
    for (int D : {64, 128, 80})
      for (int bs : {1, 16, 32})
        for (size_t bi = 0; bi < batches.size(); ++bi) {
          // Keep the matrix small: rotate block sizes and dtypes over the batches.
          if ((bi + static_cast<size_t>(bs) + static_cast<size_t>(D) / 16) % 3 != 0 && bi != 3) continue;
          const DType cache = (bi + nq) % 2 ? DType::BF16 : DType::F32;
          all.push_back({nq, nkv, D, bs, 0, cache, batches[bi]});
        }
  // Sliding windows, odd head_dim, f16 cache.
  all.push_back({4, 2, 64, 16, 8, DType::F32, {{37, 37}, {1, 100}}});
  all.push_back({7, 1, 64, 1, 40, DType::BF16, {{20, 50}, {1, 700}}});
  all.push_back({2, 1, 128, 32, 300, DType::F32, {{1, 2000}, {64, 64}}});
  all.push_back({3, 1, 72, 16, 0, DType::F16, {{9, 40}, {1, 90}}});
  all.push_back({2, 2, 40, 16, 5, DType::F32, {{17, 17}}});
  all.push_back({28, 4, 64, 16, 0, DType::BF16, {{70, 70}, {1, 513}}});
  all.push_back({40, 1, 64, 16, 0, DType::F32, {{3, 30}, {1, 300}}});  // group of 40 rows: chunked
  all.push_back({8, 1, 128, 16, 0, DType::BF16, {{2, 40}, {1, 1}}});   // 8 and 16 rows
  for (const AttnCase& c : all)
    cases.push_back({attn_name(c), 1e-9, [c](CpuBackend& be, std::mt19937_64& rng) { return run_attention(c, be, rng); }});
}

void add_misc(std::vector<OpCase>& cases) {
  for (auto [T, I] : std::vector<std::pair<int, int>>{{1, 1}, {1, 15}, {3, 16}, {5, 100}, {1, 4864}, {4, 4864}}) {
    std::ostringstream n;
    n << "silu_mul/T" << T << "_I" << I;
    cases.push_back({n.str(), 1e-10, [=](CpuBackend& be, std::mt19937_64& rng) {
                       Tensor gu = randn({T, 2 * I}, rng, DType::F32, 4.0f);
                       Tensor out = Tensor::empty({T, I}, DType::F32), want = out.clone();
                       poison(out);
                       be.silu_mul(out, gu);
                       ref::silu_mul(want, gu);
                       return nmse(out, want);
                     }});
  }
  for (auto [R, V] : std::vector<std::pair<int, int>>{{1, 1}, {3, 10}, {2, 1000}, {1, 151936}, {5, 4097}}) {
    std::ostringstream n;
    n << "log_softmax/R" << R << "_V" << V;
    cases.push_back({n.str(), 1e-10, [=](CpuBackend& be, std::mt19937_64& rng) {
                       Tensor x = randn({R, V}, rng, DType::F32, 5.0f);
                       return nmse(be.log_softmax_to_host(x), ref::log_softmax(x));
                     }});
  }
  cases.push_back({"gather_rows/f32", 0.0, [](CpuBackend& be, std::mt19937_64& rng) {
                     Tensor x = randn({9, 13}, rng);
                     Tensor idx = ints({8, 0, 3, 3});
                     Tensor out = Tensor::empty({4, 13}, DType::F32), want = out.clone();
                     poison(out);
                     be.gather_rows(out, x, idx);
                     ref::gather_rows(want, x, idx);
                     return nmse(out, want);
                   }});
}

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> c;
    add_embedding(c);
    add_norms(c);
    add_linear(c);
    add_rope(c);
    add_attention(c);
    add_misc(c);
    return c;
  }();
  return cases;
}

class KernelOps : public ::testing::TestWithParam<std::tuple<cpu::Isa, int>> {};

TEST_P(KernelOps, MatchesReference) {
  const auto [isa, index] = GetParam();
  const OpCase& c = op_cases()[index];
  auto be = make_cpu_backend_isa(CpuBackendOptions{2}, isa);
  std::mt19937_64 rng(0x5eed + static_cast<uint64_t>(index));
  const double err = c.run(*be, rng);
  EXPECT_LE(err, c.tol) << c.name << " on " << be->name() << ": nmse " << err;
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<cpu::Isa, int>>& info) {
  std::string s = std::string(cpu::isa_name(std::get<0>(info.param))) + "_" + op_cases()[std::get<1>(info.param)].name;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Cpu, KernelOps,
                         ::testing::Combine(::testing::ValuesIn(supported_isas()),
                                            ::testing::Range(0, static_cast<int>(op_cases().size()))),
                         case_name);

// A linear hands its columns to the threads in shares and chunks that depend on the thread
// count; every column is still computed whole by one thread, in the same order whatever tile
// it lands in, so the output is the same bits for any count. On every ISA of the machine:
// the AVX2 tile has 2 rows, so T = 3 and 4 go through the tiles, whose 1-column edge tiles
// had summed their lanes in another order (found on an AVX2-only machine, where AVX2 is the
// best ISA this test used to take).
TEST(KernelBackend, DecodeLinearIsTheSameBitsForAnyThreadCount) {
  std::mt19937_64 rng(7);
  for (cpu::Isa isa : supported_isas()) {
    for (DType d : {DType::BF16, DType::F32}) {
      for (int T : {1, 3, 4, 9}) {
        Tensor x = randn({T, 300}, rng);
        LinearWeight w;
        w.weight = randn({1000, 300}, rng, d, 0.1f);
        w.bias = randn({1000}, rng);
        w.out_features = 1000;
        w.in_features = 300;
        std::vector<float> first;
        for (int threads : {1, 2, 3}) {
          auto be = make_cpu_backend_isa(CpuBackendOptions{threads}, isa);
          Tensor out = Tensor::empty({T, 1000}, DType::F32);
          poison(out);
          be->linear(out, x, w);
          std::vector<float> got(out.data<float>(), out.data<float>() + out.numel());
          if (first.empty()) {
            first = got;
            continue;
          }
          EXPECT_EQ(0, std::memcmp(first.data(), got.data(), got.size() * sizeof(float)))
              << cpu::isa_name(isa) << " " << dtype_name(d) << " T=" << T << ": " << threads
              << " threads differ from 1";
        }
      }
    }
  }
}

// --- bad input is a clear error, not a crash ---------------------------------------

TEST(KernelErrors, BadInputsThrowNamingTheProblem) {
  auto be = make_cpu_backend_isa(CpuBackendOptions{2}, cpu::best_isa());
  std::mt19937_64 rng(1);
  Tensor table = randn({10, 4}, rng), out = Tensor::empty({1, 4}, DType::F32);
  try {
    be->embedding(out, table, ints({10}));
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("token id 10"), std::string::npos) << e.what();
  }
  LinearWeight w;
  w.weight = Tensor::empty({4, 4}, DType::I32);
  Tensor x = randn({1, 4}, rng);
  EXPECT_THROW(be->linear(out, x, w), Error);

  AttnCase c{2, 1, 64, 16, 0, DType::F32, {{3, 10}}};
  QKVLayout L{2, 1, 64};
  std::vector<Tensor> k{randn({10, 1, 64}, rng)}, v{randn({10, 1, 64}, rng)};
  ref::PagedKV kv = ref::make_paged_kv(k, v, {0, 3}, 16, DType::F32, 0, 7);
  kv.meta.block_tables.data<int32_t>()[0] = 99;
  Tensor qkv = randn({3, L.row_stride()}, rng), o = Tensor::empty({3, 128}, DType::F32);
  try {
    be->attention(o, qkv, L, kv.k_cache, kv.v_cache, kv.meta, 0.1f, 0);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block_tables[0, 0] = 99"), std::string::npos) << e.what();
  }
}

TEST(KernelBackend, UploadIsZeroCopyForMatchingDtypeAndConvertsOtherwise) {
  auto be = make_cpu_backend(CpuBackendOptions{2});
  std::mt19937_64 rng(2);
  Tensor w = randn({3, 70001}, rng, DType::BF16);
  Tensor same = be->upload(w, DType::BF16);
  EXPECT_EQ(same.raw(), w.raw());
  Tensor f = be->upload(w, DType::F32);
  ASSERT_EQ(f.dtype(), DType::F32);
  for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(f.data<float>()[i], bf16_to_f32(w.data<uint16_t>()[i]));
  Tensor back = be->upload(f, DType::BF16);
  EXPECT_EQ(std::memcmp(back.raw(), w.raw(), w.nbytes()), 0);
  Tensor h = be->upload(f, DType::F16);
  for (int64_t i = 0; i < w.numel(); i += 97) ASSERT_EQ(h.data<uint16_t>()[i], f32_to_f16(f.data<float>()[i]));
  EXPECT_EQ(be->activation_dtype(), DType::F32);
  EXPECT_NE(be->name().find("cpu"), std::string::npos);
}

}  // namespace
}  // namespace tllm::test
