// Checkpoint formats against packers written here from each format's description:
// - codecs: random codes, scales and zeros packed the way MLX / AutoAWQ (GEMM) / AutoGPTQ
//   write them, decoded by the loader, dequantized bit-exactly as the format says;
// - end to end: small pre-quantized checkpoints built from the random test models in
//   tests/data/models, each beside an f32 checkpoint of its exactly dequantized weights;
//   the quantized model (exact f32-activation path) gives the same logits as the dense one
//   within f32 rounding, the fast path within the int8 activation rounding;
// - quantize on load (int8, int4) against the bf16 model: KL divergence and top-1 agreement;
// - `tinyllm quantize` output read back;
// - unsupported configurations rejected with clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "kernels/backend.h"
#include "kernels/reference/quant_reference.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/quant.h"
#include "model/quant_export.h"
#include "quant_model_util.h"
#include "quant_test_util.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;
using test::max_abs;
using test::max_diff;
using json = nlohmann::ordered_json;

fs::path models_dir() { return fs::path(TLLM_SOURCE_DIR) / "tests/data/models"; }
// One folder per test process, removed when it exits: ctest runs the cases as parallel
// processes, and a shared folder that each process cleared at start made them delete each
// other's checkpoints.
fs::path scratch_dir() {
  struct Scratch {
    fs::path p = fs::path(TLLM_BINARY_DIR) / ("quant_test_ckpts." + std::to_string(::getpid()));
    Scratch() {
      fs::remove_all(p);
      fs::create_directories(p);
    }
    ~Scratch() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  };
  static const Scratch d;
  return d.p;
}

Tensor u32(const Shape& s) { return Tensor::zeros(s, DType::U32); }
float bf16r(float v) { return bf16_to_f32(f32_to_bf16(v)); }
float f16r(float v) { return f16_to_f32(f32_to_f16(v)); }

Tensor f32_tensor(const std::vector<float>& v, const Shape& s) {
  Tensor t = Tensor::empty(s, DType::F32);
  std::memcpy(t.raw(), v.data(), v.size() * 4);
  return t;
}
Tensor half_tensor(const std::vector<float>& v, const Shape& s, DType dt) {
  Tensor t = Tensor::empty(s, dt);
  for (size_t i = 0; i < v.size(); ++i)
    t.data<uint16_t>()[i] = dt == DType::BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
  return t;
}

// ---- packers, from the formats' descriptions -------------------------------------------
// A format-neutral description of one quantized [N, K] weight: codes q[n][k], and per
// (n, group) either MLX's scale/bias or AWQ/GPTQ's scale/zero.
struct Packed {
  int64_t N = 0, K = 0;
  int bits = 4, group = 32;
  std::vector<uint32_t> q;  // [N, K]
  std::vector<float> s;     // [N, G] (already rounded to the stored dtype)
  std::vector<float> b;     // MLX bias [N, G]
  std::vector<uint32_t> z;  // AWQ / GPTQ zero point [N, G]
  int64_t G() const { return K / group; }
};

// MLX: u32 words, value j of a word in bits [bits*j, bits*j + bits), K*bits/32 words a row.
Tensor pack_mlx_weight(const Packed& p) {
  const int per = 32 / p.bits;
  Tensor w = u32({p.N, p.K / per});
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      w.data<uint32_t>()[n * (p.K / per) + k / per] |= p.q[n * p.K + k] << (p.bits * (k % per));
  return w;
}

// AutoAWQ GEMM: qweight [K, N/8], column block j's word holds, in nibble i, output column
// 8j + order[i] with order = [0, 2, 4, 6, 1, 3, 5, 7]; qzeros [K/group, N/8] likewise.
constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
Tensor pack_awq(const std::vector<uint32_t>& v_kn, int64_t rows, int64_t N) {  // v_kn [rows, N]
  Tensor w = Tensor::zeros({rows, N / 8}, DType::I32);
  uint32_t* d = static_cast<uint32_t*>(w.raw());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < N / 8; ++j)
      for (int i = 0; i < 8; ++i) d[r * (N / 8) + j] |= v_kn[r * N + 8 * j + kAwqOrder[i]] << (4 * i);
  return w;
}

// AutoGPTQ: qweight [K*bits/32, N]: word row i packs inputs i*per .. i*per+per-1 (value j in
// bits [bits*j, ...)); qzeros [G, N*bits/32] packs (zero - 1) of outputs c*per + j.
Tensor pack_gptq_qweight(const Packed& p) {
  const int per = 32 / p.bits;
  Tensor w = Tensor::zeros({p.K / per, p.N}, DType::I32);
  uint32_t* d = static_cast<uint32_t*>(w.raw());
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t n = 0; n < p.N; ++n) d[(k / per) * p.N + n] |= p.q[n * p.K + k] << (p.bits * (k % per));
  return w;
}
Tensor pack_gptq_qzeros(const Packed& p) {
  const int per = 32 / p.bits;
  const uint32_t mask = (1u << p.bits) - 1;
  Tensor w = Tensor::zeros({p.G(), p.N / per}, DType::I32);
  uint32_t* d = static_cast<uint32_t*>(w.raw());
  for (int64_t g = 0; g < p.G(); ++g)
    for (int64_t n = 0; n < p.N; ++n) d[g * (p.N / per) + n / per] |= ((p.z[n * p.G() + g] - 1) & mask) << (p.bits * (n % per));
  return w;
}
// [G, N] transposed scale / zero tables (AWQ / GPTQ store them input-group major).
std::vector<float> t_scales(const Packed& p) {
  std::vector<float> v(p.G() * p.N);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t g = 0; g < p.G(); ++g) v[g * p.N + n] = p.s[n * p.G() + g];
  return v;
}

// The dequantized weight as each format defines it, in f32.
std::vector<float> dequant_mlx(const Packed& p) {
  std::vector<float> w(p.N * p.K);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k) {
      const int64_t g = k / p.group;
      const float prod = p.s[n * p.G() + g] * static_cast<float>(p.q[n * p.K + k]);
      w[n * p.K + k] = prod + p.b[n * p.G() + g];
    }
  return w;
}
std::vector<float> dequant_zero(const Packed& p) {  // AWQ, GPTQ: (q - z) * s
  std::vector<float> w(p.N * p.K);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k) {
      const int64_t g = k / p.group;
      w[n * p.K + k] = (static_cast<float>(p.q[n * p.K + k]) - static_cast<float>(p.z[n * p.G() + g])) * p.s[n * p.G() + g];
    }
  return w;
}

// (q - z) * s with input k in group g_idx[k] (act-order; k / group otherwise).
std::vector<float> dequant_by_gidx(const Packed& p, const Tensor& gidx) {
  std::vector<float> w(p.N * p.K);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k) {
      const int64_t g = gidx.data<int32_t>()[k];
      w[n * p.K + k] = (static_cast<float>(p.q[n * p.K + k]) - static_cast<float>(p.z[n * p.G() + g])) * p.s[n * p.G() + g];
    }
  return w;
}
// The contiguous groups k / group, shuffled with `seed` when act_order (every group keeps
// `group` inputs, as act-order checkpoints assign them).
Tensor g_idx_of(int64_t K, int group, bool act_order, uint64_t seed) {
  Tensor gidx = Tensor::empty({K}, DType::I32);
  for (int64_t k = 0; k < K; ++k) gidx.data<int32_t>()[k] = static_cast<int32_t>(k / group);
  if (act_order) {
    std::mt19937_64 rng(seed);
    std::shuffle(gidx.data<int32_t>(), gidx.data<int32_t>() + K, rng);
  }
  return gidx;
}

// Quantizes a dense [N, K] weight with the given scheme (only to get realistic codes for the
// end-to-end checkpoints; what is checked is the dequantization of whatever was stored).
Packed quantize_for(const std::vector<float>& w, int64_t N, int64_t K, int bits, int group, bool mlx, bool sym,
                    DType sdt) {
  Packed p;
  p.N = N;
  p.K = K;
  p.bits = bits;
  p.group = group;
  const int qmax = (1 << bits) - 1;
  p.q.resize(N * K);
  p.s.resize(N * p.G());
  p.b.resize(N * p.G());
  p.z.resize(N * p.G());
  auto rnd = [&](float v) { return sdt == DType::BF16 ? bf16r(v) : f16r(v); };
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < p.G(); ++g) {
      float lo = 1e30f, hi = -1e30f;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) {
        lo = std::min(lo, w[n * K + k]);
        hi = std::max(hi, w[n * K + k]);
      }
      float s;
      uint32_t z = 0;
      float b = 0;
      if (mlx) {
        s = rnd(std::max(hi - lo, 1e-4f) / qmax);
        b = rnd(lo);
      } else if (sym) {
        z = 1u << (bits - 1);
        s = rnd(std::max(std::max(-lo, hi), 1e-4f) / (qmax / 2.0f));
      } else {
        s = rnd(std::max(hi - lo, 1e-4f) / qmax);
        // GPTQ v1 stores zero - 1, so zero 0 is not representable: keep it >= 1 (as AutoGPTQ's
        // checkpoints effectively do).
        z = static_cast<uint32_t>(std::clamp<float>(std::nearbyint(-lo / s), 1.0f, static_cast<float>(qmax)));
      }
      p.s[n * p.G() + g] = s;
      p.b[n * p.G() + g] = b;
      p.z[n * p.G() + g] = z;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) {
        const float v = mlx ? (w[n * K + k] - b) / s : w[n * K + k] / s + static_cast<float>(z);
        p.q[n * K + k] = static_cast<uint32_t>(std::clamp<float>(std::nearbyint(v), 0.0f, static_cast<float>(qmax)));
      }
    }
  return p;
}

