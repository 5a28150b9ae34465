// CPU quantized kernels and the kernel layouts against kernels/reference/quant_reference:
// pack/unpack round trips of both layouts, the fast path (int8-rounded activations) against
// the exact product of the dequantized weights with those activations, the exact path
// against the dequantize-then-matmul reference, bit-identity of every instruction set, and
// the embedding. Many shapes: odd K, N not a multiple of the 16-row panel, every group size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/quant_ops.h"
#include "kernels/quant_group_walk.h"
#include "kernels/quant_layout.h"
#include "kernels/reference/quant_reference.h"
#include "quant_test_util.h"

namespace tllm {
namespace {

using test::random_fp8;
using test::random_quantized;

struct Shape3 {
  int64_t N, K;
  int bits, group;
};

std::vector<Shape3> shapes() {
  std::vector<Shape3> v;
  for (int bits : {4, 8})
    for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{
             {1, 32}, {16, 64}, {17, 96}, {33, 200}, {40, 256}, {7, 33}, {100, 128}, {48, 390}, {31, 1000}})
      for (int group : {32, 64, 128, 0})  // 0: one group per row
        if (group == 0 || group <= K) v.push_back({N, K, bits, group == 0 ? static_cast<int>(K) : group});
  return v;
}

std::vector<cpu::Isa> isas() {
  std::vector<cpu::Isa> v;
  for (cpu::Isa i : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if (cpu::isa_supported(i)) v.push_back(i);
  return v;
}

Tensor randn(const Shape& s, std::mt19937_64& rng, float std = 1.0f) {
  Tensor t = Tensor::empty(s, DType::F32);
  std::normal_distribution<float> d(0.0f, std);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

TEST(QuantLayout, PackUnpackRoundTripsBothLayouts) {
  std::mt19937_64 rng(1);
  for (const Shape3& s : shapes())
    for (bool f16 : {true, false})
      for (quant::Layout layout : {quant::Layout::Cpu, quant::Layout::Cuda}) {
        const QuantizedMatrix m = random_quantized(s.N, s.K, s.bits, s.group, f16, rng);
        const LinearWeight w = quant::pack(m, layout);
        EXPECT_EQ(w.scales.dtype(), f16 ? DType::F16 : DType::F32);
        EXPECT_EQ(w.weight.dim(0) % 16, 0);
        const QuantizedMatrix u = quant::unpack(w, layout);
        ASSERT_EQ(u.groups(), m.groups());
        ASSERT_EQ(0, std::memcmp(u.codes.raw(), m.codes.raw(), m.codes.nbytes()))
            << "codes differ, N=" << s.N << " K=" << s.K << " bits=" << s.bits << " layout=" << int(layout);
        ASSERT_EQ(0, std::memcmp(u.scales.raw(), m.scales.raw(), m.scales.nbytes()));
        ASSERT_EQ(0, std::memcmp(u.offsets.raw(), m.offsets.raw(), m.offsets.nbytes()));
      }
}

// Padding rows and columns hold zero codes, scales and offsets.
TEST(QuantLayout, PaddingIsZero) {
  std::mt19937_64 rng(2);
  const QuantizedMatrix m = random_quantized(17, 40, 4, 32, true, rng);
  const LinearWeight w = quant::pack(m, quant::Layout::Cpu);
  ASSERT_EQ(w.weight.dim(0), 32);
  for (int64_t r = 17; r < 32; ++r)
    for (int64_t g = 0; g < 2; ++g) {
      EXPECT_EQ(quant::packed_scale(w, r, g), 0.0f);
      EXPECT_EQ(quant::packed_offset(w, r, g), 0.0f);
    }
}

TEST(QuantLayout, RejectsUnsupported) {
  std::mt19937_64 rng(3);
  QuantizedMatrix m = random_quantized(16, 96, 4, 32, true, rng);
  m.group_size = 48;
  EXPECT_THROW(quant::pack(m, quant::Layout::Cpu), Error);
  m.group_size = 32;
  m.bits = 3;
  EXPECT_THROW(quant::pack(m, quant::Layout::Cpu), Error);
  m.bits = 4;
  m.codes.data<uint8_t>()[5] = 16;
  EXPECT_THROW(quant::pack(m, quant::Layout::Cpu), Error);
}

// quant_linear of w on x [T, K] with every instruction set the machine has (AVX-512 also
// without VNNI, and without AMX where the machine has it: AMX takes 16-token tiles): each
// output within f32 rounding of ref (the product with the rounded activations; absref its
// |x w| sums), every set's bits those of the first (scalar), and more(out) for any further
// check.
void expect_isas_agree(ThreadPool& pool, cpu::Scratch& scratch, const LinearWeight& w, const Tensor& x,
                       const float* bias, const Tensor& ref, const Tensor& absref, const std::string& what,
                       const std::function<void(const Tensor&, const std::string&)>& more = {}) {
  const int64_t T = x.dim(0), N = w.out_features;
  Tensor scalar_out;
  for (cpu::Isa isa : isas())
    for (int variant : {0, 1, 2}) {  // 0: all the set has (AMX where present), 1: no AMX, 2: no VNNI
      if (isa != cpu::Isa::Avx512 && variant > 0) continue;
      if (variant == 1 && !cpu_features().amx_int8) continue;
      const bool vnni = variant != 2, amx = variant == 0;
      Tensor out = Tensor::empty({T, N}, DType::F32);
      cpu::Exec ex{pool, isa, scratch};
      cpu::quant_linear(out.data<float>(), x.data<float>(), T, w, bias, ex, vnni, amx);
      const std::string where =
          detail::concat(what, " isa ", cpu::isa_name(isa), " vnni ", vnni, " amx ", amx && cpu_features().amx_int8);
      for (int64_t i = 0; i < out.numel(); ++i)
        ASSERT_NEAR(out.data<float>()[i], ref.data<float>()[i], 2e-6f * absref.data<float>()[i] + 1e-5f)
            << where << " i=" << i;
      if (more) more(out, where);
      if (::testing::Test::HasFatalFailure()) return;
      if (!scalar_out.defined())
        scalar_out = out;
      else
        ASSERT_EQ(0, std::memcmp(out.raw(), scalar_out.raw(), out.nbytes())) << where << " differs from scalar";
    }
}

// The fast path is the product of the dequantized weights with the int8-rounded activations:
// compared with that exact product (double) the error is f32 rounding only.
TEST(QuantCpu, FastPathMatchesDequantizedProductOfRoundedActivations) {
  std::mt19937_64 rng(4);
  ThreadPool pool(2);
  cpu::Scratch scratch;
  for (const Shape3& s : shapes())
    for (int64_t T : {1, 2, 3, 8, 10, 13, 16, 37}) {  // 16 and 37: AMX tiles of 16 tokens and the rest
      const bool f16 = (s.N + T) % 2 == 0;
      const QuantizedMatrix m = random_quantized(s.N, s.K, s.bits, s.group, f16, rng);
      LinearWeight w = quant::pack(m, quant::Layout::Cpu);
      Tensor bias = randn({s.N}, rng);
      Tensor x = randn({T, s.K}, rng);
      Tensor ref, absref;
      ref::quant_linear(ref, ref::round_activations_int8(x), m, bias, &absref);
      Tensor exact, absexact;
      ref::quant_linear(exact, x, m, bias, &absexact);
      const std::string what =
          detail::concat("N=", s.N, " K=", s.K, " bits=", s.bits, " group=", s.group, " T=", T);
      // Against f32 activations the error is bounded by the activation rounding:
      // |x - x_hat| <= d/2 per element, d <= max|x| / 127; loosely 1% of sum |x w|.
      expect_isas_agree(pool, scratch, w, x, bias.data<float>(), ref, absref, what,
                        [&](const Tensor& out, const std::string& where) {
                          for (int64_t i = 0; i < out.numel(); ++i)
                            ASSERT_NEAR(out.data<float>()[i], exact.data<float>()[i],
                                        0.01f * absexact.data<float>()[i] + 1e-4f)
                                << where << " i=" << i;
                        });
      if (HasFatalFailure()) return;
    }
}

// The extremes of the integer dot products: 8-bit codes 0 and 255 (|c - 128| = 128 and 127 in
// the AVX2 kernel's sign form) and 1 / 128 / 254 against activations at +-127 after rounding,
// in every pairing of neighbours, so that a 16-bit pair sum of vpmaddubsw reaches its largest
// magnitudes (2 x 128 x 127). Every instruction set must give the scalar kernel's bits, and
// those match the dequantized product of the rounded activations.
TEST(QuantCpu, ExtremeCodesAndActivationsAreExact) {
  ThreadPool pool(2);
  cpu::Scratch scratch;
  const int64_t N = 48, K = 256;
  const int codes[] = {0, 255, 128, 1, 254};
  for (int bits : {8, 4})
    for (int pattern = 0; pattern < 4; ++pattern) {
      std::mt19937_64 rng(pattern);
      QuantizedMatrix m = random_quantized(N, K, bits, 64, true, rng);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          const int c = pattern == 0 ? 0 : pattern == 1 ? 255 : codes[(n * 7 + k * (pattern == 2 ? 1 : 3)) % 5];
          m.codes.data<uint8_t>()[n * K + k] = static_cast<uint8_t>(bits == 8 ? c : c & 15);
        }
      LinearWeight w = quant::pack(m, quant::Layout::Cpu);
      for (int64_t T : {1, 2, 5, 18}) {
        // x = +-1 everywhere (every block's xq at +-127), signs by token and column pattern.
        Tensor x = Tensor::empty({T, K}, DType::F32);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t k = 0; k < K; ++k)
            x.data<float>()[t * K + k] = (t == 0 || ((k / (t + 1)) % 2 == 0)) == (pattern % 2 == 0) ? 1.0f : -1.0f;
        Tensor ref, absref;
        ref::quant_linear(ref, ref::round_activations_int8(x), m, Tensor(), &absref);
        expect_isas_agree(pool, scratch, w, x, nullptr, ref, absref,
                          detail::concat("bits ", bits, " pattern ", pattern, " T ", T));
        if (HasFatalFailure()) return;
      }
    }
}

// A block of activations with an infinity or a NaN has no int8 rounding: every output of that
// token is NaN on every instruction set (as the f32 product would be), and the other tokens of
// the call are untouched. (The rounding used to convert NaN to int32's INT_MIN and sum it with
// overflow: undefined behaviour, found by UBSan on a GGUF whose tensor offset was corrupted.)
TEST(QuantCpu, NonFiniteActivationsGiveNaNOnEveryIsa) {
  ThreadPool pool(2);
  cpu::Scratch scratch;
  const int64_t N = 40, K = 200, T = 4;  // K: a partial last block of 8
  for (int bits : {8, 4}) {
    std::mt19937_64 rng(bits);
    const QuantizedMatrix m = random_quantized(N, K, bits, 32, false, rng);
    const LinearWeight w = quant::pack(m, quant::Layout::Cpu);
    Tensor x = randn({T, K}, rng);
    x.data<float>()[1 * K + 40] = std::numeric_limits<float>::quiet_NaN();
    x.data<float>()[2 * K + 199] = std::numeric_limits<float>::infinity();  // in the partial block
    x.data<float>()[3 * K + 0] = -std::numeric_limits<float>::infinity();
    Tensor finite = Tensor::empty({1, K}, DType::F32);  // token 0 alone
    std::memcpy(finite.raw(), x.raw(), K * sizeof(float));
    Tensor ref, absref;
    ref::quant_linear(ref, ref::round_activations_int8(finite), m, Tensor(), &absref);
    for (cpu::Isa isa : isas())
      for (int variant : {0, 1, 2}) {
        if (isa != cpu::Isa::Avx512 && variant > 0) continue;
        Tensor out = Tensor::empty({T, N}, DType::F32);
        cpu::Exec ex{pool, isa, scratch};
        cpu::quant_linear(out.data<float>(), x.data<float>(), T, w, nullptr, ex, variant != 2, variant == 0);
        const std::string where = detail::concat("bits ", bits, " isa ", cpu::isa_name(isa), " variant ", variant);
        for (int64_t n = 0; n < N; ++n) {
          ASSERT_NEAR(out.data<float>()[n], ref.data<float>()[n], 2e-6f * absref.data<float>()[n] + 1e-5f)
              << where << " n=" << n;
          for (int64_t t = 1; t < T; ++t) ASSERT_TRUE(std::isnan(out.data<float>()[t * N + n])) << where << " t=" << t;
        }
      }
  }
}

TEST(QuantCpu, ExactPathMatchesDequantizeThenMatmul) {
  std::mt19937_64 rng(5);
  ThreadPool pool(2);
  cpu::Scratch scratch;
  for (const Shape3& s : shapes())
    for (int64_t T : {1, 5}) {
      const QuantizedMatrix m = random_quantized(s.N, s.K, s.bits, s.group, T == 1, rng);
      LinearWeight w = quant::pack(m, quant::Layout::Cpu);
      w.f32_activations = true;
      Tensor x = randn({T, s.K}, rng);
      Tensor ref, absref;
      ref::quant_linear(ref, x, m, Tensor(), &absref);
      for (cpu::Isa isa : isas()) {
        Tensor out = Tensor::empty({T, s.N}, DType::F32);
        cpu::Exec ex{pool, isa, scratch};
        cpu::quant_linear(out.data<float>(), x.data<float>(), T, w, nullptr, ex);
        for (int64_t i = 0; i < out.numel(); ++i)
          ASSERT_NEAR(out.data<float>()[i], ref.data<float>()[i], 2e-6f * absref.data<float>()[i] + 1e-6f)
              << "isa " << cpu::isa_name(isa) << " N=" << s.N << " K=" << s.K << " bits=" << s.bits;
      }
    }
}

TEST(QuantCpu, EmbeddingRowsAreDequantizedExactly) {
  std::mt19937_64 rng(6);
  auto be = make_cpu_backend_isa({2}, cpu::best_isa());
  for (int bits : {4, 8}) {
    const QuantizedMatrix m = random_quantized(50, 96, bits, 32, bits == 4, rng);
    LinearWeight w = be->pack_quantized(m, false);
    const Tensor deq = ref::dequantize(m);
    Tensor tokens = Tensor::empty({4}, DType::I32);
    const int32_t ids[4] = {0, 49, 17, 17};
    std::memcpy(tokens.raw(), ids, sizeof(ids));
    Tensor out = Tensor::empty({4, 96}, DType::F32);
    be->embedding_quantized(out, w, tokens);
    for (int t = 0; t < 4; ++t)
      for (int k = 0; k < 96; ++k) ASSERT_EQ(out.data<float>()[t * 96 + k], deq.data<float>()[ids[t] * 96 + k]);
    tokens.data<int32_t>()[2] = 50;
    EXPECT_THROW(be->embedding_quantized(out, w, tokens), InvalidArgument);
  }
}

// Through the backend: linear() dispatches on the scheme; row slices at multiples of 16
// (stacked MoE experts) compute the rows they cover.
TEST(QuantCpu, BackendLinearAndRowSlices) {
  std::mt19937_64 rng(7);
  auto be = make_cpu_backend_isa({2}, cpu::best_isa());
  const QuantizedMatrix m = random_quantized(64, 128, 4, 64, true, rng);
  LinearWeight w = be->pack_quantized(m, false);
  Tensor x = randn({3, 128}, rng);
  Tensor full = Tensor::empty({3, 64}, DType::F32);
  be->linear(full, x, w);
  LinearWeight part = w;
  part.weight = w.weight.slice_rows(16, 48);
  part.scales = w.scales.slice_rows(16, 48);
  part.zeros = w.zeros.slice_rows(16, 48);
  part.out_features = 32;
  Tensor out = Tensor::empty({3, 32}, DType::F32);
  be->linear(out, x, part);
  for (int t = 0; t < 3; ++t)
    for (int n = 0; n < 32; ++n) ASSERT_EQ(out.data<float>()[t * 32 + n], full.data<float>()[t * 64 + 16 + n]);
  Tensor bad = Tensor::empty({3, 100}, DType::F32);
  EXPECT_THROW(be->linear(out, bad, w), Error);
}

}  // namespace
}  // namespace tllm

