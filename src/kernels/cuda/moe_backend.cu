// CudaBackend's mixture-of-experts ops: tensor checks, the scratch layout, and the launch
// sequence of moe_ops.h. Scratch comes from one grow-only buffer of the backend that
// moe_reserve() sizes at load, so a forward neither allocates nor synchronises.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/moe_ops.h"
#include "kernels/cuda/quant_ops.h"

namespace tllm::cuda {
namespace {

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

// Scratch of one moe_experts / moe_block call: the fused router's done counter (zeroed
// whenever the buffer is (re)allocated; the router leaves it at zero), routing metadata,
// act [P, I], y [P, H], and the shared expert's [T, 2S], [T, S], [T, H] (bf16).
struct MoeScratchLayout {
  size_t done = 256, meta = 0, act = 0, y = 0, s_gate_up = 0, s_act = 0, s_out = 0;
  size_t total() const { return done + meta + act + y + s_gate_up + s_act + s_out; }
};
MoeScratchLayout scratch_layout(int64_t T, int64_t k, const MoeExperts& w) {
  const int64_t P = T * k, S = w.shared_inter;
  MoeScratchLayout l;
  l.meta = align256(moe_meta_bytes(P, w.num_experts));
  l.act = align256(static_cast<size_t>(P * w.inter) * 2);
  l.y = align256(static_cast<size_t>(P * w.hidden) * 2);
  if (S > 0) {
    l.s_gate_up = align256(static_cast<size_t>(T * 2 * S) * 2);
    l.s_act = align256(static_cast<size_t>(T * S) * 2);
    l.s_out = align256(static_cast<size_t>(T * w.hidden) * 2);
  }
  return l;
}

void expect(const Tensor& t, DType dt, const char* op, const char* what) {
  TLLM_CHECK(t.defined(), op, ": ", what, " is undefined");
  TLLM_CHECK(t.device() == Device::CUDA, op, ": ", what, " must be a CUDA tensor, got ", t.str());
  TLLM_CHECK(t.dtype() == dt, op, ": ", what, " must be ", dtype_name(dt), ", got ", t.str());
}

void check_expert_weight(const LinearWeight& lw, int64_t rows, int64_t cols, const char* op, const char* what) {
  TLLM_CHECK(!lw.bias.defined(), op, ": ", what, " has a bias; MoE experts have none");
  if (lw.quant != QuantScheme::None) {
    check_quant_packed(lw, op);
    TLLM_CHECK(lw.out_features == rows && lw.in_features == cols, op, ": ", what, " (quantized, ", lw.out_features,
               " x ", lw.in_features, ") must be [", rows, ", ", cols, "]");
    return;
  }
  expect(lw.weight, DType::BF16, op, what);
  TLLM_CHECK(lw.weight.ndim() == 2 && lw.weight.dim(0) == rows && lw.weight.dim(1) == cols, op, ": ", what, " ",
             lw.weight.str(), " must be [", rows, ", ", cols, "]");
  TLLM_CHECK(reinterpret_cast<uintptr_t>(lw.weight.raw()) % 16 == 0, op, ": ", what, " must be 16-byte aligned");
}

bool quantized(const MoeExperts& w) { return w.gate_up.quant != QuantScheme::None; }

// Whether the sm_90a grouped GEMM (moe_gemm_sm90.cu) can take these experts' bf16 GEMMs (the
// scratch and checked weights are 16-byte aligned).
bool sm90_gemm(const MoeExperts& w) { return w.hidden >= 64 && w.inter >= 64 && moe_gemm_sm90_init(); }

// The most tokens for which bf16 experts take the decode kernels (and moe_block its fused
// path) rather than a grouped GEMM (moe_ops.h).
int bf16_decode_max_tokens(const MoeExperts& w) {
  switch (moe_gemm_forced()) {
    case MoeGemmKernel::Mma:
    case MoeGemmKernel::Wgmma: return 0;
    case MoeGemmKernel::Decode: return kMoeGemvMaxTokens;
    case MoeGemmKernel::Auto: break;
  }
  return sm90_gemm(w) ? kMoeSm90DecodeMaxTokens : kMoeGemvMaxTokens;
}

// Which kernels take quantized experts for a batch of T tokens routed top-k over E experts:
//   Decode   T <= kMoeQuantGemvMaxTokens: moe_quant.cu, only the active experts' codes;
//   Fused    the grouped GEMM over the codes (quant_gemm's kernel over moe_align's tiles)
//            while an expert averages fewer than kMoeDequantPairs pairs;
//   Dequant  longer batches: every expert to bf16 once, then the bf16 grouped GEMM (the
//            dense linear's rule, kDequantTokens in quant_backend.cu), from kMoeDequantPairs
//            pairs per expert on average, or kMoeDequantPairsSm90 where the bf16 GEMM is the
//            sm_90a one (a 30B-A3B layer at T = 4,096, H200 run 248: fused against dequantized
//            + wgmma fp8 2,455 / 2,376 us, int4 2,656 / 2,431, int8 3,169 / 2,228; at T = 2,048
//            fused wins by 8-50%).
// TLLM_MOE_QUANT=decode|fused|dequant forces one at any T (tests, benchmarks).
enum class MoeQuantPath { Decode, Fused, Dequant };
constexpr int64_t kMoeDequantPairs = 512, kMoeDequantPairsSm90 = 256;
MoeQuantPath moe_quant_path(int64_t T, int64_t k, const MoeExperts& w) {
  const int E = w.num_experts;
  if (const char* e = std::getenv("TLLM_MOE_QUANT"); e && *e && std::strcmp(e, "auto") != 0) {
    if (std::strcmp(e, "decode") == 0) return MoeQuantPath::Decode;
    if (std::strcmp(e, "fused") == 0) return MoeQuantPath::Fused;
    if (std::strcmp(e, "dequant") == 0) return MoeQuantPath::Dequant;
    TLLM_THROW("TLLM_MOE_QUANT=", e, " is not supported (auto, decode, fused, dequant)");
  }
  if (T <= kMoeQuantGemvMaxTokens) return MoeQuantPath::Decode;
  return T * k < (sm90_gemm(w) ? kMoeDequantPairsSm90 : kMoeDequantPairs) * E ? MoeQuantPath::Fused
                                                                               : MoeQuantPath::Dequant;
}

MoeQuantWeight quant_weight(const LinearWeight& lw) {
  const QuantGemmParams g = quant_params(lw);
  MoeQuantWeight m;
  m.codes = g.codes;
  m.scales = g.scales;
  m.offsets = g.offsets;
  m.scales_f16 = g.scales_f16;
  m.bits = g.bits;
  m.fp8 = g.fp8;
  m.K = g.K;
  m.ktiles = g.ktiles;
  m.groups = g.groups;
  m.group_size = g.group_size;
  return m;
}

// The quantized decode kernels' parameters: x [T, H], act / y scratch, the grouping `meta`.
MoeQuantExpertParams quant_experts_params(const MoeExperts& w, const bf16* x, bf16* act, bf16* y, int T, int k,
                                          const MoeMeta& meta) {
  MoeQuantExpertParams q;
  q.x = x;
  q.gate_up = quant_weight(w.gate_up);
  q.down = quant_weight(w.down);
  q.act = act;
  q.y = y;
  q.T = T;
  q.k = k;
  q.E = w.num_experts;
  q.H = static_cast<int>(w.hidden);
  q.I = static_cast<int>(w.inter);
  q.meta = meta;
  return q;
}

void check_experts(const MoeExperts& w, const char* op) {
  const int64_t E = w.num_experts, H = w.hidden, I = w.inter, S = w.shared_inter;
  TLLM_CHECK(E >= 1 && E <= kMoeMaxExperts, op, ": ", E, " experts (the CUDA backend supports 1..", kMoeMaxExperts,
             ")");
  TLLM_CHECK(H > 0 && I > 0 && H % 8 == 0 && I % 8 == 0, op, ": hidden ", H, " and moe_intermediate ", I,
             " must be positive multiples of 8 on the CUDA backend");
  TLLM_CHECK(H < (1 << 30) && I < (1 << 30) && E * 2 * I * H < (int64_t{1} << 40), op, ": expert shapes too large");
  check_expert_weight(w.gate_up, E * 2 * I, H, op, "experts gate_up");
  check_expert_weight(w.down, E * H, I, op, "experts down");
  if (quantized(w) || w.down.quant != QuantScheme::None) {
    TLLM_CHECK(w.gate_up.quant != QuantScheme::None && w.down.quant != QuantScheme::None, op,
               ": experts gate_up and down must both be quantized or both bf16");
    // An expert is whole 16-row panels of the stacked weights, its up rows too.
    TLLM_CHECK(H % 16 == 0 && I % 16 == 0, op, ": quantized experts on the CUDA backend need hidden_size (", H,
               ") and moe_intermediate_size (", I, ") to be multiples of 16");
  }
  if (S > 0) {
    // Dense [rows, cols], or quantized (packed codes; the shape in out_features / in_features).
    auto shaped = [](const LinearWeight& lw, int64_t rows, int64_t cols) {
      if (!lw.weight.defined()) return false;
      if (lw.quant != QuantScheme::None) return lw.out_features == rows && lw.in_features == cols;
      return lw.weight.ndim() == 2 && lw.weight.dim(0) == rows && lw.weight.dim(1) == cols;
    };
    TLLM_CHECK(shaped(w.shared_gate_up, 2 * S, H), op, ": shared_gate_up must be [", 2 * S, ", ", H, "]");
    TLLM_CHECK(shaped(w.shared_down, H, S), op, ": shared_down must be [", H, ", ", S, "]");
    expect(w.shared_gate, DType::F32, op, "shared_gate");
    TLLM_CHECK(w.shared_gate.numel() == H, op, ": shared_gate ", w.shared_gate.str(), " must have ", H, " elements");
  }
}

// bf16 copies of the stacked experts, gate_up then down (from this offset): the quantized
// prefill path's scratch.
size_t dequant_down_offset(const MoeExperts& w) {
  return align256(static_cast<size_t>(w.num_experts) * 2 * w.inter * w.hidden * 2);
}
size_t dequant_bytes(const MoeExperts& w) {
  return dequant_down_offset(w) + static_cast<size_t>(w.num_experts) * w.hidden * w.inter * 2;
}

// Grows the MoE scratch to `bytes` (never during capture: the caller checked); the done
// counter of new memory is zeroed (the kernels leave it 0).
char* moe_scratch(DeviceWorkspace& ws, size_t& ws_bytes, size_t bytes, cudaStream_t stream) {
  ws_bytes = std::max(ws_bytes, bytes);
  return static_cast<char*>(ws.get_counters_zeroed(bytes, MoeScratchLayout{}.done, stream));
}

// Shapes of a moe_experts call: x, out [T, H] bf16; topk_ids i32, topk_weights f32 [T, k].
void check_experts_call(const Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                        const MoeExperts& w, const char* op) {
  check_experts(w, op);
  expect(x, DType::BF16, op, "x");
  expect(out, DType::BF16, op, "out");
  const int64_t H = w.hidden;
  TLLM_CHECK(x.ndim() == 2 && x.dim(1) == H && out.shape() == x.shape(), op, ": x ", x.str(), " and out ",
             out.str(), " must both be [T, ", H, "]");
  TLLM_CHECK(out.raw() != x.raw(), op, ": out must not alias x");
  const int64_t T = x.dim(0);
  expect(topk_ids, DType::I32, op, "topk_ids");
  expect(topk_weights, DType::F32, op, "topk_weights");
  TLLM_CHECK(topk_ids.ndim() == 2 && topk_ids.dim(0) == T && topk_ids.dim(1) >= 1, op, ": topk_ids ",
             topk_ids.str(), " must be [", T, ", k]");
  TLLM_CHECK(topk_weights.shape() == topk_ids.shape(), op, ": topk_weights ", topk_weights.str(),
             " must match topk_ids ", topk_ids.str());
  TLLM_CHECK((reinterpret_cast<uintptr_t>(x.raw()) | reinterpret_cast<uintptr_t>(out.raw())) % 16 == 0, op,
             ": x and out must be 16-byte aligned");
  TLLM_CHECK(T * topk_ids.dim(1) < (int64_t{1} << 30), op, ": ", T * topk_ids.dim(1),
             " (token, expert) pairs are too many for one call");
}

// The shared expert's MLP on x [T, H] in the scratch at `base` (past meta, act, y):
// returns its output [T, H] (bf16).
const bf16* shared_expert(CudaBackend& be, const Tensor& x, const MoeExperts& w, const MoeScratchLayout& l,
                          char* base) {
  const int64_t T = x.dim(0), S = w.shared_inter, H = w.hidden;
  char* sb = base + l.meta + l.act + l.y;
  Tensor s_gate_up = Tensor::wrap(sb, {T, 2 * S}, DType::BF16, Device::CUDA);
  Tensor s_act = Tensor::wrap(sb + l.s_gate_up, {T, S}, DType::BF16, Device::CUDA);
  Tensor s_out = Tensor::wrap(sb + l.s_gate_up + l.s_act, {T, H}, DType::BF16, Device::CUDA);
  be.linear(s_gate_up, x, w.shared_gate_up);
  be.silu_mul(s_act, s_gate_up);
  be.linear(s_out, s_act, w.shared_down);
  return s_out.data<bf16>();
}

}  // namespace

void CudaBackend::moe_route(Tensor& topk_ids, Tensor& topk_weights, const Tensor& router_logits, bool renormalize) {
  const char* op = "moe_route";
  TLLM_CHECK(router_logits.defined() && router_logits.device() == Device::CUDA && router_logits.ndim() == 2, op,
             ": router_logits must be a CUDA [T, E] tensor, got ", router_logits.str());
  TLLM_CHECK(router_logits.dtype() == DType::F32 || router_logits.dtype() == DType::BF16, op,
             ": router_logits must be f32 or bf16, got ", router_logits.str());
  const int64_t T = router_logits.dim(0), E = router_logits.dim(1);
  expect(topk_ids, DType::I32, op, "topk_ids");
  expect(topk_weights, DType::F32, op, "topk_weights");
  TLLM_CHECK(topk_ids.ndim() == 2 && topk_ids.dim(0) == T, op, ": topk_ids ", topk_ids.str(), " must be [", T,
             ", k]");
  TLLM_CHECK(topk_weights.shape() == topk_ids.shape(), op, ": topk_weights ", topk_weights.str(),
             " must match topk_ids ", topk_ids.str());
  TLLM_CHECK(T < (int64_t{1} << 31), op, ": too many tokens");
  cuda::moe_route(router_logits.raw(), router_logits.dtype(), static_cast<int>(T), static_cast<int>(E),
                  static_cast<int>(topk_ids.dim(1)), renormalize, topk_ids.data<int32_t>(),
                  topk_weights.data<float>(), stream_);
}

void CudaBackend::moe_reserve(int max_tokens, int top_k, const MoeExperts& w) {
  check_experts(w, "moe_reserve");
  moe_gemm_init();
  const size_t bytes = scratch_layout(std::max(1, max_tokens), std::max(1, top_k), w).total();
  if (bytes > moe_ws_bytes_) {
    check_capturable("moe_reserve");
    moe_scratch(moe_ws_, moe_ws_bytes_, bytes, stream_);
  }
  // The bf16 copy of the experts only where a batch of max_tokens can take the dequantizing path.
  if (quantized(w) && moe_quant_path(max_tokens, std::max(1, top_k), w) == MoeQuantPath::Dequant) {
    const size_t dq = dequant_bytes(w);
    if (dq > moe_dequant_bytes_) {
      check_capturable("moe_reserve");
      moe_dequant_ws_.get(dq);
      moe_dequant_bytes_ = dq;
    }
  }
}

void CudaBackend::moe_block(Tensor& out, const Tensor& x, const LinearWeight& router, const MoeExperts& w,
                            Tensor& router_logits, Tensor& topk_ids, Tensor& topk_weights, bool renormalize) {
  const char* op = "moe_block";
  const int64_t T = x.ndim() == 2 ? x.dim(0) : 0, E = w.num_experts;
  const int64_t k = topk_ids.ndim() == 2 ? topk_ids.dim(1) : 0;
  // The fused router (GEMV, top-k and the grouping in one kernel) for a small batch with a
  // bf16 router; then the fused expert kernels (bf16) or the quantized ones and moe_combine.
  const bool fused = moe_fused_supported(static_cast<int>(T), static_cast<int>(E), static_cast<int>(k)) &&
                     (quantized(w) || T <= bf16_decode_max_tokens(w)) &&
                     router.quant == QuantScheme::None && router.weight.defined() &&
                     router.weight.dtype() == DType::BF16 && router.weight.device() == Device::CUDA &&
                     router.weight.ndim() == 2 && router.weight.dim(0) == E && router.weight.dim(1) == w.hidden &&
                     !router.bias.defined() && reinterpret_cast<uintptr_t>(router.weight.raw()) % 16 == 0 &&
                     router_logits.defined() && router_logits.device() == Device::CUDA &&
                     (router_logits.dtype() == DType::BF16 || router_logits.dtype() == DType::F32) &&
                     router_logits.ndim() == 2 && router_logits.dim(0) == T && router_logits.dim(1) == E;
  if (!fused) {  // prefill, large E or k, a quantized router: the three ops one by one
    Backend::moe_block(out, x, router, w, router_logits, topk_ids, topk_weights, renormalize);
    return;
  }
  check_experts_call(out, x, topk_ids, topk_weights, w, op);
  const int64_t H = w.hidden, I = w.inter, S = w.shared_inter, P = T * k;
  const MoeScratchLayout l = scratch_layout(T, k, w);
  if (l.total() > moe_ws_bytes_)
    check_capturable("moe_block growing its scratch (moe_reserve did not cover this batch)");
  char* ws = moe_scratch(moe_ws_, moe_ws_bytes_, l.total(), stream_);
  char* base = ws + l.done;

  MoeDecodeParams p;
  p.x = x.data<bf16>();
  p.router = router.weight.data<bf16>();
  p.logits = router_logits.raw();
  p.logits_dtype = router_logits.dtype();
  p.ids = topk_ids.data<int32_t>();
  p.weights = topk_weights.data<float>();
  p.renormalize = renormalize;
  p.done = reinterpret_cast<unsigned*>(ws);
  p.gate_up = quantized(w) ? nullptr : w.gate_up.weight.data<bf16>();
  p.down = quantized(w) ? nullptr : w.down.weight.data<bf16>();
  p.act = reinterpret_cast<bf16*>(base + l.meta);
  p.out = out.data<bf16>();
  p.T = static_cast<int>(T);
  p.k = static_cast<int>(k);
  p.E = static_cast<int>(E);
  p.H = static_cast<int>(H);
  p.I = static_cast<int>(I);
  p.meta = moe_meta_layout(base, P, p.E);

  cuda::moe_router_topk(p, stream_);
  if (S > 0) {  // the shared expert between the router and the experts: gate|up -> down stays adjacent
    p.shared_y = shared_expert(*this, x, w, l, base);
    p.shared_gate = w.shared_gate.data<float>();
  }
  if (quantized(w)) {
    bf16* y = reinterpret_cast<bf16*>(base + l.meta + l.act);
    moe_quant_experts_decode(quant_experts_params(w, p.x, p.act, y, p.T, p.k, p.meta), stream_);
    cuda::moe_combine(p.out, y, p.meta.pair_pos, p.weights, p.T, p.k, p.H, p.x, p.shared_y, p.shared_gate, stream_);
    return;
  }
  cuda::moe_decode_gate_up(p, stream_);
  cuda::moe_decode_down_combine(p, stream_);
}

void CudaBackend::moe_experts(Tensor& out, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                              const MoeExperts& w) {
  const char* op = "moe_experts";
  check_experts_call(out, x, topk_ids, topk_weights, w, op);
  const int64_t T = x.dim(0), H = w.hidden, I = w.inter, S = w.shared_inter, k = topk_ids.dim(1), P = T * k;
  if (T == 0) return;

  const MoeScratchLayout l = scratch_layout(T, k, w);
  if (l.total() > moe_ws_bytes_)
    check_capturable("moe_experts growing its scratch (moe_reserve did not cover this batch)");
  char* base = moe_scratch(moe_ws_, moe_ws_bytes_, l.total(), stream_) + l.done;

  MoeExpertParams p;
  p.x = x.data<bf16>();
  p.gate_up = w.gate_up.weight.data<bf16>();
  p.down = w.down.weight.data<bf16>();
  p.meta = moe_meta_layout(base, P, w.num_experts);
  p.act = reinterpret_cast<bf16*>(base + l.meta);
  p.y = reinterpret_cast<bf16*>(base + l.meta + l.act);
  p.T = static_cast<int>(T);
  p.k = static_cast<int>(k);
  p.E = w.num_experts;
  p.H = static_cast<int>(H);
  p.I = static_cast<int>(I);
  p.num_sms = num_sms_;

  cuda::moe_align(topk_ids.data<int32_t>(), P, w.num_experts, p.meta, stream_);
  if (!quantized(w)) {
    if (T <= bf16_decode_max_tokens(w)) moe_experts_decode(p, stream_);
    else moe_experts_prefill(p, stream_);
  } else if (const MoeQuantPath path = moe_quant_path(T, k, w); path == MoeQuantPath::Decode) {
    moe_quant_experts_decode(quant_experts_params(w, p.x, p.act, p.y, p.T, p.k, p.meta), stream_);
  } else if (path == MoeQuantPath::Fused) {
    moe_quant_experts_prefill(quant_experts_params(w, p.x, p.act, p.y, p.T, p.k, p.meta), stream_);
  } else {  // every expert to bf16 once, then the bf16 grouped GEMM
    const size_t dq = dequant_bytes(w);
    if (dq > moe_dequant_bytes_) {
      check_capturable("moe_experts growing its dequantization scratch (moe_reserve did not cover this batch)");
      moe_dequant_bytes_ = dq;
    }
    char* d = static_cast<char*>(moe_dequant_ws_.get(moe_dequant_bytes_));
    bf16* gu = reinterpret_cast<bf16*>(d);
    bf16* dn = reinterpret_cast<bf16*>(d + dequant_down_offset(w));
    quant_dequantize(quant_params(w.gate_up), gu, stream_);
    quant_dequantize(quant_params(w.down), dn, stream_);
    p.gate_up = gu;
    p.down = dn;
    moe_experts_prefill(p, stream_);
  }

  const bf16* shared_y = S > 0 ? shared_expert(*this, x, w, l, base) : nullptr;
  cuda::moe_combine(out.data<bf16>(), p.y, p.meta.pair_pos, topk_weights.data<float>(), static_cast<int>(T),
                    static_cast<int>(k), static_cast<int>(H), x.data<bf16>(), shared_y,
                    S > 0 ? w.shared_gate.data<float>() : nullptr, stream_);
}

}  // namespace tllm::cuda