Packed random_packed(int64_t N, int64_t K, int bits, int group, std::mt19937_64& rng) {
  std::vector<float> w(N * K);
  std::normal_distribution<float> d(0.0f, 0.05f);
  for (float& v : w) v = d(rng);
  Packed p = quantize_for(w, N, K, bits, group, true, false, DType::BF16);
  std::uniform_int_distribution<uint32_t> code(0, (1u << bits) - 1), zero(1, (1u << bits) - 1);
  for (uint32_t& q : p.q) q = code(rng);  // every code value, not just those w produced
  for (uint32_t& z : p.z) z = zero(rng);
  return p;
}

void expect_bits_equal(const std::vector<float>& want, const Tensor& got, const std::string& what) {
  ASSERT_EQ(static_cast<int64_t>(want.size()), got.numel()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(std::memcmp(&want[i], got.data<float>() + i, 4), 0)
        << what << ": element " << i << " is " << got.data<float>()[i] << ", the format gives " << want[i];
}

TEST(QuantFormats, MlxDecodesBitExactly) {
  std::mt19937_64 rng(11);
  for (int bits : {2, 4, 8})
    for (int group : {32, 64, 128}) {
      Packed p = random_packed(24, 256, bits, group, rng);
      for (DType sdt : {DType::BF16, DType::F16, DType::F32}) {
        Tensor sc = sdt == DType::F32 ? f32_tensor(p.s, {p.N, p.G()}) : half_tensor(p.s, {p.N, p.G()}, sdt);
        Tensor bi = sdt == DType::F32 ? f32_tensor(p.b, {p.N, p.G()}) : half_tensor(p.b, {p.N, p.G()}, sdt);
        Packed exact = p;  // what the stored (rounded) scales give
        exact.s = test::f32_values(sc);
        exact.b = test::f32_values(bi);
        const QuantizedMatrix m = decode_mlx(pack_mlx_weight(p), sc, bi, p.N, p.K, bits, group, "test");
        expect_bits_equal(dequant_mlx(exact), ref::dequantize(m), "mlx " + std::to_string(bits) + "-bit");
      }
    }
}

TEST(QuantFormats, AwqDecodesBitExactly) {
  std::mt19937_64 rng(12);
  for (int group : {32, 64, 128}) {
    Packed p = random_packed(40, 256, 4, group, rng);
    for (uint32_t& z : p.z) z = std::uniform_int_distribution<uint32_t>(0, 15)(rng);  // AWQ zeros may be 0
    for (float& s : p.s) s = f16r(s);
    std::vector<uint32_t> q_kn(p.K * p.N), z_gn(p.G() * p.N);
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t k = 0; k < p.K; ++k) q_kn[k * p.N + n] = p.q[n * p.K + k];
      for (int64_t g = 0; g < p.G(); ++g) z_gn[g * p.N + n] = p.z[n * p.G() + g];
    }
    const QuantizedMatrix m = decode_awq(pack_awq(q_kn, p.K, p.N), pack_awq(z_gn, p.G(), p.N),
                                         half_tensor(t_scales(p), {p.G(), p.N}, DType::F16), p.N, p.K, group, "test");
    expect_bits_equal(dequant_zero(p), ref::dequantize(m), "awq");
  }
}

TEST(QuantFormats, GptqDecodesBitExactly) {
  std::mt19937_64 rng(13);
  for (int bits : {2, 4, 8})
    for (int group : {32, 128, -1})
      for (bool v2 : {false, true}) {
        const int g = group < 0 ? 256 : group;
        Packed p = random_packed(32, 256, bits, g, rng);
        for (float& s : p.s) s = f16r(s);
        Tensor qz = pack_gptq_qzeros(p);
        if (v2) {  // v2 stores the zero itself: repack without the -1
          const int per = 32 / bits;
          qz = Tensor::zeros({p.G(), p.N / per}, DType::I32);
          for (int64_t gg = 0; gg < p.G(); ++gg)
            for (int64_t n = 0; n < p.N; ++n)
              static_cast<uint32_t*>(qz.raw())[gg * (p.N / per) + n / per] |=
                  (p.z[n * p.G() + gg] & ((1u << bits) - 1)) << (bits * (n % per));
        }
        Tensor gidx = Tensor::empty({p.K}, DType::I32);
        for (int64_t k = 0; k < p.K; ++k) gidx.data<int32_t>()[k] = static_cast<int32_t>(k / g);
        const QuantizedMatrix m = decode_gptq(pack_gptq_qweight(p), qz, half_tensor(t_scales(p), {p.G(), p.N}, DType::F16),
                                              gidx, p.N, p.K, bits, group, v2, "test");
        expect_bits_equal(dequant_zero(p), ref::dequantize(m), "gptq " + std::to_string(bits) + "-bit");
        // Act-order g_idx: no int kernel takes it (decode_gptq refuses), dequantize_gptq
        // follows it; a group index out of range is an error.
        std::swap(gidx.data<int32_t>()[0], gidx.data<int32_t>()[p.K - 1]);
        if (group > 0) {
          const Tensor sc = half_tensor(t_scales(p), {p.G(), p.N}, DType::F16);
          EXPECT_THROW(decode_gptq(pack_gptq_qweight(p), qz, sc, gidx, p.N, p.K, bits, group, v2, "test"), Error);
          expect_bits_equal(dequant_by_gidx(p, gidx), dequantize_gptq(pack_gptq_qweight(p), qz, sc, gidx, p.N, p.K, bits, group, v2, "test"),
                            "gptq act-order " + std::to_string(bits) + "-bit");
          gidx.data<int32_t>()[3] = static_cast<int32_t>(p.G());
          EXPECT_THROW(dequantize_gptq(pack_gptq_qweight(p), qz, sc, gidx, p.N, p.K, bits, group, v2, "test"), Error);
        }
      }
}

// compressed-tensors pack-quantized: weight_packed i32 [N, ceil(K / per)], input k in bits
// [bits * (k % per), ...) of word k / per; zero points i32 [ceil(N / per), G] packed along
// the outputs the same way; codes and zero points stored offset by 2^(bits-1), so with
// q = signed code + offset and z likewise W = (q - z) * s.
Tensor pack_ct_rows(const std::vector<uint32_t>& v, int64_t rows, int64_t cols, int bits) {  // along cols
  const int per = 32 / bits;
  const int64_t P = (cols + per - 1) / per;
  Tensor w = Tensor::zeros({rows, P}, DType::I32);
  uint32_t* d = static_cast<uint32_t*>(w.raw());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) d[r * P + c / per] |= v[r * cols + c] << (bits * (c % per));
  return w;
}
Tensor pack_ct_zeros(const Packed& p) {  // along the outputs
  const int per = 32 / p.bits;
  Tensor w = Tensor::zeros({(p.N + per - 1) / per, p.G()}, DType::I32);
  uint32_t* d = static_cast<uint32_t*>(w.raw());
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t g = 0; g < p.G(); ++g) d[(n / per) * p.G() + g] |= p.z[n * p.G() + g] << (p.bits * (n % per));
  return w;
}
Tensor ct_shape(int64_t n, int64_t k) {
  Tensor t = Tensor::empty({2}, DType::I32);
  t.data<int32_t>()[0] = static_cast<int32_t>(n);
  t.data<int32_t>()[1] = static_cast<int32_t>(k);
  return t;
}

TEST(QuantFormats, CompressedTensorsDecodeBitExactly) {
  std::mt19937_64 rng(17);
  for (int bits : {4, 8})
    for (int group : {32, 64, 0})  // 0: "channel", one group per row
      for (bool sym : {true, false}) {
        Packed p = random_packed(24, 128, bits, group ? group : 128, rng);
        if (sym)
          for (uint32_t& z : p.z) z = 1u << (bits - 1);
        const Tensor scale = half_tensor(p.s, {p.N, p.G()}, DType::BF16);
        Tensor gidx = Tensor::empty({p.K}, DType::I32);
        for (int64_t k = 0; k < p.K; ++k) gidx.data<int32_t>()[k] = static_cast<int32_t>(k / p.group);
        const std::string what = "ct " + std::to_string(bits) + "-bit group " + std::to_string(group) +
                                 (sym ? " sym" : " asym");
        const QuantizedMatrix m = decode_ct_packed(pack_ct_rows(p.q, p.N, p.K, bits), scale,
                                                   sym ? Tensor() : pack_ct_zeros(p), gidx, ct_shape(p.N, p.K), p.N,
                                                   p.K, bits, group ? group : -1, "test");
        expect_bits_equal(dequant_zero(p), ref::dequantize(m), what);
        // A wrong weight_shape and act-order g_idx are refused.
        EXPECT_THROW(decode_ct_packed(pack_ct_rows(p.q, p.N, p.K, bits), scale, Tensor(), Tensor(),
                                      ct_shape(p.N, p.K + 8), p.N, p.K, bits, group ? group : -1, "test"),
                     Error);
        std::swap(gidx.data<int32_t>()[0], gidx.data<int32_t>()[p.K - 1]);
        if (group) {
          const Tensor zp = sym ? Tensor() : pack_ct_zeros(p);
          EXPECT_THROW(decode_ct_packed(pack_ct_rows(p.q, p.N, p.K, bits), scale, zp, gidx, Tensor(), p.N, p.K, bits,
                                        group, "test"),
                       Error);
          // Act-order: dequantize_ct_packed follows weight_g_idx.
          expect_bits_equal(dequant_by_gidx(p, gidx), dequantize_ct_packed(pack_ct_rows(p.q, p.N, p.K, bits), scale, zp, gidx, Tensor(),
                                                       p.N, p.K, bits, group, "test"),
                            what + " act-order");
        }
      }
  // int-quantized: i8 weights, one scale per row: W = q * s.
  Tensor w = Tensor::empty({16, 96}, DType::I8);
  std::uniform_int_distribution<int> code(-128, 127);
  for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = static_cast<int8_t>(code(rng));
  std::vector<float> s(16), want(16 * 96);
  for (int n = 0; n < 16; ++n) s[n] = bf16r(0.001f * static_cast<float>(n + 1) + 0.0003f);
  for (int n = 0; n < 16; ++n)
    for (int k = 0; k < 96; ++k) want[n * 96 + k] = static_cast<float>(w.data<int8_t>()[n * 96 + k]) * s[n];
  expect_bits_equal(want, ref::dequantize(decode_ct_int8(w, half_tensor(s, {16, 1}, DType::BF16), 16, 96, "test")),
                    "ct int8");
}