namespace tllm {
// FP8 weights pack without an offsets tensor (no kernel reads one), round-trip their codes
// and scales, and a NaN code (e4m3 0x7f / 0xff) is refused with its place.
TEST(QuantLayout, Fp8PacksWithoutOffsetsAndRefusesNaNCodes) {
  std::mt19937_64 rng(4);
  for (const Shape3& s : {Shape3{16, 64, 8, 64}, Shape3{37, 200, 8, 200}, Shape3{48, 320, 8, 32}}) {
    QuantizedMatrix m = random_fp8(s.N, s.K, s.group, false, rng);
    const LinearWeight w = quant::pack(m, quant::Layout::Cuda);
    EXPECT_EQ(w.quant, QuantScheme::Fp8E4M3);
    EXPECT_FALSE(w.zeros.defined()) << s.N << "x" << s.K;
    const QuantizedMatrix u = quant::unpack(w, quant::Layout::Cuda);
    ASSERT_TRUE(u.fp8);
    ASSERT_EQ(0, std::memcmp(u.codes.raw(), m.codes.raw(), m.codes.nbytes())) << s.N << "x" << s.K;
    ASSERT_EQ(0, std::memcmp(u.scales.raw(), m.scales.raw(), m.scales.nbytes()));
    for (int64_t i = 0; i < u.offsets.numel(); ++i) ASSERT_EQ(u.offsets.data<float>()[i], 0.0f);
    for (const uint8_t nan : {uint8_t{0x7f}, uint8_t{0xff}}) {
      const int64_t r = s.N - 1, c = s.K - 3;
      const uint8_t keep = m.codes.data<uint8_t>()[r * s.K + c];
      m.codes.data<uint8_t>()[r * s.K + c] = nan;
      try {
        quant::pack(m, quant::Layout::Cuda);
        ADD_FAILURE() << "a NaN code packed";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(detail::concat("at [", r, ", ", c, "] is not a finite number")),
                  std::string::npos)
            << e.what();
      }
      m.codes.data<uint8_t>()[r * s.K + c] = keep;
    }
  }
}

