// CudaBackend::decoder_stack (the one-kernel decode step, kernels/cuda/decoder_stack.cu)
// against the same layers run op by op on the same backend, as model/qwen2.cpp runs them:
// random dense and sparse-MoE layers (router, top-k experts: Backend::moe_block op by op), a
// paged cache with random earlier keys behind a shuffled block table, token positions from 0
// to beyond several attention splits. The two paths round to bf16 at the same points and
// differ only in summation order, so x, h and the cache slots each layer writes agree to
// bf16-level error; every other cache slot must be left untouched. One exception: where the
// op-by-op router's k-th and (k+1)-th logits are within two bf16 steps of each other at the
// logits' scale (tie_gap), the rounding differences of the router's input (a few tenths of a
// percent of h) may pick the other expert, so the layers from there on are not compared (at
// most half of a shape's positions may be such near-ties: with 128 experts about one layer
// in six is one).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

#include "cuda_test_util.h"
#include "model/quant.h"
#include "quant/quant_test_util.h"

namespace tllm::test {
namespace {

struct StackShape;
QuantizedMatrix symmetric_int8(int64_t rows, int64_t cols, std::mt19937_64& rng);

// The weights of a test stack: bf16 (bits 16), or every projection quantized alike (bits 4 or
// 8, or kFp8: e4m3 codes; group size, f16 or f32 scales); the router stays bf16.
constexpr int kFp8 = 0xE4;
struct StackWeights {
  int bits = 16;
  int group = 0;  // >= the row: one group per row
  bool f16 = true;
  bool symmetric = false;  // int8 per row as --quantization int8 makes it (symmetric_int8)
  std::string str() const {
    if (bits == 16) return "bf16";
    return (bits == kFp8 ? std::string("fp8") : "int" + std::to_string(bits)) + " group " +
           (group >= (1 << 20) ? std::string("row") : std::to_string(group)) + (f16 ? " f16" : " f32") + " scales" +
           (symmetric ? " symmetric" : "");
  }
};

class CudaDecoderStack : public CudaTest {
 protected:
  // Runs the stack of shape sh and weights wq against its layers op by op at each position;
  // returns how many positions routed a near tie (not compared beyond it) of how many.
  std::pair<int, int> check_stack(const StackShape& sh, const StackWeights& wq, const std::vector<int>& positions,
                                  std::mt19937_64& rng);
  // A random quantized weight [rows, cols] packed by the backend: codes uniform, each group's
  // weights centred (offset about -scale (2^bits - 1) / 2; FP8: random finite e4m3 codes), the
  // whole scaled to an RMS of 1 / sqrt(cols).
  LinearWeight quantized_linear(int64_t rows, int64_t cols, const StackWeights& wq, std::mt19937_64& rng,
                                QuantizedMatrix* kept = nullptr) {
    if (wq.symmetric) {
      const QuantizedMatrix m = symmetric_int8(rows, cols, rng);
      if (kept) *kept = m;
      return be().pack_quantized(m, false);
    }
    QuantizedMatrix m = wq.bits == kFp8 ? random_fp8(rows, cols, wq.group, wq.f16, rng)
                                        : random_quantized(rows, cols, wq.bits, wq.group, wq.f16, rng);
    float* sc = m.scales.data<float>();
    float* of = m.offsets.data<float>();
    std::uniform_real_distribution<float> jitter(0.9f, 1.1f);
    if (wq.bits != kFp8)
      for (int64_t i = 0; i < m.scales.numel(); ++i)
        of[i] = -sc[i] * static_cast<float>((1 << wq.bits) - 1) / 2 * jitter(rng);
    const Tensor w = ref::dequantize(m);
    double ss = 0.0;
    for (int64_t i = 0; i < w.numel(); ++i) ss += double(w.data<float>()[i]) * w.data<float>()[i];
    const double ms = ss / static_cast<double>(w.numel());
    const float f = static_cast<float>(1.0 / std::sqrt(ms * static_cast<double>(cols)));
    for (int64_t i = 0; i < m.scales.numel(); ++i) {
      sc[i] *= f;
      of[i] *= f;
      if (wq.f16) {
        sc[i] = f16_to_f32(f32_to_f16(sc[i]));
        of[i] = f16_to_f32(f32_to_f16(of[i]));
      }
    }
    if (kept) *kept = m;
    return be().pack_quantized(m, false);
  }
};

// Random normal weights (RMS 1 / sqrt(cols)) quantized as --quantization int8 does
// (model/quant.cpp: per row max |w| / 127 as f16, codes q + 128, offset -128 s).
QuantizedMatrix symmetric_int8(int64_t rows, int64_t cols, std::mt19937_64& rng) {
  const Tensor w = randn({rows, cols}, rng, DType::F32, 1.0f / std::sqrt(static_cast<float>(cols)));
  return quantize_int8_per_channel(w.data<float>(), rows, cols);
}

struct StackShape {
  int H, I, n_q, n_kv, D, layers;
  bool qkv_bias, o_bias, qk_norm;
  // MoE layers (E > 0): E experts of intermediate size Im, top-k; every layer when I == 0,
  // else the odd layers (Qwen2-MoE's decoder_sparse_step 2).
  int E = 0, k = 0, Im = 0;
  bool renormalize = false;
  bool moe_layer(int l) const { return E > 0 && (I == 0 || l % 2 == 1); }
  std::string str() const {
    return "H=" + std::to_string(H) + " I=" + std::to_string(I) + " heads " + std::to_string(n_q) + "/" +
           std::to_string(n_kv) + " D=" + std::to_string(D) + " experts " + std::to_string(E) + " top-" +
           std::to_string(k);
  }
};

// Token positions of each case: 0, within the first attention split, across splits, the last.
const std::vector<int> kPositions = {0, 1, 37, 255, 256, 700, 2500, 4199};

// The gap between the k-th and (k+1)-th largest of the router logits (bf16 values) in bf16
// steps at the logits' scale: of the k-th, or of their RMS where the k-th is smaller
// (infinite with k experts or fewer). Within two steps the routing is a near tie: a top-k
// choice that the rounding differences of h can flip. A logit's error is h's relative error
// times the logits' scale, not its own size: a k-th logit near 0 has tiny bf16 steps, and
// H200 run 266 saw the stack's layer-0 x (0.31% from op by op's) move layer 1's third logit
// from 0.0205 to 0.0074, past the fourth at 0.0125 (65 steps of the third apart; 1.0 step
// of the logits' RMS, 1.03).
double tie_gap(const Tensor& logits, int k) {
  std::vector<double> v(logits.numel());
  double ss = 0.0;
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = value_at(logits, static_cast<int64_t>(i));
    ss += v[i] * v[i];
  }
  if (k >= static_cast<int>(v.size())) return INFINITY;
  std::sort(v.begin(), v.end(), std::greater<>());
  const double scale = std::max({std::fabs(v[k - 1]), std::sqrt(ss / static_cast<double>(v.size())), 1e-30});
  const double step = std::ldexp(1.0, std::ilogb(scale) - 7);  // bf16: 8 bits
  return (v[k - 1] - v[k]) / step;
}
bool near_tie(const Tensor& logits, int k) { return tie_gap(logits, k) <= 2; }

struct Model {
  std::vector<Tensor> input_norm, post_norm, q_norm, k_norm;
  std::vector<LinearWeight> qkv, o, gate_up, down, router;  // router: MoE layers
  std::vector<MoeExperts> experts;
  Tensor final_norm;
  // Layer l's entry of a DecoderStack over the caches k, v.
  DecoderStackLayer layer(const StackShape& sh, int l, const Tensor& k, const Tensor& v) const {
    DecoderStackLayer L{&input_norm[l], &post_norm[l], &q_norm[l], &k_norm[l], &qkv[l], &o[l], nullptr, nullptr,
                        &k, &v, 0};
    if (sh.moe_layer(l)) {
      L.router = &router[l];
      L.experts = &experts[l];
      L.top_k = sh.k;
      L.renormalize = sh.renormalize;
    } else {
      L.gate_up = &gate_up[l];
      L.down = &down[l];
    }
    return L;
  }
};

// The DecoderStack of one token over the given tensors (one layer entry per element).
DecoderStack stack_of(Tensor& x, Tensor& h, const Tensor& final_norm, std::vector<DecoderStackLayer> layers,
                      const QKVLayout& lay, const Tensor& cos_sin, const Tensor& rope_rows, const Tensor& slots,
                      const AttentionMeta& meta, float scale) {
  DecoderStack s;
  s.x = &x;
  s.h = &h;
  s.final_norm = &final_norm;
  s.layers = std::move(layers);
  s.layout = lay;
  s.rope = RopeSpec{lay.head_dim, false};
  s.cos_sin = &cos_sin;
  s.rope_rows = &rope_rows;
  s.slot_mapping = &slots;
  s.meta = &meta;
  s.scale = scale;
  s.eps = 1e-6f;
  return s;
}

TEST_F(CudaDecoderStack, MatchesOpByOpLayers) {
  const std::vector<StackShape> shapes = {
      {256, 512, 4, 2, 64, 3, true, false, false},    // Qwen2-like: qkv bias, head_dim 64
      {384, 1024, 6, 2, 128, 2, false, true, true},   // Qwen3-like: q/k norm, n_q D != H, an o bias
      {896, 4864, 14, 2, 64, 2, true, false, false},  // the Qwen2.5-0.5B layer shape
      // Qwen3-MoE-like: every layer sparse, 128 experts, top-8 renormalised
      {512, 0, 8, 2, 128, 2, false, false, true, 128, 8, 256, true},
      // dense and MoE layers alternating, top-4 not renormalised, Qwen2-like attention
      {256, 512, 4, 2, 64, 3, true, false, false, 16, 4, 128, false},
      // the Qwen3-30B-A3B attention and expert shapes with 32 experts (fewer router rows than SMs)
      {2048, 0, 32, 4, 128, 1, false, false, true, 32, 8, 768, true},
  };
  std::mt19937_64 rng(2026);
  for (const StackShape& sh : shapes) {
    const auto [ties, positions] = check_stack(sh, StackWeights{}, kPositions, rng);
    EXPECT_LE(2 * ties, positions) << sh.str() << ": " << ties << " of " << positions << " positions route near ties";
  }
}

// The quantized stack (stackq::qgemv_tile) against the same quantized layers op by op
// (quant_gemv, the quantized MoE kernels): int4 at groups 32 / 64 / 128, int8 per row (random
// codes and offsets, and --quantization int8's symmetric codes) and at group 64, FP8 at
// group 128, f16 and f32 scales; input widths that are not whole k tiles (320, 544, 192, and
// the Qwen3-MoE test model's experts of I 32: half an 8-bit k tile) and partial last groups.
TEST_F(CudaDecoderStack, QuantizedMatchesOpByOpLayers) {
  const std::vector<StackShape> shapes = {
      {256, 512, 4, 2, 64, 2, true, false, false},   // Qwen2-like: qkv bias
      {320, 544, 5, 1, 64, 2, false, true, true},    // Qwen3-like, K tails: H 320, I 544
      {512, 0, 8, 2, 128, 2, false, false, true, 64, 8, 192, true},  // Qwen3-MoE-like, experts' I 192
      {256, 512, 4, 2, 64, 3, true, false, false, 16, 4, 128, false},  // dense and MoE layers
      {128, 0, 2, 1, 64, 2, false, false, true, 8, 3, 32, true},  // tests/data/models/qwen3_moe_hd64
  };
  const std::vector<StackWeights> schemes = {{4, 64, true},      {4, 128, false},        {4, 32, true},
                                             {8, 1 << 20, true}, {8, 1 << 20, true, true}, {8, 64, false},
                                             {kFp8, 128, true}};
  std::mt19937_64 rng(2027);
  for (const StackShape& sh : shapes) {
    int ties = 0, positions = 0;  // over every scheme of the shape
    for (const StackWeights& wq : schemes) {
      const auto [t, n] = check_stack(sh, wq, kPositions, rng);
      ties += t;
      positions += n;
    }
    EXPECT_LE(2 * ties, positions) << sh.str() << ": " << ties << " of " << positions << " positions route near ties";
  }
}

std::pair<int, int> CudaDecoderStack::check_stack(const StackShape& sh, const StackWeights& wq,
                                                  const std::vector<int>& pos_list, std::mt19937_64& rng) {
  const int block_size = 16, max_len = 4200;
  const int H = sh.H, I = sh.I, n_q = sh.n_q, n_kv = sh.n_kv, D = sh.D;
  const QKVLayout lay{n_q, n_kv, D};
  const std::string what = sh.str() + ", " + wq.str();
  auto up = [&](const Tensor& h, DType dt) { return be().upload(h, dt); };
  auto dense = [&](int64_t rows, int64_t cols) {  // bf16 (the router always)
    LinearWeight w;
    w.weight = up(randn({rows, cols}, rng, DType::F32, 1.0f / std::sqrt(static_cast<float>(cols))), DType::BF16);
    w.out_features = rows;
    w.in_features = cols;
    return w;
  };
  // A quantized projection's codes, scales and offsets on the host, keyed by its packed codes:
  // diagnose() dequantizes them (its bf16 twin, its f64 expert outputs) when x disagrees.
  std::map<const void*, QuantizedMatrix> kept;
  auto linear = [&](int64_t rows, int64_t cols, bool bias) {  // a projection: bf16 or quantized (wq)
    QuantizedMatrix q;
    LinearWeight w = wq.bits == 16 ? dense(rows, cols) : quantized_linear(rows, cols, wq, rng, &q);
    if (wq.bits != 16) kept[w.weight.raw()] = std::move(q);
    if (bias) w.bias = up(randn({rows}, rng, DType::F32, 0.1f), DType::F32);
    return w;
  };
  auto norm_w = [&](int64_t n) { return up(randn({n}, rng, DType::F32, 0.2f, 1.0f), DType::F32); };
  Model m;
  for (int l = 0; l < sh.layers; ++l) {
    m.input_norm.push_back(norm_w(H));
    m.post_norm.push_back(norm_w(H));
    m.q_norm.push_back(sh.qk_norm ? norm_w(D) : Tensor());
    m.k_norm.push_back(sh.qk_norm ? norm_w(D) : Tensor());
    m.qkv.push_back(linear(lay.row_stride(), H, sh.qkv_bias));
    m.o.push_back(linear(H, int64_t{n_q} * D, sh.o_bias));
    if (sh.moe_layer(l)) {
      MoeExperts x;
      x.num_experts = sh.E;
      x.hidden = H;
      x.inter = sh.Im;
      x.gate_up = linear(int64_t{sh.E} * 2 * sh.Im, H, false);
      x.down = linear(int64_t{sh.E} * H, sh.Im, false);
      m.experts.push_back(std::move(x));
      m.router.push_back(dense(sh.E, H));
      m.gate_up.emplace_back();
      m.down.emplace_back();
    } else {
      m.experts.emplace_back();
      m.router.emplace_back();
      m.gate_up.push_back(linear(2 * int64_t{I}, H, false));
      m.down.push_back(linear(H, I, false));
    }
  }
  m.final_norm = norm_w(H);
  const Tensor d_cos_sin = dev(cos_sin_table(max_len, D, 1000000.0));

  // A cache with random earlier keys; the sequence's blocks in shuffled order.
  const int num_blocks = max_len / block_size + 4;
  std::vector<int32_t> table(num_blocks);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  std::vector<Tensor> k0, v0;
  for (int l = 0; l < sh.layers; ++l) {
    k0.push_back(randn({num_blocks, block_size, n_kv, D}, rng, DType::BF16));
    v0.push_back(randn({num_blocks, block_size, n_kv, D}, rng, DType::BF16));
  }
  const int64_t slot_elems = int64_t{n_kv} * D;

  // Where the stack's x is off: each layer alone (its op-by-op input), stack against op by op,
  // for the weights and for their dequantized bf16 twin; then the MoE layer's output fitted
  // as a sum over all experts' outputs (a float64 reference from the dequantized weights).
  // Printed only; consumes no random numbers.
  auto diagnose = [&](const AttentionMeta& meta, const Tensor& rope_rows, const Tensor& slots, const Tensor& x0,
                      const Tensor& got_x) {
    const float eps = 1e-6f, scale = 1.0f / std::sqrt(static_cast<float>(D));
    auto dense_of = [&](const LinearWeight& w) {  // host f32: dequantized, or the bf16 weights
      auto it = kept.find(w.weight.raw());
      return it == kept.end() ? host(w.weight) : ref::dequantize(it->second);
    };
    auto twin_of = [&](const LinearWeight& w) {
      if (!kept.count(w.weight.raw())) return w;
      LinearWeight t;
      t.weight = up(dense_of(w), DType::BF16);
      t.bias = w.bias;
      t.out_features = w.out_features;
      t.in_features = w.in_features;
      return t;
    };
    Model tw = m;
    for (int l = 0; l < sh.layers; ++l) {
      tw.qkv[l] = twin_of(m.qkv[l]);
      tw.o[l] = twin_of(m.o[l]);
      if (sh.moe_layer(l)) {
        tw.experts[l].gate_up = twin_of(m.experts[l].gate_up);
        tw.experts[l].down = twin_of(m.experts[l].down);
      } else {
        tw.gate_up[l] = twin_of(m.gate_up[l]);
        tw.down[l] = twin_of(m.down[l]);
      }
    }
    struct Out {
      Tensor x_mid, x_out, h_mlp, ids, wts, logits;  // host
    };
    // Layer l op by op from x_in.
    auto op_layer = [&](const Model& M, int l, const Tensor& x_in) {
      const Tensor& next = l + 1 < sh.layers ? M.input_norm[l + 1] : M.final_norm;
      Tensor kc = dev(k0[l]), vc = dev(v0[l]);
      Tensor x = dev(x_in, DType::BF16), h = be().empty({1, H}, DType::BF16);
      Tensor qkv = be().empty({1, lay.row_stride()}, DType::BF16), attn = be().empty({1, n_q * D}, DType::BF16);
      Tensor o = be().empty({1, H}, DType::BF16), gu = be().empty({1, 2 * std::max(I, 1)}, DType::BF16);
      Tensor act = be().empty({1, std::max(I, 1)}, DType::BF16), mlp = be().empty({1, H}, DType::BF16);
      Tensor logits = be().empty({1, std::max(sh.E, 1)}, DType::BF16);
      Tensor ids = be().empty({1, std::max(sh.k, 1)}, DType::I32), wts = be().empty({1, std::max(sh.k, 1)}, DType::F32);
      be().rms_norm(h, x, M.input_norm[l], eps);
      be().linear(qkv, h, M.qkv[l]);
      be().qk_norm_rope_kv_write(qkv, lay, M.q_norm[l], M.k_norm[l], eps, RopeSpec{D, false}, d_cos_sin, rope_rows,
                                 slots, kc, vc);
      be().attention(attn, qkv, lay, kc, vc, meta, scale, 0);
      be().linear_residual_norm(o, attn, M.o[l], {&x, &h, &M.post_norm[l], eps});
      Out r;
      r.x_mid = host(x);
      r.h_mlp = host(h);
      if (sh.moe_layer(l)) {
        be().moe_block(mlp, h, M.router[l], M.experts[l], logits, ids, wts, sh.renormalize);
        be().add_rms_norm(x, mlp, h, next, eps);
        r.ids = host(ids);
        r.wts = host(wts);
        r.logits = host(logits);
      } else {
        be().linear_silu_mul(act, h, M.gate_up[l], gu);
        be().linear_residual_norm(mlp, act, M.down[l], {&x, &h, &next, eps});
      }
      r.x_out = host(x);
      return r;
    };
    // Layer l alone as the stack kernel, from x_in.
    auto stack_layer = [&](const Model& M, int l, const Tensor& x_in) {
      Tensor kf = dev(k0[l]), vf = dev(v0[l]);
      Tensor xf = dev(x_in, DType::BF16), hf = dev_poisoned({1, H}, DType::BF16);
      const Tensor& next = l + 1 < sh.layers ? M.input_norm[l + 1] : M.final_norm;
      const DecoderStack s = stack_of(xf, hf, next, {M.layer(sh, l, kf, vf)}, lay, d_cos_sin, rope_rows, slots, meta,
                                      scale);
      if (!be().decoder_stack(s)) std::printf("diagnose: the one-layer stack declined\n");
      return host(xf);
    };
    auto diff = [](const Tensor& a, const Tensor& b) {  // host tensors: a - b as f64
      std::vector<double> d(a.numel());
      for (int64_t i = 0; i < a.numel(); ++i) d[i] = value_at(a, i) - value_at(b, i);
      return d;
    };
    Tensor x_in = x0;
    for (int l = 0; l < sh.layers; ++l) {
      const Out oq = op_layer(m, l, x_in), ob = op_layer(tw, l, x_in);
      const Tensor sq = stack_layer(m, l, x_in), sb = stack_layer(tw, l, x_in);
      std::printf("diagnose layer %d%s: x out rel err: stack/op %.4f, twin stack/twin op %.4f, op/twin op %.4f, "
                  "stack/twin op %.4f; after attention op/twin op %.4f\n",
                  l, sh.moe_layer(l) ? " (MoE)" : "", rel_err(sq, oq.x_out), rel_err(sb, ob.x_out),
                  rel_err(oq.x_out, ob.x_out), rel_err(sq, ob.x_out), rel_err(oq.x_mid, ob.x_mid));
      if (sh.moe_layer(l)) {
        std::printf("  op routing:");
        for (int j = 0; j < sh.k; ++j)
          std::printf(" e%d w %.4f |", oq.ids.data<int32_t>()[j], value_at(oq.wts, j));
        std::printf("  twin:");
        for (int j = 0; j < sh.k; ++j)
          std::printf(" e%d w %.4f |", ob.ids.data<int32_t>()[j], value_at(ob.wts, j));
        std::printf("\n  logits:");
        for (int e = 0; e < sh.E; ++e) std::printf(" %.5f", value_at(oq.logits, e));
        std::printf("\n");
        // Every expert's output on the op-by-op h (f64 from the dequantized weights), and the
        // least-squares weights that sum them into the stack's and op by op's MLP output.
        const Tensor hm = oq.h_mlp;
        const Tensor wgu = dense_of(m.experts[l].gate_up), wdn = dense_of(m.experts[l].down);
        const int E = sh.E, Im = sh.Im;
        std::vector<std::vector<double>> y(E, std::vector<double>(H, 0.0));
        for (int e = 0; e < E; ++e) {
          std::vector<double> act(Im);
          for (int f = 0; f < Im; ++f) {
            double g = 0, u = 0;
            for (int c = 0; c < H; ++c) {
              g += value_at(wgu, (int64_t{e} * 2 * Im + f) * H + c) * value_at(hm, c);
              u += value_at(wgu, (int64_t{e} * 2 * Im + Im + f) * H + c) * value_at(hm, c);
            }
            act[f] = g / (1 + std::exp(-g)) * u;
          }
          for (int r = 0; r < H; ++r) {
            double a = 0;
            for (int f = 0; f < Im; ++f) a += value_at(wdn, (int64_t{e} * H + r) * Im + f) * act[f];
            y[e][r] = a;
          }
        }
        auto fit = [&](const char* name, const std::vector<double>& t) {
          std::vector<double> A(E * E), b(E);
          for (int i = 0; i < E; ++i) {
            for (int j = 0; j < E; ++j)
              for (int r = 0; r < H; ++r) A[i * E + j] += y[i][r] * y[j][r];
            for (int r = 0; r < H; ++r) b[i] += y[i][r] * t[r];
          }
          for (int c = 0; c < E; ++c) {  // Gauss-Jordan, partial pivoting
            int piv = c;
            for (int r = c + 1; r < E; ++r)
              if (std::fabs(A[r * E + c]) > std::fabs(A[piv * E + c])) piv = r;
            for (int j = 0; j < E; ++j) std::swap(A[c * E + j], A[piv * E + j]);
            std::swap(b[c], b[piv]);
            for (int r = 0; r < E; ++r) {
              if (r == c) continue;
              const double f = A[r * E + c] / A[c * E + c];
              for (int j = 0; j < E; ++j) A[r * E + j] -= f * A[c * E + j];
              b[r] -= f * b[c];
            }
          }
          double rn = 0, tn = 0;
          for (int r = 0; r < H; ++r) {
            double v = t[r];
            for (int e = 0; e < E; ++e) v -= b[e] / A[e * E + e] * y[e][r];
            rn += v * v;
            tn += t[r] * t[r];
          }
          std::printf("  %s = sum of experts x:", name);
          for (int e = 0; e < E; ++e) std::printf(" %.4f", b[e] / A[e * E + e]);
          std::printf("  (residual %.4f)\n", std::sqrt(rn / tn));
        };
        fit("op MLP", diff(oq.x_out, oq.x_mid));
        // The stack's MLP output: its x out less the op-by-op x after attention.
        fit("stack MLP", diff(sq, oq.x_mid));
      }
      // The next layer op by op from this layer's stack output: the whole stack's x where
      // only the input's rounding differences (not a wrong layer) set the two paths apart.
      if (l + 1 < sh.layers) {
        const Out on = op_layer(m, l + 1, sq);
        std::printf("  layer %d op by op from the stack's layer-%d x: rel err to the whole stack's x %.4f "
                    "(whole stack last layer: %d)",
                    l + 1, l, rel_err(got_x, on.x_out), l + 2 == sh.layers);
        if (sh.moe_layer(l + 1)) {
          std::printf("; routing");
          for (int j = 0; j < sh.k; ++j) std::printf(" e%d w %.4f |", on.ids.data<int32_t>()[j], value_at(on.wts, j));
          std::printf(" logits");
          for (int e = 0; e < sh.E; ++e) std::printf(" %.5f", value_at(on.logits, e));
        }
        std::printf("\n");
      }
      x_in = oq.x_out;
    }
  };

  int ties = 0, positions = 0;
  for (int pos : pos_list) {
    ++positions;
    const std::string where = what + " position " + std::to_string(pos);
    const int64_t slot = int64_t{table[pos / block_size]} * block_size + pos % block_size;
    AttentionMeta meta;
    meta.num_seqs = 1;
    meta.num_tokens = 1;
    meta.max_seqlen_q = 1;
    meta.max_seqlen_k = pos + 1;
    meta.block_size = block_size;
    meta.max_blocks_per_seq = num_blocks;
    meta.cu_seqlens_q = dev(ints({0, 1}));
    meta.seq_lens_k = dev(ints({pos + 1}));
    meta.block_tables = dev(ints(table));
    const Tensor rope_rows = dev(ints({pos})), slots = dev(ints64({slot}));
    const Tensor x0 = randn({1, H}, rng, DType::BF16);

    // Op by op (the model's loop).
    std::vector<Tensor> kc, vc;
    for (int l = 0; l < sh.layers; ++l) {
      kc.push_back(dev(k0[l]));
      vc.push_back(dev(v0[l]));
    }
    Tensor x = dev(x0), h = dev_poisoned({1, H}, DType::BF16);
    Tensor qkv = be().empty({1, lay.row_stride()}, DType::BF16), attn = be().empty({1, n_q * D}, DType::BF16);
    Tensor o = be().empty({1, H}, DType::BF16), gu = be().empty({1, 2 * std::max(I, 1)}, DType::BF16);
    Tensor act = be().empty({1, std::max(I, 1)}, DType::BF16), mlp = be().empty({1, H}, DType::BF16);
    Tensor logits = be().empty({1, std::max(sh.E, 1)}, DType::BF16);
    Tensor ids = be().empty({1, std::max(sh.k, 1)}, DType::I32), wts = be().empty({1, std::max(sh.k, 1)}, DType::F32);
    const float eps = 1e-6f, scale = 1.0f / std::sqrt(static_cast<float>(D));
    be().rms_norm(h, x, m.input_norm[0], eps);
    int tie_layer = sh.layers;  // the first MoE layer whose routing is a near tie
    std::string gaps;           // each MoE layer's routing gap in bf16 steps (for failure messages)
    for (int l = 0; l < sh.layers; ++l) {
      const Tensor& next = l + 1 < sh.layers ? m.input_norm[l + 1] : m.final_norm;
      be().linear(qkv, h, m.qkv[l]);
      be().qk_norm_rope_kv_write(qkv, lay, m.q_norm[l], m.k_norm[l], eps, RopeSpec{D, false}, d_cos_sin, rope_rows,
                                 slots, kc[l], vc[l]);
      be().attention(attn, qkv, lay, kc[l], vc[l], meta, scale, 0);
      be().linear_residual_norm(o, attn, m.o[l], {&x, &h, &m.post_norm[l], eps});
      if (sh.moe_layer(l)) {
        be().moe_block(mlp, h, m.router[l], m.experts[l], logits, ids, wts, sh.renormalize);
        be().add_rms_norm(x, mlp, h, next, eps);
        const Tensor lg = host(logits);
        if (tie_layer == sh.layers && near_tie(lg, sh.k)) tie_layer = l;
        gaps += " " + std::to_string(l) + ":" + std::to_string(tie_gap(lg, sh.k));
      } else {
        be().linear_silu_mul(act, h, m.gate_up[l], gu);
        be().linear_residual_norm(mlp, act, m.down[l], {&x, &h, &next, eps});
      }
    }
    const Tensor want_x = host(x), want_h = host(h);

    // Fused, twice: the same bits (no atomics in any sum).
    Tensor got_x[2], got_h[2];
    std::vector<Tensor> got_k, got_v;
    for (int variant = 0; variant < 2; ++variant) {
      be().set_decoder_stack(true);
      std::vector<Tensor> kf, vf;
      for (int l = 0; l < sh.layers; ++l) {
        kf.push_back(dev(k0[l]));
        vf.push_back(dev(v0[l]));
      }
      Tensor xf = dev(x0), hf = dev_poisoned({1, H}, DType::BF16);
      std::vector<DecoderStackLayer> layers;
      for (int l = 0; l < sh.layers; ++l) layers.push_back(m.layer(sh, l, kf[l], vf[l]));
      const DecoderStack s = stack_of(xf, hf, m.final_norm, layers, lay, d_cos_sin, rope_rows, slots, meta, scale);
      if (!be().decoder_stack(s)) {
        ADD_FAILURE() << where << ": the fused path declined";
        return {ties, positions};
      }
      got_x[variant] = host(xf);
      got_h[variant] = host(hf);
      if (variant == 0)
        for (int l = 0; l < sh.layers; ++l) {
          got_k.push_back(host(kf[l]));
          got_v.push_back(host(vf[l]));
        }
    }
    be().set_decoder_stack(true);
    EXPECT_EQ(std::memcmp(got_x[0].raw(), got_x[1].raw(), got_x[0].nbytes()), 0) << where << ": x not reproducible";
    EXPECT_EQ(std::memcmp(got_h[0].raw(), got_h[1].raw(), got_h[0].nbytes()), 0) << where << ": h not reproducible";
    if (tie_layer < sh.layers) {
      ++ties;
      std::printf("note: %s: layer %d routes a near tie; x, h and later layers' caches not compared\n",
                  where.c_str(), tie_layer);
    } else {
      EXPECT_LT(rel_err(got_x[0], want_x), 2e-2) << where << ": residual x (routing gaps, bf16 steps:" << gaps << ")";
      if (rel_err(got_x[0], want_x) >= 2e-2) diagnose(meta, rope_rows, slots, x0, got_x[0]);
      EXPECT_LT(rel_err(got_h[0], want_h), 2e-2) << where << ": final norm h";
    }
    for (int l = 0; l < sh.layers; ++l) {
      const Tensor want_k = host(kc[l]), want_v = host(vc[l]);
      // The token's slot against the op-by-op cache; every other slot untouched.
      const Tensor gk = got_k[l].view({got_k[l].numel()}).slice_rows(slot * slot_elems, (slot + 1) * slot_elems);
      const Tensor wk = want_k.view({want_k.numel()}).slice_rows(slot * slot_elems, (slot + 1) * slot_elems);
      const Tensor gv = got_v[l].view({got_k[l].numel()}).slice_rows(slot * slot_elems, (slot + 1) * slot_elems);
      const Tensor wv = want_v.view({want_v.numel()}).slice_rows(slot * slot_elems, (slot + 1) * slot_elems);
      if (l <= tie_layer) {
        EXPECT_LT(rel_err(gk, wk), 2e-2) << where << " layer " << l << ": cached k";
        EXPECT_LT(rel_err(gv, wv), 2e-2) << where << " layer " << l << ": cached v";
      }
      for (const auto& [got, init] : {std::pair{&got_k[l], &k0[l]}, std::pair{&got_v[l], &v0[l]}}) {
        int64_t changed = 0;  // host() gives f32: compare values
        for (int64_t i = 0; i < got->numel(); ++i)
          if (i / slot_elems != slot && value_at(*got, i) != value_at(*init, i)) ++changed;
        EXPECT_EQ(changed, 0) << where << " layer " << l << ": cache entries outside the token's slot changed";
      }
    }
  }
  return {ties, positions};
}

TEST_F(CudaDecoderStack, DeclinesWhatItDoesNotRun) {
  // Two tokens, a sliding window, a quantized weight among bf16 ones, MoE layers it does not
  // take: the op returns false and writes nothing.
  std::mt19937_64 rng(7);
  const int H = 64, I = 128, D = 64;
  const QKVLayout lay{2, 1, D};
  auto lw = [&](int64_t r, int64_t c) {
    LinearWeight w;
    w.weight = dev(randn({r, c}, rng, DType::BF16), DType::BF16);
    w.out_features = r;
    w.in_features = c;
    return w;
  };
  LinearWeight qkv = lw(lay.row_stride(), H), o = lw(H, 2 * D), gu = lw(2 * I, H), dn = lw(H, I);
  const Tensor nw = dev(randn({H}, rng)), kc = dev(randn({4, 16, 1, D}, rng, DType::BF16));
  const Tensor vc = dev(randn({4, 16, 1, D}, rng, DType::BF16)), cs = dev(randn({64, D}, rng));
  const Tensor rows = dev(ints({3})), slots = dev(ints64({3}));
  const Tensor x0 = randn({1, H}, rng, DType::BF16);
  Tensor x = dev(x0), h = dev(randn({1, H}, rng, DType::BF16));
  AttentionMeta meta;
  meta.num_seqs = 1;
  meta.num_tokens = 1;
  meta.block_size = 16;
  meta.max_blocks_per_seq = 4;
  meta.seq_lens_k = dev(ints({4}));
  meta.block_tables = dev(ints({0, 1, 2, 3}));
  const DecoderStack s =
      stack_of(x, h, nw, {{&nw, &nw, nullptr, nullptr, &qkv, &o, &gu, &dn, &kc, &vc, 0}}, lay, cs, rows, slots, meta,
               0.125f);
  be().set_decoder_stack(true);
  ASSERT_TRUE(be().decoder_stack(s));  // the baseline runs

  DecoderStack t = s;
  AttentionMeta two = meta;
  two.num_tokens = 2;
  t.meta = &two;
  EXPECT_FALSE(be().decoder_stack(t)) << "two tokens";
  t = s;
  t.layers[0].sliding_window = 8;
  EXPECT_FALSE(be().decoder_stack(t)) << "sliding window";
  t = s;
  t.rope = RopeSpec{D / 2, false};
  EXPECT_FALSE(be().decoder_stack(t)) << "partial rotary";
  LinearWeight q8 = gu;
  q8.quant = QuantScheme::Int8PerChannel;
  t = s;
  t.layers[0].gate_up = &q8;
  EXPECT_FALSE(be().decoder_stack(t)) << "quantized weight";
  // MoE layers: the plain one runs; a shared expert (Qwen2-MoE) or quantized experts decline.
  MoeExperts ex;
  ex.num_experts = 4;
  ex.hidden = H;
  ex.inter = 64;
  ex.gate_up = lw(4 * 2 * 64, H);
  ex.down = lw(4 * H, 64);
  LinearWeight router = lw(4, H);
  t = s;
  t.layers[0].gate_up = t.layers[0].down = nullptr;
  t.layers[0].router = &router;
  t.layers[0].experts = &ex;
  t.layers[0].top_k = 2;
  EXPECT_TRUE(be().decoder_stack(t)) << "a MoE layer";
  MoeExperts shared = ex;
  shared.shared_inter = 64;
  shared.shared_gate_up = lw(2 * 64, H);
  shared.shared_down = lw(H, 64);
  shared.shared_gate = nw;
  DecoderStack u = t;
  u.layers[0].experts = &shared;
  EXPECT_FALSE(be().decoder_stack(u)) << "shared expert";
  MoeExperts q8x = ex;
  q8x.down.quant = QuantScheme::Int8PerChannel;
  u = t;
  u.layers[0].experts = &q8x;
  EXPECT_FALSE(be().decoder_stack(u)) << "quantized experts";
  u = t;
  u.layers[0].top_k = 5;
  EXPECT_FALSE(be().decoder_stack(u)) << "top-k above the expert count";
  // A quantized stack runs; a bf16 projection, another scheme, or a group size that differs
  // between layers among its quantized ones declines.
  const StackWeights w4{4, 32, true};
  LinearWeight qq = quantized_linear(lay.row_stride(), H, w4, rng), qo = quantized_linear(H, 2 * D, w4, rng);
  LinearWeight qg = quantized_linear(2 * I, H, w4, rng), qd = quantized_linear(H, I, w4, rng);
  LinearWeight qd64 = quantized_linear(H, I, {4, 64, true}, rng), qd8 = quantized_linear(H, I, {8, 32, true}, rng);
  DecoderStack qs = s;
  qs.layers[0].qkv = &qq;
  qs.layers[0].o = &qo;
  qs.layers[0].gate_up = &qg;
  qs.layers[0].down = &qd;
  EXPECT_TRUE(be().decoder_stack(qs)) << "a quantized stack";
  u = qs;
  u.layers[0].down = &dn;
  EXPECT_FALSE(be().decoder_stack(u)) << "a bf16 projection in a quantized stack";
  u = qs;
  u.layers[0].down = &qd8;
  EXPECT_FALSE(be().decoder_stack(u)) << "int8 among int4 projections";
  u = qs;
  u.layers.push_back(u.layers[0]);
  u.layers[1].down = &qd64;
  EXPECT_FALSE(be().decoder_stack(u)) << "group sizes differing between layers";
  be().set_decoder_stack(false);
  EXPECT_FALSE(be().decoder_stack(s)) << "turned off";
  be().set_decoder_stack(true);
  Tensor x2 = dev(x0);
  t = s;
  t.x = &x2;
  t.meta = &two;
  EXPECT_FALSE(be().decoder_stack(t));
  const Tensor after = host(x2);
  EXPECT_EQ(rel_err(after, x0), 0.0) << "a declined call wrote x";
}

}  // namespace
}  // namespace tllm::test