// ---- checkpoints -----------------------------------------------------------------------

enum class Fmt {
  Mlx4, Mlx8Mixed, Awq, GptqSym4, GptqAsym8, GptqActOrder, Fp8Block, Fp8Tensor, CtW4Sym, CtW4ActOrder, CtW8Asym, CtInt8,
  CtFp8
};
bool is_ct(Fmt f) {
  return f == Fmt::CtW4Sym || f == Fmt::CtW4ActOrder || f == Fmt::CtW8Asym || f == Fmt::CtInt8 || f == Fmt::CtFp8;
}
const char* fmt_name(Fmt f) {
  switch (f) {
    case Fmt::GptqActOrder: return "act_order";
    case Fmt::CtW4Sym: return "ct_w4a16_sym";
    case Fmt::CtW4ActOrder: return "ct_w4a16_actorder";
    case Fmt::CtW8Asym: return "ct_w8a16_asym_channel";
    case Fmt::CtInt8: return "ct_w8a8_int8";
    case Fmt::CtFp8: return "ct_fp8_channel";
    case Fmt::Fp8Block: return "fp8_block";
    case Fmt::Fp8Tensor: return "fp8_tensor";
    case Fmt::Mlx4: return "mlx4";
    case Fmt::Mlx8Mixed: return "mlx8_mixed";
    case Fmt::Awq: return "awq";
    case Fmt::GptqSym4: return "gptq_sym4";
    case Fmt::GptqAsym8: return "gptq_asym8";
  }
  return "?";
}

using test::Fp8Packed;
using test::fp8_quantize;
using test::fp8_value;

bool is_linear(const std::string& name) {
  for (const char* m : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
    if (name.find(std::string(m) + ".weight") != std::string::npos) return true;
  return false;
}

// Writes <scratch>/<model>_<fmt> (quantized) and <scratch>/<model>_<fmt>_deq (f32 weights
// as the format dequantizes them; the other tensors in f32) and returns both paths.
std::pair<fs::path, fs::path> build(const std::string& model, Fmt fmt) {
  const fs::path src = models_dir() / model;
  const fs::path qdir = scratch_dir() / (model + "_" + fmt_name(fmt));
  const fs::path ddir = scratch_dir() / (model + "_" + fmt_name(fmt) + "_deq");
  if (fs::exists(ddir / "config.json")) return {qdir, ddir};
  fs::create_directories(qdir);
  fs::create_directories(ddir);
  const Checkpoint ck = Checkpoint::open(src.string());
  std::vector<std::pair<std::string, Tensor>> qt, dt;
  const bool mlx = fmt == Fmt::Mlx4 || fmt == Fmt::Mlx8Mixed;
  const bool fp8 = fmt == Fmt::Fp8Block || fmt == Fmt::Fp8Tensor;
  for (const std::string& name : ck.names()) {
    const Tensor t = ck.get(name);
    const std::vector<float> w = test::f32_values(t);
    if (is_ct(fmt) && is_linear(name)) {
      // compressed-tensors as llm-compressor writes it.
      const int64_t N = t.dim(0), K = t.dim(1);
      const std::string module = name.substr(0, name.size() - 7);
      if (fmt == Fmt::CtFp8) {  // FP8 per channel, bf16 scales [N, 1]
        Fp8Packed p = fp8_quantize(w, N, K, DType::F8E4M3, 1, 0);
        std::vector<float> sc(p.scale.data<float>(), p.scale.data<float>() + N);
        for (float& v : sc) v = bf16r(v);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k)
            p.deq[n * K + k] = fp8_value(DType::F8E4M3, p.weight.data<uint8_t>()[n * K + k]) * sc[n];
        qt.emplace_back(name, p.weight);
        qt.emplace_back(module + ".weight_scale", half_tensor(sc, {N, 1}, DType::BF16));
        dt.emplace_back(name, f32_tensor(p.deq, t.shape()));
        continue;
      }
      if (fmt == Fmt::CtInt8) {  // int8 per channel, symmetric
        Packed p = quantize_for(w, N, K, 8, static_cast<int>(K), false, true, DType::BF16);
        Tensor q = Tensor::empty({N, K}, DType::I8);
        for (int64_t i = 0; i < N * K; ++i) q.data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(p.q[i]) - 128);
        qt.emplace_back(name, q);
        qt.emplace_back(module + ".weight_scale", half_tensor(p.s, {N, 1}, DType::BF16));
        qt.emplace_back(module + ".input_scale", f32_tensor({0.02f}, {1}));  // static W8A8 activations
        dt.emplace_back(name, f32_tensor(dequant_zero(p), {N, K}));
        continue;
      }
      const bool w4 = fmt != Fmt::CtW8Asym;
      const int bits = w4 ? 4 : 8, group = w4 ? 32 : static_cast<int>(K);
      const Packed p = quantize_for(w, N, K, bits, group, false, w4, DType::BF16);
      qt.emplace_back(module + ".weight_packed", pack_ct_rows(p.q, N, K, bits));
      qt.emplace_back(module + ".weight_scale", half_tensor(p.s, {N, p.G()}, DType::BF16));
      qt.emplace_back(module + ".weight_shape", ct_shape(N, K));
      if (!w4) qt.emplace_back(module + ".weight_zero_point", pack_ct_zeros(p));
      if (fmt == Fmt::CtW4ActOrder) {  // actorder "group": input k's group is weight_g_idx[k]
        const Tensor gidx = g_idx_of(K, group, true, static_cast<uint64_t>(N * 7 + K));
        qt.emplace_back(module + ".weight_g_idx", gidx);
        dt.emplace_back(name, f32_tensor(dequant_by_gidx(p, gidx), {N, K}));
        continue;
      }
      dt.emplace_back(name, f32_tensor(dequant_zero(p), {N, K}));
      continue;
    }
    if (fp8 && is_linear(name)) {
      // Block-wise e4m3 with partial blocks at the edges (32 x 48 over 64- and 160-wide
      // matrices); or e5m2 with one weight_scale per matrix and a static input_scale.
      const bool block = fmt == Fmt::Fp8Block;
      const Fp8Packed p = fp8_quantize(w, t.dim(0), t.dim(1), block ? DType::F8E4M3 : DType::F8E5M2, block ? 32 : 0,
                                       block ? 48 : 0);
      const std::string module = name.substr(0, name.size() - 7);
      qt.emplace_back(name, p.weight);
      if (block) {
        qt.emplace_back(module + ".weight_scale_inv", p.scale);
      } else {
        qt.emplace_back(module + ".weight_scale", p.scale.view({}));
        qt.emplace_back(module + ".input_scale", f32_tensor({0.5f}, {}));
      }
      dt.emplace_back(name, f32_tensor(p.deq, t.shape()));
      continue;
    }
    const bool embed_or_head = name == "model.embed_tokens.weight" || name == "lm_head.weight";
    bool quantize = is_linear(name) || (mlx && embed_or_head);
    int bits = 4, group = 32;
    if (fmt == Fmt::Mlx8Mixed) {
      bits = 8;
      if (name == "model.layers.1.mlp.down_proj.weight") bits = 4;  // per-module override
      if (name == "lm_head.weight") quantize = false;                // override: false
      if (name.find("layers.2.self_attn.k_proj") != std::string::npos) bits = 4;  // mixed within q|k|v
    }
    if (fmt == Fmt::GptqAsym8) {
      bits = 8;
      group = static_cast<int>(t.dim(-1));
    }
    if (!quantize) {
      qt.emplace_back(name, t);
      dt.emplace_back(name, f32_tensor(w, t.shape()));
      continue;
    }
    const int64_t N = t.dim(0), K = t.dim(1);
    const std::string module = name.substr(0, name.size() - 7);
    const bool sym = fmt == Fmt::GptqSym4;
    Packed p = quantize_for(w, N, K, bits, group, mlx, sym, mlx ? DType::BF16 : DType::F16);
    if (mlx) {
      qt.emplace_back(module + ".weight", pack_mlx_weight(p));
      qt.emplace_back(module + ".scales", half_tensor(p.s, {N, p.G()}, DType::BF16));
      qt.emplace_back(module + ".biases", half_tensor(p.b, {N, p.G()}, DType::BF16));
      dt.emplace_back(name, f32_tensor(dequant_mlx(p), {N, K}));
    } else if (fmt == Fmt::Awq) {
      std::vector<uint32_t> q_kn(K * N), z_gn(p.G() * N);
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t k = 0; k < K; ++k) q_kn[k * N + n] = p.q[n * K + k];
        for (int64_t g = 0; g < p.G(); ++g) z_gn[g * N + n] = p.z[n * p.G() + g];
      }
      qt.emplace_back(module + ".qweight", pack_awq(q_kn, K, N));
      qt.emplace_back(module + ".qzeros", pack_awq(z_gn, p.G(), N));
      qt.emplace_back(module + ".scales", half_tensor(t_scales(p), {p.G(), N}, DType::F16));
      dt.emplace_back(name, f32_tensor(dequant_zero(p), {N, K}));
    } else {
      qt.emplace_back(module + ".qweight", pack_gptq_qweight(p));
      qt.emplace_back(module + ".qzeros", pack_gptq_qzeros(p));
      qt.emplace_back(module + ".scales", half_tensor(t_scales(p), {p.G(), N}, DType::F16));
      // Act-order: input k belongs to group g_idx[k], as GPTQ's desc_act writes it.
      const Tensor gidx = g_idx_of(K, group, fmt == Fmt::GptqActOrder, static_cast<uint64_t>(N * 131 + K));
      qt.emplace_back(module + ".g_idx", gidx);
      dt.emplace_back(name, f32_tensor(dequant_by_gidx(p, gidx), {N, K}));
    }
  }
  write_safetensors((qdir / "model.safetensors").string(), qt);
  write_safetensors((ddir / "model.safetensors").string(), dt);
  std::ifstream f(src / "config.json");
  json cfg = json::parse(f);
  json dcfg = cfg;
  dcfg["torch_dtype"] = "float32";
  if (mlx) {
    json q = {{"group_size", 32}, {"bits", fmt == Fmt::Mlx4 ? 4 : 8}};
    if (fmt == Fmt::Mlx8Mixed) {
      q["model.layers.1.mlp.down_proj"] = {{"group_size", 32}, {"bits", 4}};
      q["model.layers.2.self_attn.k_proj"] = {{"group_size", 32}, {"bits", 4}};
      q["lm_head"] = false;
    }
    cfg["quantization"] = q;
    cfg["quantization_config"] = q;
  } else if (is_ct(fmt)) {
    cfg["torch_dtype"] = "bfloat16";
    json weights = {{"num_bits", 4}, {"type", "int"}, {"symmetric", true}, {"strategy", "group"},
                    {"group_size", 32}, {"actorder", nullptr}, {"dynamic", false}};
    json acts = nullptr;
    std::string format = "pack-quantized";
    if (fmt == Fmt::CtW4ActOrder) weights["actorder"] = "group";
    if (fmt == Fmt::CtW8Asym) {
      weights = {{"num_bits", 8}, {"type", "int"}, {"symmetric", false}, {"strategy", "channel"}, {"group_size", nullptr}};
    } else if (fmt == Fmt::CtInt8) {
      format = "int-quantized";
      weights = {{"num_bits", 8}, {"type", "int"}, {"symmetric", true}, {"strategy", "channel"}};
      acts = {{"num_bits", 8}, {"type", "int"}, {"symmetric", true}, {"strategy", "tensor"}, {"dynamic", false}};
    } else if (fmt == Fmt::CtFp8) {
      format = "float-quantized";
      weights = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"strategy", "channel"}};
      acts = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"strategy", "token"}, {"dynamic", true}};
    }
    cfg["quantization_config"] = {
        {"quant_method", "compressed-tensors"}, {"format", format}, {"quantization_status", "compressed"},
        {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}, {"input_activations", acts}}}}},
        {"ignore", {"lm_head"}}};
  } else if (fp8) {
    cfg["torch_dtype"] = "bfloat16";
    if (fmt == Fmt::Fp8Block)
      cfg["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
                                    {"weight_block_size", {32, 48}}};
    else
      cfg["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e5m2"}, {"activation_scheme", "static"},
                                    {"modules_to_not_convert", {"lm_head"}}};
  } else if (fmt == Fmt::Awq) {
    cfg["torch_dtype"] = "float16";
    cfg["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 32},
                                  {"zero_point", true}, {"version", "gemm"}};
  } else {
    cfg["torch_dtype"] = "float16";
    const bool four = fmt != Fmt::GptqAsym8;
    cfg["quantization_config"] = {{"quant_method", "gptq"}, {"bits", four ? 4 : 8}, {"group_size", four ? 32 : -1},
                                  {"desc_act", fmt == Fmt::GptqActOrder}, {"sym", fmt == Fmt::GptqSym4},
                                  {"checkpoint_format", "gptq"}};
  }
  std::ofstream(qdir / "config.json") << cfg.dump(2);
  std::ofstream(ddir / "config.json") << dcfg.dump(2);
  return {qdir, ddir};
}