namespace {

// The CUDA kernels read the codes of a (panel, tile) as mma.m16n8k16 A fragments without
// any index math (quant_gemm.cu, mma_codes): here the same extraction rule runs on the host
// and every register must hold the codes PTX assigns to it: lane L, groupID g = L / 4,
// threadID_in_group c = L % 4; a0 = A[g][2c, 2c+1], a1 = A[g+8][2c, 2c+1], a2 = A[g][2c+8, 2c+9],
// a3 = A[g+8][2c+8, 2c+9] (low half first), A = the 16 x 16 block of k step m.
TEST(QuantLayout, CudaTilesAreMmaFragments) {
  std::mt19937_64 rng(8);
  for (int bits : {4, 8}) {
    const QuantizedMatrix m = random_quantized(32, 320, bits, 64, true, rng);
    const LinearWeight w = quant::pack(m, quant::Layout::Cuda);
    const int tile = quant::cuda_k_tile(bits);
    const int64_t ktiles = quant::padded_cols(quant::Layout::Cuda, bits, m.cols) / tile;
    auto code = [&](int64_t row, int64_t k) -> int {
      return row < m.rows && k < m.cols ? m.codes.data<uint8_t>()[row * m.cols + k] : 0;
    };
    auto nib = [](uint32_t v, int shift) { return (v >> shift) & 0x000f000fu; };
    for (int64_t p = 0; p < 2; ++p)
      for (int64_t kt = 0; kt < ktiles; ++kt)
        for (int lane = 0; lane < 32; ++lane) {
          const uint8_t* base = w.weight.data<uint8_t>() + (p * ktiles + kt) * 1024;
          uint32_t lo[4], hi[4];
          std::memcpy(lo, base + lane * 16, 16);
          std::memcpy(hi, base + 512 + lane * 16, 16);
          const int g = lane / 4, c = lane % 4;
          for (int step = 0; step < tile / 16; ++step) {
            // (register value, value the register must hold as (low, high) code pair)
            std::vector<std::pair<uint32_t, std::pair<int, int>>> regs;
            const int64_t k0 = kt * tile + 16 * step + 2 * c, rg = p * 16 + g;
            auto want = [&](int64_t row, int64_t k) { return std::make_pair(code(row, k), code(row, k + 1)); };
            if (bits == 4) {
              const int wd = step / 2, s0 = (step % 2) ? 8 : 0, s1 = (step % 2) ? 12 : 4;
              regs = {{nib(lo[wd], s0), want(rg, k0)}, {nib(hi[wd], s0), want(rg + 8, k0)},
                      {nib(lo[wd], s1), want(rg, k0 + 8)}, {nib(hi[wd], s1), want(rg + 8, k0 + 8)}};
            } else {
              // low nibbles at shifts 0 / 8, high nibbles at 4 / 12 (x16 by the 2048 magic)
              auto both = [&](uint32_t v, int s_lo, int s_hi) { return nib(v, s_lo) | (nib(v, s_hi) << 4); };
              const uint32_t l = lo[step], h = hi[step];
              regs = {{both(l, 0, 4), want(rg, k0)}, {both(h, 0, 4), want(rg + 8, k0)},
                      {both(l, 8, 12), want(rg, k0 + 8)}, {both(h, 8, 12), want(rg + 8, k0 + 8)}};
            }
            for (auto& [v, wv] : regs) {
              ASSERT_EQ(static_cast<int>(v & 0xff), wv.first) << "bits " << bits << " lane " << lane << " step " << step;
              ASSERT_EQ(static_cast<int>((v >> 16) & 0xff), wv.second) << "bits " << bits << " lane " << lane;
            }
          }
        }
  }
}

// The quantized MoE decode kernel's walk over a warp's k tiles (cuda/moe_quant.cu, panel_dot:
// rings of 4 tiles, steps of 16) finds the same scale-segment ends and groups as the division
// per step it replaced: a segment ends at (k + 16) % group_size == 0 or at the tile's end, and
// takes group min(k / group_size, groups - 1). Every K, group size, tile width and warp range.
TEST(QuantGroupWalk, MatchesTheDivisionsOfEveryStep) {
  constexpr int kDepth = 4;
  int checked = 0;
  for (const int tile : {64, 128}) {
    const int steps = tile / 16;
    for (int K = 16; K <= 1024; K += 16) {
      const int ktiles = (K + tile - 1) / tile;
      std::vector<int> sizes = {K};
      for (int gs = 16; gs < K; gs += 16) sizes.push_back(gs);
      for (const int gs : sizes) {
        const int groups = (K + gs - 1) / gs;
        for (int uw = 1; uw <= 8; uw *= 2) {
          for (int wk = 0; wk < uw; ++wk) {
            const int tb = wk * ktiles / uw, te = (wk + 1) * ktiles / uw;
            quant::GroupWalk walk(tb * tile, gs);
            for (int kt0 = tb; kt0 < te; kt0 += kDepth) {
              for (int s = 0; s < kDepth; ++s) {
                const int kt = kt0 + s;
                if (kt >= te) break;
                for (int m = 0; m < steps; ++m) {
                  const int k = kt * tile + 16 * m;
                  const int want_group = groups == 1 ? 0 : std::min(k / gs, groups - 1);
                  const bool want_end = (k + 16) % gs == 0 || m == steps - 1;
                  const int step_group = walk.group;
                  const bool end = walk.step() || m == steps - 1;
                  ASSERT_EQ(end, want_end) << "tile " << tile << " K " << K << " gs " << gs << " k " << k;
                  if (end) {
                    ASSERT_EQ(groups == 1 ? 0 : std::min(step_group, groups - 1), want_group)
                        << "tile " << tile << " K " << K << " gs " << gs << " k " << k;
                    ++checked;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 100000);
}

}  // namespace
}  // namespace tllm