// Logits [P, V] of one prompt run as a single prefill on the CPU backend.
Tensor logits_of(const fs::path& dir, DType weight_dtype, const std::vector<int32_t>& prompt,
                 const std::string& quantization = "", int group = 64) {
  auto be = make_cpu_backend({2});
  return test::model_logits(*be, dir, weight_dtype, prompt, quantization, group);
}

std::vector<int32_t> prompt_of(int n, int vocab, uint64_t seed) { return test::random_prompt(n, vocab, seed); }


using test::kl_top1;

struct E2ECase {
  std::string model;
  Fmt fmt;
};

class QuantEndToEnd : public ::testing::TestWithParam<E2ECase> {};

TEST_P(QuantEndToEnd, SameLogitsAsTheDequantizedModel) {
  const auto [model, fmt] = GetParam();
  const auto [qdir, ddir] = build(model, fmt);
  const std::vector<int32_t> prompt = prompt_of(11, 384, 7);
  const Tensor dense = logits_of(ddir, DType::F32, prompt);
  // Exact path (dtype float32): f32 activations times exactly dequantized weights.
  const Tensor exact = logits_of(qdir, DType::F32, prompt);
  const double scale = max_abs(dense);
  EXPECT_LE(max_diff(exact, dense), 2e-6 * scale + 1e-6)
      << fmt_name(fmt) << ": max |logit diff| " << max_diff(exact, dense) << " of max |logit| " << scale;
  // Fast path (dtype bfloat16): activations rounded to int8 per block of 32.
  const Tensor fast = logits_of(qdir, DType::BF16, prompt);
  const auto [kl, top1] = kl_top1(dense, fast);
  // (FP8 and act-order GPTQ are dequantized on load: their fast path is bf16 weights and
  // activations.)
  const bool fp8 = fmt == Fmt::Fp8Block || fmt == Fmt::Fp8Tensor || fmt == Fmt::CtFp8 || fmt == Fmt::GptqActOrder ||
                   fmt == Fmt::CtW4ActOrder;
  std::printf("[ %s/%s ] exact path max|diff| %.3g (max|logit| %.3g); %s path KL %.3g, top-1 %.3f\n", model.c_str(),
              fmt_name(fmt), max_diff(exact, dense), scale, fp8 ? "bf16" : "int8-activation", kl, top1);
  // The random test models are sharp (lm_head std 1 over 64 inputs: logits up to ~40), so
  // small activation errors show; the kernel tests bound this path tightly.
  EXPECT_LT(kl, 0.02) << fmt_name(fmt);
  EXPECT_GE(top1, 0.8) << fmt_name(fmt);
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantEndToEnd,
                         ::testing::Values(E2ECase{"qwen2_untied", Fmt::Mlx4}, E2ECase{"qwen2_tied", Fmt::Mlx4},
                                           E2ECase{"qwen2_untied", Fmt::Mlx8Mixed}, E2ECase{"qwen2_untied", Fmt::Awq},
                                           E2ECase{"qwen2_tied", Fmt::Awq}, E2ECase{"qwen2_untied", Fmt::GptqSym4},
                                           E2ECase{"qwen2_untied", Fmt::GptqAsym8},
                                           E2ECase{"qwen2_untied", Fmt::GptqActOrder},
                                           E2ECase{"qwen2_untied", Fmt::Fp8Block}, E2ECase{"qwen2_tied", Fmt::Fp8Tensor},
                                           E2ECase{"qwen3_moe", Fmt::Fp8Block},
                                           E2ECase{"qwen2_untied", Fmt::CtW4Sym},
                                           E2ECase{"qwen2_untied", Fmt::CtW4ActOrder}, E2ECase{"qwen2_tied", Fmt::CtW8Asym},
                                           E2ECase{"qwen2_untied", Fmt::CtInt8}, E2ECase{"qwen3_moe", Fmt::CtFp8}),
                         [](const auto& info) { return info.param.model + "_" + fmt_name(info.param.fmt); });

// Quantize on load computes with exactly the weights its quantizer produces: an f32
// checkpoint of those dequantized weights gives the same logits within f32 rounding.
// The quantizers' codes by their definition: per group lo / hi, scale (hi - lo) / qmax and
// offset lo rounded to f16, code = clamp(round half to even((x - offset) * (1 / scale))); per
// channel amax / 127 and round half to even(x / scale) + 128. Rows of exact ties (x.5 after
// scaling) and random rows, at 4 and 8 bits.
TEST(QuantOnLoad, CodesFollowTheDefinitionIncludingTies) {
  const int64_t cols = 64;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  std::vector<float> w;
  for (int bits : {4, 8}) {
    const float qmax = static_cast<float>((1 << bits) - 1);
    for (int g = 0; g < 2; ++g) {  // ties: lo = 0, hi = qmax (scale 1), then x.5 values
      w.push_back(0.0f);
      w.push_back(qmax);
      for (int64_t c = 2; c < 32; ++c) w.push_back(static_cast<float>((c - 2) % static_cast<int>(qmax)) + 0.5f);
    }
  }
  for (int64_t c = 0; c < cols; ++c) w.push_back(c == 0 ? 127.0f : static_cast<float>(c % 250 - 125) + 0.5f);
  for (int r = 0; r < 6; ++r)
    for (int64_t c = 0; c < cols; ++c) w.push_back(u(rng));
  const int64_t rows = static_cast<int64_t>(w.size()) / cols;
  auto f16 = [](float v) { return f16_to_f32(f32_to_f16(v)); };
  for (int bits : {4, 8}) {
    const QuantizedMatrix m = quantize_affine(w.data(), rows, cols, bits, 32);
    const float qmax = static_cast<float>((1 << bits) - 1);
    int64_t ties = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < 2; ++g) {
        const float* x = w.data() + r * cols + 32 * g;
        const float lo = *std::min_element(x, x + 32), hi = *std::max_element(x, x + 32);
        const float s = m.scales.data<float>()[r * 2 + g], o = m.offsets.data<float>()[r * 2 + g];
        ASSERT_EQ(s, f16((hi - lo) / qmax)) << bits << " bits, row " << r;
        ASSERT_EQ(o, f16(lo)) << bits << " bits, row " << r;
        const float inv = s > 0.0f ? 1.0f / s : 0.0f;
        for (int c = 0; c < 32; ++c) {
          const float v = (x[c] - o) * inv;
          ties += v - std::floor(v) == 0.5f;
          const float want = std::clamp(std::nearbyint(v), 0.0f, qmax);
          ASSERT_EQ(m.codes.data<uint8_t>()[r * cols + 32 * g + c], static_cast<uint8_t>(want))
              << bits << " bits, row " << r << " col " << 32 * g + c << ": x " << x[c] << " -> " << v;
        }
      }
    EXPECT_GE(ties, 30) << "the tie rows did not produce ties";
  }
  const QuantizedMatrix m = quantize_int8_per_channel(w.data(), rows, cols);
  int64_t ties = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = w.data() + r * cols;
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[c]));
    const float s = m.scales.data<float>()[r];
    ASSERT_EQ(s, f16(amax / 127.0f)) << "row " << r;
    const float inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = x[c] * inv;
      ties += std::fabs(v - std::trunc(v)) == 0.5f;
      const int want = static_cast<int>(std::clamp(std::nearbyint(v), -127.0f, 127.0f)) + 128;
      ASSERT_EQ(m.codes.data<uint8_t>()[r * cols + c], want) << "int8 row " << r << " col " << c << ": " << v;
    }
  }
  EXPECT_GE(ties, 30) << "the per-channel tie row did not produce ties";
}

TEST(QuantOnLoad, MatchesItsDequantizedWeights) {
  for (const std::string model : {"qwen2_untied", "qwen2_tied"}) {
    const fs::path src = models_dir() / model;
    const Checkpoint ck = Checkpoint::open(src.string());
    for (const auto& [q, group] : std::vector<std::pair<std::string, int>>{{"int8", 64}, {"int4", 32}, {"int4", 64}, {"int4", 128}}) {
      const fs::path ddir = scratch_dir() / (model + "_onload_" + q + "_" + std::to_string(group) + "_deq");
      fs::create_directories(ddir);
      std::vector<std::pair<std::string, Tensor>> dt;
      for (const std::string& name : ck.names()) {
        const Tensor t = ck.get(name);
        const std::vector<float> w = test::f32_values(t);
        const bool head = name == "model.embed_tokens.weight" || name == "lm_head.weight";
        if (!is_linear(name) && !head) {
          dt.emplace_back(name, f32_tensor(w, t.shape()));
          continue;
        }
        const QuantizedMatrix m = q == "int8" || head ? quantize_int8_per_channel(w.data(), t.dim(0), t.dim(1))
                                                      : quantize_affine(w.data(), t.dim(0), t.dim(1), 4, group);
        dt.emplace_back(name, ref::dequantize(m));
      }
      write_safetensors((ddir / "model.safetensors").string(), dt);
      fs::copy_file(src / "config.json", ddir / "config.json", fs::copy_options::overwrite_existing);
      const std::vector<int32_t> prompt = prompt_of(13, 384, 9);
      const Tensor dense = logits_of(ddir, DType::F32, prompt);
      const Tensor got = logits_of(src, DType::F32, prompt, q, group);
      EXPECT_LE(max_diff(got, dense), 2e-6 * max_abs(dense) + 1e-6) << model << " " << q << " group " << group;
    }
  }
}

// Quantize on load against the bf16 model (f32 compute on both sides): the numbers go to
// the log. These random models are sharp (lm_head std 1 over 64 inputs, logits up to ~40)
// and quantization noise shows much more than on trained weights; the bounds catch a broken
// path (KL of unrelated logits is > 5 here), not small regressions.
TEST(QuantOnLoad, KlAndTop1AgainstBf16) {
  for (const std::string model : {"qwen2_untied", "qwen2_tied", "qwen3_gqa7_bias"}) {
    const fs::path dir = models_dir() / model;
    if (!fs::exists(dir / "config.json")) continue;
    const std::vector<int32_t> prompt = prompt_of(24, 384, 3);
    const Tensor ref = logits_of(dir, DType::F32, prompt);
    for (const auto& [q, group, max_kl, min_top1] :
         std::vector<std::tuple<std::string, int, double, double>>{{"int8", 0, 0.05, 0.9},
                                                                   {"int4", 32, 1.0, 0.45},
                                                                   {"int4", 128, 2.0, 0.35}}) {
      for (DType dt : {DType::F32, DType::BF16}) {
        const Tensor got = logits_of(dir, dt, prompt, q, group ? group : 64);
        const auto [kl, top1] = kl_top1(ref, got);
        std::printf("[ %s ] %s group %d (%s path): KL %.4g, top-1 agreement %.3f\n", model.c_str(), q.c_str(), group,
                    dt == DType::F32 ? "f32-activation" : "int8-activation", kl, top1);
        EXPECT_LT(kl, max_kl) << model << " " << q;
        EXPECT_GE(top1, min_top1) << model << " " << q;
      }
    }
  }
}

TEST(QuantExport, MlxCheckpointReadsBack) {
  for (int bits : {4, 8}) {
    const fs::path out = scratch_dir() / ("exported_" + std::to_string(bits));
    const QuantizeExportStats st = write_mlx_checkpoint((models_dir() / "qwen2_untied").string(), out.string(), bits, 32);
    EXPECT_EQ(st.quantized, 3 * 7 + 2);  // 7 linears per layer, embedding, lm_head
    std::ifstream f(out / "config.json");
    const json cfg = json::parse(f);
    EXPECT_EQ(cfg["quantization"]["bits"], bits);
    EXPECT_EQ(cfg["quantization"]["group_size"], 32);
    // The stored codes decode to quantize_affine of the original weights.
    const Checkpoint src = Checkpoint::open((models_dir() / "qwen2_untied").string());
    const Checkpoint q = Checkpoint::open(out.string());
    const std::string m = "model.layers.0.mlp.down_proj";
    const Tensor w = src.get(m + ".weight");
    const std::vector<float> wf = test::f32_values(w);
    const QuantizedMatrix want = quantize_affine(wf.data(), w.dim(0), w.dim(1), bits, 32, DType::BF16);
    const QuantizedMatrix got = decode_mlx(q.get(m + ".weight"), q.get(m + ".scales"), q.get(m + ".biases"), w.dim(0),
                                           w.dim(1), bits, 32, m);
    ASSERT_EQ(0, std::memcmp(want.codes.raw(), got.codes.raw(), want.codes.nbytes()));
    ASSERT_EQ(0, std::memcmp(want.scales.raw(), got.scales.raw(), want.scales.nbytes()));
    ASSERT_EQ(0, std::memcmp(want.offsets.raw(), got.offsets.raw(), want.offsets.nbytes()));
    // And the model loads and stays close to the original.
    const std::vector<int32_t> prompt = prompt_of(16, 384, 5);
    const auto [kl, top1] = kl_top1(logits_of(models_dir() / "qwen2_untied", DType::F32, prompt),
                                    logits_of(out, DType::F32, prompt));
    std::printf("[ exported mlx %d-bit g32 ] KL %.4g, top-1 %.3f\n", bits, kl, top1);
    EXPECT_LT(kl, bits == 8 ? 0.01 : 2.0);
    EXPECT_THROW(write_mlx_checkpoint(out.string(), (scratch_dir() / "again").string(), 4, 32), InvalidArgument);
  }
}

// What `tinyllm quantize` must refuse before it writes anything: an --out that is the model
// directory (it overwrote the float weights, then failed), an --out holding another
// checkpoint's shards (their index was read instead of the new weights), a config.json the
// loader refuses (it was copied into the output). Each error names what is wrong.
TEST(QuantExport, RefusesOutputsThatWouldDestroyOrShadowWeights) {
  const auto expect_refused = [](const fs::path& model, const fs::path& out, const std::string& want) {
    try {
      write_mlx_checkpoint(model.string(), out.string(), 4, 32);
      ADD_FAILURE() << "accepted " << model << " -> " << out;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  const fs::path model = scratch_dir() / "refuse_src";
  fs::remove_all(model);
  fs::copy(models_dir() / "qwen2_untied", model, fs::copy_options::recursive);
  const auto bytes_before = fs::file_size(model / "model.safetensors");
  expect_refused(model, model, "is the model directory");
  EXPECT_EQ(fs::file_size(model / "model.safetensors"), bytes_before);
  EXPECT_FALSE(fs::exists(model / "config.json") && json::parse(std::ifstream(model / "config.json")).contains("quantization"));

  const fs::path shards = scratch_dir() / "refuse_shards";
  fs::remove_all(shards);
  fs::create_directories(shards);
  std::ofstream(shards / "model.safetensors.index.json") << "{}";
  expect_refused(model, shards, "holds weights of another checkpoint (model.safetensors.index.json)");
  fs::remove(shards / "model.safetensors.index.json");
  std::ofstream(shards / "model-00001-of-00002.safetensors") << "x";
  expect_refused(model, shards, "holds weights of another checkpoint (model-00001-of-00002.safetensors)");

  json cfg = json::parse(std::ifstream(model / "config.json"));
  cfg["num_key_value_heads"] = 3;
  std::ofstream(model / "config.json") << cfg.dump();
  const fs::path fresh = scratch_dir() / "refuse_fresh";
  fs::remove_all(fresh);
  expect_refused(model, fresh, "num_key_value_heads");
  EXPECT_FALSE(fs::exists(fresh));
  fs::remove_all(model);
  fs::remove_all(shards);
}

// `tinyllm quantize` of an FP8 checkpoint: its weights dequantized, rounded to bf16 and
// quantized as a bf16 checkpoint's are; the scales are dropped and the result loads.
TEST(QuantExport, Fp8CheckpointIsQuantizedFromItsDequantizedWeights) {
  const auto [qdir, ddir] = build("qwen2_untied", Fmt::Fp8Block);
  const fs::path out = scratch_dir() / "exported_from_fp8";
  const QuantizeExportStats st = write_mlx_checkpoint(qdir.string(), out.string(), 8, 32);
  EXPECT_EQ(st.quantized, 3 * 7 + 2);
  const Checkpoint dense = Checkpoint::open(ddir.string());
  const Checkpoint q = Checkpoint::open(out.string());
  for (const std::string& n : q.names()) EXPECT_EQ(n.find("weight_scale"), std::string::npos) << n;
  const std::string m = "model.layers.2.mlp.gate_proj";
  std::vector<float> w = test::f32_values(dense.get(m + ".weight"));
  for (float& v : w) v = bf16r(v);
  const QuantizedMatrix want = quantize_affine(w.data(), 160, 64, 8, 32, DType::BF16);
  const QuantizedMatrix got = decode_mlx(q.get(m + ".weight"), q.get(m + ".scales"), q.get(m + ".biases"), 160, 64,
                                         8, 32, m);
  ASSERT_EQ(0, std::memcmp(want.codes.raw(), got.codes.raw(), want.codes.nbytes()));
  ASSERT_EQ(0, std::memcmp(want.scales.raw(), got.scales.raw(), want.scales.nbytes()));
  std::ifstream f(out / "config.json");
  const json cfg = json::parse(f);
  EXPECT_EQ(cfg["quantization_config"]["bits"], 8);  // MLX's, not FP8's
  EXPECT_FALSE(cfg["quantization_config"].contains("quant_method"));
  const std::vector<int32_t> prompt = prompt_of(16, 384, 5);
  const auto [kl, top1] = kl_top1(logits_of(ddir, DType::F32, prompt), logits_of(out, DType::F32, prompt));
  std::printf("[ mlx 8-bit g32 from fp8 ] KL %.4g, top-1 %.3f\n", kl, top1);
  EXPECT_LT(kl, 0.01);
}

// ---- errors ------------------------------------------------------------------------------

fs::path with_config(const std::string& name, const std::function<void(json&)>& edit) {
  const fs::path dir = scratch_dir() / ("cfg_" + name);
  fs::create_directories(dir);
  std::ifstream f(models_dir() / "qwen2_untied" / "config.json");
  json cfg = json::parse(f);
  edit(cfg);
  std::ofstream(dir / "config.json") << cfg.dump(2);
  return dir;
}

void expect_error(const fs::path& dir, const std::string& option, const std::string& needle) {
  try {
    QuantSpec::resolve(dir.string(), option, 64);
    FAIL() << "no error for " << dir << " (expected one mentioning \"" << needle << "\")";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(QuantConfig, DetectsFormats) {
  EXPECT_EQ(QuantSpec::resolve((models_dir() / "qwen2_untied").string(), "", 64).format, QuantFormat::None);
  EXPECT_EQ(QuantSpec::resolve((models_dir() / "qwen2_untied").string(), "int4", 32).describe(),
            "quantize-on-load 4-bit, group 32");
  const QuantSpec awq = QuantSpec::resolve(build("qwen2_untied", Fmt::Awq).first.string(), "", 64);
  EXPECT_EQ(awq.format, QuantFormat::Awq);
  EXPECT_EQ(awq.group_size, 32);
  const QuantSpec mlx = QuantSpec::resolve(build("qwen2_untied", Fmt::Mlx8Mixed).first.string(), "", 64);
  EXPECT_EQ(mlx.format, QuantFormat::Mlx);
  EXPECT_EQ(mlx.bits, 8);
  EXPECT_EQ(mlx.mlx_overrides.size(), 3u);
  const fs::path fp8 = build("qwen2_untied", Fmt::Fp8Block).first;
  const QuantSpec f = QuantSpec::resolve(fp8.string(), "", 64);
  EXPECT_EQ(f.format, QuantFormat::Fp8);
  EXPECT_EQ(f.describe(), "fp8 e4m3, blocks 32x48, dequantized on load");
  // A backend with FP8 kernels (CUDA) loads e4m3 as it is; e5m2 stays dequantized there too.
  QuantSpec fk = f;
  fk.fp8_kernels = true;
  EXPECT_TRUE(fk.fp8_native() && !fk.dequantized_on_load());
  EXPECT_EQ(fk.describe(), "fp8 e4m3, blocks 32x48, FP8 kernels (W8A16)");
  EXPECT_DOUBLE_EQ(quant_bytes_per_weight(fk, false, DType::BF16), 1.0 + 4.0 / 48);
  EXPECT_DOUBLE_EQ(quant_bytes_per_weight(fk, true, DType::BF16), 2.0);
  QuantSpec f5 = QuantSpec::resolve(build("qwen2_tied", Fmt::Fp8Tensor).first.string(), "", 64);
  f5.fp8_kernels = true;
  EXPECT_TRUE(!f5.fp8_native() && f5.dequantized_on_load());
  // --quantization on an FP8 checkpoint quantizes its dequantized weights.
  EXPECT_EQ(QuantSpec::resolve(fp8.string(), "int4", 64).describe(),
            "quantize-on-load 4-bit, group 64 (from fp8 e4m3, blocks 32x48)");
  EXPECT_EQ(QuantSpec::resolve(build("qwen2_tied", Fmt::Fp8Tensor).first.string(), "int8", 64).describe(),
            "quantize-on-load 8-bit per channel (from fp8 e5m2, one scale per matrix)");
  // compressed-tensors: integer schemes keep their kernels; FP8 goes the FP8 way.
  EXPECT_EQ(QuantSpec::resolve(build("qwen2_untied", Fmt::CtW4Sym).first.string(), "", 64).describe(),
            "compressed-tensors pack-quantized 4-bit, group 32");
  EXPECT_EQ(QuantSpec::resolve(build("qwen2_tied", Fmt::CtW8Asym).first.string(), "", 64).describe(),
            "compressed-tensors pack-quantized 8-bit, one group per row");
  EXPECT_EQ(QuantSpec::resolve(build("qwen2_untied", Fmt::CtInt8).first.string(), "", 64).describe(),
            "compressed-tensors int-quantized 8-bit, one group per row");
  const QuantSpec ctf = QuantSpec::resolve(build("qwen3_moe", Fmt::CtFp8).first.string(), "", 64);
  EXPECT_EQ(ctf.format, QuantFormat::Fp8);
  EXPECT_EQ(ctf.describe(), "fp8 e4m3, per-channel scales, dequantized on load");
}

TEST(QuantConfig, RejectsUnsupportedWithClearErrors) {
  auto gptq = [](json& c) {
    c["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 128}, {"desc_act", false}};
  };
  // Act-order GPTQ loads dequantized (QuantEndToEnd's act_order case).
  EXPECT_TRUE(QuantSpec::resolve(with_config("desc_act", [&](json& c) { gptq(c); c["quantization_config"]["desc_act"] = true; })
                                     .string(),
                                 "", 64)
                  .act_order);
  expect_error(with_config("gptq3", [&](json& c) { gptq(c); c["quantization_config"]["bits"] = 3; }), "", "2, 4 or 8");
  expect_error(with_config("awq_gemv", [](json& c) {
                 c["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"version", "gemv"}};
               }),
               "", "gemm");
  expect_error(with_config("bnb", [](json& c) { c["quantization_config"] = {{"quant_method", "bitsandbytes"}}; }), "",
               "not supported");
  expect_error(with_config("mlx3", [](json& c) { c["quantization"] = {{"group_size", 64}, {"bits", 3}}; }), "",
               "2, 4 or 8");
  expect_error(with_config("mxfp4", [](json& c) {
                 c["quantization"] = {{"group_size", 32}, {"bits", 4}, {"mode", "mxfp4"}};
               }),
               "", "affine");
  expect_error(with_config("gptq_ok", gptq), "int4", "pre-quantized");
  auto fp8 = [](json& c) {
    c["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"weight_block_size", {128, 128}}};
  };
  expect_error(with_config("fp8_fmt", [&](json& c) { fp8(c); c["quantization_config"]["fmt"] = "e3m4"; }), "",
               "e4m3, e5m2");
  expect_error(with_config("fp8_block1", [&](json& c) { fp8(c); c["quantization_config"]["weight_block_size"] = {128}; }),
               "", "weight_block_size");
  expect_error(with_config("fp8_block0", [&](json& c) { fp8(c); c["quantization_config"]["weight_block_size"] = {0, 128}; }),
               "", "two positive integers");
  expect_error(with_config("fp8_act", [&](json& c) { fp8(c); c["quantization_config"]["activation_scheme"] = "tensor"; }),
               "", "dynamic, static");
  auto ct = [](json& c) {
    c["quantization_config"] = {
        {"quant_method", "compressed-tensors"}, {"format", "pack-quantized"}, {"quantization_status", "compressed"},
        {"config_groups",
         {{"group_0",
           {{"targets", {"Linear"}},
            {"weights", {{"num_bits", 4}, {"type", "int"}, {"symmetric", true}, {"strategy", "group"}, {"group_size", 128}}}}}}}};
  };
  auto ctw = [](json& c) -> json& { return c["quantization_config"]["config_groups"]["group_0"]["weights"]; };
  EXPECT_TRUE(
      QuantSpec::resolve(with_config("ct_actorder", [&](json& c) { ct(c); ctw(c)["actorder"] = "group"; }).string(), "", 64)
          .act_order);
  expect_error(with_config("ct_frozen", [&](json& c) { ct(c); c["quantization_config"]["quantization_status"] = "frozen"; }),
               "", "not \"frozen\"");
  expect_error(with_config("ct_w3", [&](json& c) { ct(c); ctw(c)["num_bits"] = 3; }), "", "4- or 8-bit");
  expect_error(with_config("ct_tensor", [&](json& c) { ct(c); ctw(c)["strategy"] = "tensor"; }), "", "group, channel");
  expect_error(with_config("ct_sparse", [&](json& c) { ct(c); c["quantization_config"]["format"] = "marlin-24"; }), "",
               "pack-quantized");
  expect_error(with_config("ct_fp4", [&](json& c) {
                 ct(c);
                 c["quantization_config"]["format"] = "float-quantized";
                 ctw(c)["type"] = "float";
                 ctw(c)["num_bits"] = 4;
               }),
               "", "8-bit (FP8)");
  expect_error(with_config("ct_mixed", [&](json& c) {
                 ct(c);
                 json g = c["quantization_config"]["config_groups"]["group_0"];
                 g["weights"]["num_bits"] = 8;
                 c["quantization_config"]["config_groups"]["group_1"] = g;
               }),
               "", "different weight schemes");
  expect_error(with_config("ct_w4a16_onload", ct), "int4", "pre-quantized");
  // vLLM's --quantization naming the checkpoint's method: accepted when it matches.
  EXPECT_EQ(QuantSpec::resolve(with_config("ct_named", ct).string(), "compressed-tensors", 64).format,
            QuantFormat::CompressedTensors);
  EXPECT_EQ(QuantSpec::resolve(with_config("gptq_named", gptq).string(), "gptq_marlin", 64).format, QuantFormat::Gptq);
  EXPECT_EQ(QuantSpec::resolve(with_config("fp8_named", fp8).string(), "fp8", 64).format, QuantFormat::Fp8);
  expect_error(with_config("gptq_as_awq", gptq), "awq", "a checkpoint quantized with gptq");
  expect_error(models_dir() / "qwen2_untied", "awq", "an unquantized checkpoint");
  // --quantization fp8 on a float checkpoint: e4m3 in 128 x 128 blocks on load, where the
  // backend has FP8 kernels; the CPU backend refuses it by name.
  const QuantSpec onl = QuantSpec::resolve((models_dir() / "qwen2_untied").string(), "fp8", 64);
  EXPECT_TRUE(onl.format == QuantFormat::Fp8 && onl.fp8_on_load && onl.fp8_block_rows == 128 &&
              onl.fp8_block_cols == 128 && onl.fp8_fmt == "e4m3");
  QuantSpec onk = onl;
  onk.fp8_kernels = true;
  EXPECT_EQ(onk.describe(), "quantize-on-load fp8 e4m3, blocks 128x128, FP8 kernels (W8A16)");
  try {
    logits_of(models_dir() / "qwen2_untied", DType::F32, {1, 2, 3}, "fp8");
    ADD_FAILURE() << "--quantization fp8 ran on the CPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no FP8 kernels"), std::string::npos) << e.what();
  }
  expect_error(models_dir() / "qwen2_untied", "int3", "int8, int4");
  try {
    QuantSpec::resolve((models_dir() / "qwen2_untied").string(), "int4", 48);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("32, 64, 128"), std::string::npos);
  }
}

// An FP8 checkpoint quantized on load (int8, int4) gives the logits of the same option on
// an f32 checkpoint of its dequantized weights: the quantizers see the same f32 numbers.
TEST(QuantOnLoad, FromFp8EqualsFromItsDequantizedWeights) {
  for (Fmt fmt : {Fmt::Fp8Block, Fmt::GptqActOrder, Fmt::CtW4ActOrder}) {  // (act-order alike)
    const auto [qdir, ddir] = build("qwen2_untied", fmt);
    const std::vector<int32_t> prompt = prompt_of(9, 384, 21);
    for (const auto& [q, group] : std::vector<std::pair<std::string, int>>{{"int8", 64}, {"int4", 32}}) {
      const Tensor want = logits_of(ddir, DType::F32, prompt, q, group);
      const Tensor got = logits_of(qdir, DType::F32, prompt, q, group);
      EXPECT_EQ(max_diff(got, want), 0.0) << fmt_name(fmt) << " " << q;
    }
  }
  EXPECT_EQ(QuantSpec::resolve(build("qwen2_untied", Fmt::GptqActOrder).first.string(), "", 64).describe(),
            "gptq 4-bit act-order, group 32, dequantized on load");
  EXPECT_EQ(QuantSpec::resolve(build("qwen2_untied", Fmt::GptqActOrder).first.string(), "int4", 64).describe(),
            "quantize-on-load 4-bit, group 64 (from gptq 4-bit act-order, group 32)");
  EXPECT_EQ(QuantSpec::resolve(build("qwen2_untied", Fmt::CtW4ActOrder).first.string(), "", 64).describe(),
            "compressed-tensors 4-bit act-order, group 32, dequantized on load");
}

// decode_fp8 (the FP8 kernels' form of an e4m3 weight) keeps the bytes and repeats each
// block's scale over its rows and block columns, so that it dequantizes to exactly what
// dequantize_fp8 gives: partial edge blocks, 128 x 128, per-channel and per-tensor scales.
TEST(QuantFormats, Fp8DecodeGivesTheDequantizedWeights) {
  std::mt19937_64 rng(41);
  struct B {
    int64_t N, K, br, bc;
  };
  for (const B& b : {B{70, 200, 32, 48}, B{256, 384, 128, 128}, B{40, 96, 1, 0}, B{33, 64, 0, 0}}) {
    Tensor w = Tensor::empty({b.N, b.K}, DType::F8E4M3);
    for (int64_t i = 0; i < w.numel(); ++i) {
      uint8_t c = static_cast<uint8_t>(rng());
      w.data<uint8_t>()[i] = (c & 0x7f) == 0x7f ? c ^ 1 : c;
    }
    const int64_t br = b.br ? b.br : b.N, bc = b.bc ? b.bc : b.K;
    const int64_t sr = (b.N + br - 1) / br, sc = (b.K + bc - 1) / bc;
    Tensor s = sr * sc == 1 ? Tensor::empty({}, DType::F32) : Tensor::empty({sr, sc}, DType::F32);
    std::uniform_real_distribution<float> sd(1e-4f, 1e-2f);
    for (int64_t i = 0; i < s.numel(); ++i) s.data<float>()[i] = sd(rng);
    const std::string what = detail::concat(b.N, "x", b.K, " blocks ", b.br, "x", b.bc);
    const QuantizedMatrix m = decode_fp8(w, s, b.br, b.bc, what);
    EXPECT_TRUE(m.fp8 && m.bits == 8) << what;
    EXPECT_EQ(m.groups(), sc) << what;
    EXPECT_EQ(std::memcmp(m.codes.raw(), w.raw(), w.nbytes()), 0) << what;
    const Tensor deq = dequantize_fp8(w, s, b.br, b.bc, what);
    expect_bits_equal(test::f32_values(ref::dequantize(m)), deq, what);
  }
  // e5m2 stays dequantized: decode_fp8 takes e4m3 only, and says so.
  try {
    decode_fp8(Tensor::zeros({16, 64}, DType::F8E5M2), Tensor::zeros({}, DType::F32), 0, 0, "w5");
    ADD_FAILURE() << "e5m2 decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("e4m3"), std::string::npos) << e.what();
  }
}

// quantize_fp8 (--quantization fp8): per block of 128 x 128 (partial at the edges) the scale
// is the block's largest |w| / 448 and each code the nearest e4m3 of w / scale, so the
// dequantized weights are within e4m3's half step of w: 2^-4 relative, 2^-10 scale absolute
// in the subnormal range; an all-zero block gets scale 1.
TEST(QuantFormats, Fp8QuantizeKeepsEachWeightWithinHalfAStep) {
  std::mt19937_64 rng(43);
  const int64_t N = 300, K = 200;
  std::vector<float> w(N * K);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (float& v : w) v = nd(rng);
  for (int64_t r = 128; r < 256; ++r)
    for (int64_t c = 0; c < 128; ++c) w[r * K + c] = 0.0f;  // one all-zero block
  w[5 * K + 7] = 3.0f;                                       // an outlier sets its block's scale
  const QuantizedMatrix m = quantize_fp8(w.data(), N, K, 128, 128);
  ASSERT_TRUE(m.fp8 && m.bits == 8 && m.group_size == 128 && m.groups() == 2);
  const Tensor deq = ref::dequantize(m);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t g = 0; g < 2; ++g) {
      float amax = 0;
      for (int64_t rr = r / 128 * 128; rr < std::min(N, r / 128 * 128 + 128); ++rr)
        for (int64_t c = g * 128; c < std::min(K, g * 128 + 128); ++c) amax = std::max(amax, std::fabs(w[rr * K + c]));
      const float s = m.scales.data<float>()[r * 2 + g];
      ASSERT_EQ(s, amax > 0 ? amax / 448.0f : 1.0f) << r << " " << g;
      for (int64_t c = g * 128; c < std::min(K, g * 128 + 128); ++c) {
        ASSERT_EQ(m.codes.data<uint8_t>()[r * K + c], f32_to_fp8_e4m3(w[r * K + c] / s)) << r << " " << c;
        ASSERT_LE(std::fabs(deq.data<float>()[r * K + c] - w[r * K + c]),
                  std::fabs(w[r * K + c]) / 16 + s / 1024 * 1.0001f)
            << r << " " << c;
      }
    }
}

// Broken FP8 checkpoints: each error names the tensor and what is wrong.
TEST(QuantConfig, BrokenFp8CheckpointsNameTheTensor) {
  const auto [qdir, ddir] = build("qwen2_untied", Fmt::Fp8Block);
  const Checkpoint ck = Checkpoint::open(qdir.string());
  const std::string m = "model.layers.1.mlp.down_proj";
  using Named = std::vector<std::pair<std::string, Tensor>>;
  struct Case {
    std::string name;
    std::function<void(Named&, json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"scale_shape",
       [&](Named& ts, json&) {
         for (auto& [n, t] : ts)
           if (n == m + ".weight_scale_inv") t = Tensor::zeros({2, 3}, DType::F32);
       },
       {m + ".weight", "[2, 3]", "[2, 4]", "32 x 48"}},
      {"scale_missing",
       [&](Named& ts, json&) { std::erase_if(ts, [&](const auto& p) { return p.first == m + ".weight_scale_inv"; }); },
       {m + ".weight_scale_inv"}},
      {"nan_code",
       [&](Named& ts, json&) {
         for (auto& [n, t] : ts)
           if (n == m + ".weight") t.data<uint8_t>()[5 * t.dim(1) + 7] = 0x7f;
       },
       {m + ".weight", "0x7f", "[5, 7]", "not a finite number"}},
      {"inf_scale",
       [&](Named& ts, json&) {
         for (auto& [n, t] : ts)
           if (n == m + ".weight_scale_inv") t.data<float>()[1] = INFINITY;
       },
       {m + ".weight", "scale [0, 1]"}},
      {"no_config", [&](Named&, json& c) { c.erase("quantization_config"); },
       {"model.layers.0.self_attn.q_proj.weight", "stored as FP8", "quant_method \"fp8\""}},
  };
  for (const Case& c : cases) {
    const fs::path bad = scratch_dir() / ("fp8_bad_" + c.name);
    fs::create_directories(bad);
    std::vector<std::pair<std::string, Tensor>> ts;
    for (const std::string& n : ck.names()) {
      const Tensor t = ck.get(n);
      Tensor copy = Tensor::empty(t.shape(), t.dtype());
      std::memcpy(copy.raw(), t.raw(), t.nbytes());
      ts.emplace_back(n, copy);
    }
    std::ifstream f(qdir / "config.json");
    json cfg = json::parse(f);
    c.edit(ts, cfg);
    write_safetensors((bad / "model.safetensors").string(), ts);
    std::ofstream(bad / "config.json") << cfg.dump(2);
    try {
      logits_of(bad, DType::F32, {1, 2, 3});
      ADD_FAILURE() << c.name << ": no error";
    } catch (const Error& e) {
      for (const std::string& needle : c.needles)
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << c.name << ": " << e.what();
    }
  }
}

// A config that promises quantized weights the checkpoint does not hold: an AWQ / GPTQ
// quantization_config over float weights loaded them as float under the AWQ name; an
// asymmetric compressed-tensors checkpoint without its zero points decoded them around the
// midpoint (wrong weights, no error); a quantization_config without a method was ignored.
TEST(QuantConfig, ConfigsThatPromiseWhatTheWeightsLack) {
  for (const char* method : {"awq", "gptq"}) {
    const fs::path dir = with_config(std::string("float_") + method, [&](json& c) {
      c["quantization_config"] = {{"quant_method", method}, {"bits", 4}, {"group_size", 128}};
    });
    fs::copy_file(models_dir() / "qwen2_untied" / "model.safetensors", dir / "model.safetensors",
                  fs::copy_options::overwrite_existing);
    try {
      logits_of(dir, DType::F32, {1, 2, 3});
      ADD_FAILURE() << method << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("stores none (no tensor named *.qweight)"), std::string::npos) << e.what();
    }
  }
  expect_error(with_config("no_method", [](json& c) { c["quantization_config"] = {{"bits", 4}}; }), "",
               "'quantization_config.quant_method': is missing");
  // --quantization fp8 on a float checkpoint resolves to format Fp8 with nothing stored: no
  // error there (run 276 on the H200 caught the first version refusing it; CPU backends have
  // no FP8 kernels, so only this test reaches it here).
  const fs::path plain = models_dir() / "qwen2_untied";
  const QuantSpec fp8_on_load = QuantSpec::resolve(plain.string(), "fp8", 64);
  ASSERT_TRUE(fp8_on_load.fp8_on_load);
  EXPECT_NO_THROW(fp8_on_load.check_stored_in(Checkpoint::open(plain.string())));
  EXPECT_NO_THROW(QuantSpec::resolve(plain.string(), "int4", 64).check_stored_in(Checkpoint::open(plain.string())));

  const auto [qdir, ddir] = build("qwen2_untied", Fmt::CtW8Asym);
  const fs::path bad = scratch_dir() / "ct_asym_no_zero_points";
  fs::create_directories(bad);
  fs::copy_file(qdir / "config.json", bad / "config.json", fs::copy_options::overwrite_existing);
  const Checkpoint ck = Checkpoint::open(qdir.string());
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const std::string& n : ck.names())
    if (!n.ends_with(".weight_zero_point")) ts.emplace_back(n, ck.get(n));
  ASSERT_LT(ts.size(), ck.names().size()) << "the asymmetric checkpoint has no zero points to remove";
  write_safetensors((bad / "model.safetensors").string(), ts);
  try {
    logits_of(bad, DType::F32, {1, 2, 3});
    ADD_FAILURE() << "asymmetric without zero points: no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(".weight_zero_point\""), std::string::npos) << e.what();
  }

  // An MLX module without its scales: named as such, not as a float weight of the wrong shape
  // (o_proj) or as "q_proj is stored unquantized but q_proj is quantized" (the first of q|k|v).
  const fs::path mlx = build("qwen2_untied", Fmt::Mlx4).first;
  const Checkpoint mck = Checkpoint::open(mlx.string());
  for (const std::string m : {"model.layers.1.self_attn.o_proj", "model.layers.0.self_attn.q_proj"}) {
    const fs::path cut = scratch_dir() / ("mlx_no_scales_" + m.substr(m.rfind('.') + 1));
    fs::create_directories(cut);
    fs::copy_file(mlx / "config.json", cut / "config.json", fs::copy_options::overwrite_existing);
    std::vector<std::pair<std::string, Tensor>> kept;
    for (const std::string& n : mck.names())
      if (n != m + ".scales") kept.emplace_back(n, mck.get(n));
    ASSERT_EQ(kept.size() + 1, mck.names().size()) << m;
    write_safetensors((cut / "model.safetensors").string(), kept);
    try {
      logits_of(cut, DType::F32, {1, 2, 3});
      ADD_FAILURE() << m << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(m + ".weight holds packed codes (uint32) but " + m + ".scales is missing"),
                std::string::npos)
          << e.what();
    }
  }
}

// A tensor of the wrong shape in a pre-quantized checkpoint is reported by name.
TEST(QuantConfig, WrongTensorShapeNamesTheTensor) {
  const auto [qdir, ddir] = build("qwen2_untied", Fmt::Awq);
  const fs::path bad = scratch_dir() / "awq_bad";
  fs::create_directories(bad);
  fs::copy_file(qdir / "config.json", bad / "config.json", fs::copy_options::overwrite_existing);
  const Checkpoint ck = Checkpoint::open(qdir.string());
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const std::string& n : ck.names()) {
    Tensor t = ck.get(n);
    if (n == "model.layers.0.mlp.up_proj.qzeros") t = Tensor::zeros({1, t.dim(1)}, DType::I32);
    ts.emplace_back(n, t);
  }
  write_safetensors((bad / "model.safetensors").string(), ts);
  try {
    logits_of(bad, DType::F32, {1, 2, 3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.up_proj.qzeros"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tllm

namespace tllm {
namespace {

// A MoE model exported to MLX, its experts quantized; then its first router stored quantized
// too (as some MLX checkpoints do): the loader dequantizes it for the dense router.
TEST(QuantExport, MoeModelAndQuantizedRouter) {
  const fs::path src = models_dir() / "qwen2_moe";
  if (!fs::exists(src / "config.json")) GTEST_SKIP() << "no qwen2_moe test model";
  const fs::path out = scratch_dir() / "exported_moe";
  const QuantizeExportStats st = write_mlx_checkpoint(src.string(), out.string(), 8, 32);
  EXPECT_GT(st.quantized, 0);
  const std::vector<int32_t> prompt = prompt_of(12, 384, 17);
  const Tensor ref = logits_of(src, DType::F32, prompt);
  const Tensor q = logits_of(out, DType::F32, prompt);
  const auto [kl1, top1] = kl_top1(ref, q);
  std::printf("[ qwen2_moe exported mlx 8-bit ] KL %.4g, top-1 %.3f\n", kl1, top1);
  EXPECT_LT(kl1, 0.01);

  const fs::path out2 = scratch_dir() / "exported_moe_router";
  fs::create_directories(out2);
  fs::copy_file(out / "config.json", out2 / "config.json", fs::copy_options::overwrite_existing);
  const Checkpoint ck = Checkpoint::open(out.string());
  std::vector<std::pair<std::string, Tensor>> ts;
  const std::string router = "model.layers.0.mlp.gate";
  QuantizedMatrix rm;
  for (const std::string& n : ck.names()) {
    Tensor t = ck.get(n);
    if (n == router + ".weight") {
      const std::vector<float> w = test::f32_values(t);
      rm = quantize_affine(w.data(), t.dim(0), t.dim(1), 8, 32, DType::BF16);
      const MlxTensors e = encode_mlx(rm, DType::BF16);
      ts.emplace_back(router + ".weight", e.weight);
      ts.emplace_back(router + ".scales", e.scales);
      ts.emplace_back(router + ".biases", e.biases);
    } else {
      ts.emplace_back(n, t);
    }
  }
  ASSERT_TRUE(rm.codes.defined()) << "the test model has no " << router;
  write_safetensors((out2 / "model.safetensors").string(), ts);
  const Tensor q2 = logits_of(out2, DType::F32, prompt);
  const auto [kl2, top2] = kl_top1(q, q2);
  std::printf("[ qwen2_moe, router quantized too ] KL vs dense router %.4g, top-1 %.3f\n", kl2, top2);
  EXPECT_LT(kl2, 0.01);
}

}  // namespace
}  // namespace tllm
