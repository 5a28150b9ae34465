// CudaBackend::decoder_stack: decides whether a DecoderStack can run as the one persistent
// kernel of decoder_stack.cu (bf16 weights, or every projection quantized alike: int4 /
// int8 / FP8 codes in the CUDA layout with a bf16 router; dense or sparse-MoE MLPs without a
// shared expert, one token of one sequence, full-width split-half RoPE, no sliding window)
// and launches it. The per-layer pointer table lives on the device and is re-uploaded only when
// the layers or the KV cache change (never inside a graph capture: there the op declines
// and the layers run op by op).
//
// Used by default for models whose layers read at most kAutoLayerBytes of weights per token
// as bf16 (a MoE layer: attention, router and k experts; a quantized layer counts its
// parameters at 2 bytes too, so the same models take it): measured on an H200 (tg128 batch 1), the
// kernel gains over the op-by-op graph at the Qwen2.5-0.5B shape (30 MB per layer: 1,238 ->
// 1,351 tok/s, run 71), at 1.5B (88 MB: 607 -> 712) and at Qwen3-30B-A3B (113 MB with 8 of
// 128 experts: 300 -> 331), but not at 7B (466 MB: 228 against 237, run 52; 235-240 against
// 237 in runs 75-78 of session 10: level), where each op-by-op GEMV is large enough to
// stream near the copy rate and the kernel's phase boundaries cost as much as the launches.
// Quantized stacks: by default only for models with MoE layers. H200, tg128 batch 1, the stack
// kernel against op by op in one call (run 255): Qwen3-30B-A3B int4 g128 328.6 -> 391.2 tok/s,
// int8 307.2 -> 357.1; but Qwen2.5-0.5B int4 g64 1,661 -> 1,421 and 1.5B 965 -> 870: a dense
// layer's narrow projections (H / 16 = 56 panels at 0.5B) leave most blocks without work
// when a block owns whole 16-row panels; Qwen2.5-7B int4 g128 557.2 -> 460.4 (run 272: 224 panels
// of o and down over 132 blocks, and every phase boundary against 4 MB-68 MB GEMVs that stream
// near the copy rate op by op). (Sessions 48-49 declined int8 stacks for a wrong
// result on the Qwen3-MoE test model; runs 264-266 traced it to a router near tie that the
// test's tie rule missed, not a kernel fault. Run 267: Qwen3-30B-A3B int8 309.3 / 305.5 op by
// op -> 414.0 / 418.4 tok/s.)
// TLLM_DECODER_STACK=0 turns the path off, =1 on for any size. TLLM_STACK_TIMING=1 (with
// --enforce-eager: not inside graphs) times the kernel's phases with block 0's globaltimer
// after each grid barrier and logs the mean per layer every 256 calls. TLLM_STACK_TRACE=FILE
// (eager too) runs a traced build of the kernel and writes every block's event times of two
// layers for 16 steps (dump_trace; summarised by scripts/device/stack_trace.py).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/env.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/decoder_stack.h"
#include "kernels/cuda/quant_ops.h"
#include "kernels/quant_layout.h"
#include "core/logging.h"

namespace tllm::cuda {
namespace {

// A device tensor of dtype dt (16-byte aligned where the kernel reads it in vectors).
bool on_device(const Tensor& t, DType dt, bool aligned = true) {
  return t.defined() && t.device() == Device::CUDA && t.dtype() == dt &&
         (!aligned || reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0);
}

// A dense bf16 weight [rows, cols] with an f32 bias of rows or none (bias_ok: a bias allowed).
bool dense(const LinearWeight* w, int64_t rows, int64_t cols, bool bias_ok) {
  if (!w || w->quant != QuantScheme::None || !on_device(w->weight, DType::BF16)) return false;
  if (w->weight.ndim() != 2 || w->weight.dim(0) != rows || w->weight.dim(1) != cols) return false;
  if (!w->bias.defined()) return true;
  return bias_ok && on_device(w->bias, DType::F32, false) && w->bias.numel() == rows;
}

// A quantized stack's weights: every projection's scheme and scale dtype, and the k-tiling
// and groups of each input width (qkv, o, gate_up, down, edown of StackQuantDims), the same
// in every layer. `q` starts at bits 0 (unknown): the first weight sets the scheme.
struct QuantCheck {
  QuantCheck() { q.bits = 0; }
  StackQuantDims q;
  bool seen[5] = {};
};

// A quantized weight [rows, cols] in the CUDA layout (kernels/quant_layout.h) of the stack's
// scheme, with its k-tiling equal to the other layers' (slot: which projection), an f32 bias
// of rows or none (bias_ok: a bias allowed).
bool quantized(const LinearWeight* w, int64_t rows, int64_t cols, bool bias_ok, QuantCheck& qc, int slot) {
  if (!w || w->quant == QuantScheme::None || w->out_features != rows || w->in_features != cols) return false;
  const bool fp8 = w->quant == QuantScheme::Fp8E4M3;
  const int bits = fp8 ? kStackFp8 : w->quant_bits();
  if (!on_device(w->weight, DType::U8) || w->weight.ndim() != 2 ||
      w->weight.dim(1) != quant::row_bytes(quant::Layout::Cuda, w->quant_bits(), cols) ||
      w->weight.dim(0) < quant::padded_rows(rows))
    return false;
  const DType sd = w->scales.defined() ? w->scales.dtype() : DType::F32;
  if (!on_device(w->scales, sd) || (sd != DType::F16 && sd != DType::F32) || w->scales.ndim() != 2 ||
      w->scales.dim(0) < quant::padded_rows(rows))
    return false;
  if (fp8 ? w->zeros.defined() : !(on_device(w->zeros, sd) && w->zeros.shape() == w->scales.shape())) return false;
  if (qc.q.bits == 0) {
    qc.q.bits = bits;
    qc.q.scales_f16 = sd == DType::F16;
  } else if (qc.q.bits != bits || qc.q.scales_f16 != (sd == DType::F16)) {
    return false;
  }
  const QuantGemmParams g = quant_params(*w);  // the k-tiling and groups the quantized kernels take
  StackQuantK k;
  k.ktiles = g.ktiles;
  k.groups = g.groups;
  k.group_size = g.group_size;
  StackQuantK* dims[5] = {&qc.q.qkv, &qc.q.o, &qc.q.gate_up, &qc.q.down, &qc.q.edown};
  StackQuantK& d = *dims[slot];
  if (!qc.seen[slot]) {
    d = k;
    qc.seen[slot] = true;
  } else if (d.ktiles != k.ktiles || d.groups != k.groups || d.group_size != k.group_size) {
    return false;
  }
  if (!w->bias.defined()) return true;
  return bias_ok && on_device(w->bias, DType::F32, false) && w->bias.numel() == rows;
}

StackQuantPtrs quant_ptrs(const LinearWeight& w) {
  return {static_cast<const uint8_t*>(w.weight.raw()), w.scales.raw(), w.zeros.defined() ? w.zeros.raw() : nullptr};
}

bool f32_vec(const Tensor* t, int64_t n, bool optional) {
  if (!t || !t->defined()) return optional;
  return on_device(*t, DType::F32, false) && t->numel() == n;
}

const float* f32_or_null(const Tensor* t) { return t && t->defined() ? t->data<float>() : nullptr; }

constexpr int64_t kAutoLayerBytes = int64_t{128} << 20;

// The dense layers' intermediate size (0: none) and the MoE layers' dims (E = 0: none),
// from the first layer of each kind; build_table checks that every layer agrees.
void mlp_dims(const DecoderStack& s, int64_t& I, MoeDims& moe) {
  I = 0;
  moe = MoeDims{};
  for (const DecoderStackLayer& L : s.layers) {
    if (L.router && L.experts && moe.E == 0) {
      moe.E = L.experts->num_experts;
      moe.k = L.top_k;
      moe.I = static_cast<int>(std::min<int64_t>(L.experts->inter, 1 << 30));
      moe.renormalize = L.renormalize;
    } else if (!L.router && L.gate_up && I == 0 && L.gate_up->weight.ndim() == 2) {
      I = L.gate_up->quant != QuantScheme::None ? L.gate_up->out_features / 2 : L.gate_up->weight.dim(0) / 2;
    }
  }
}

// Bytes of weights one token reads in the layers: attention, then the dense MLP or the
// router and k experts. The largest layer counts.
int64_t max_layer_bytes(const DecoderStack& s, int64_t H, int64_t I, const MoeDims& moe) {
  const QKVLayout& lay = s.layout;
  const int64_t attn = 2 * ((int64_t{lay.n_q_heads} + 2 * lay.n_kv_heads) * lay.head_dim * H +
                            H * int64_t{lay.n_q_heads} * lay.head_dim);
  int64_t m = 0;
  for (const DecoderStackLayer& L : s.layers)
    m = std::max(m, attn + (L.router ? 2 * (moe.E * H + 3 * int64_t{moe.k} * moe.I * H) : 2 * 3 * I * H));
  return m;
}

// Why the kernel cannot run this MoE layer (nullptr: it can); qc: the quantized stack's
// check (null: bf16 weights).
const char* check_moe(const DecoderStackLayer& L, int64_t H, const MoeDims& moe, QuantCheck* qc) {
  const MoeExperts& x = *L.experts;
  if (x.shared_inter > 0) return "a MoE layer with a shared expert (Qwen2-MoE)";
  if (x.num_experts != moe.E || L.top_k != moe.k || x.inter != moe.I || L.renormalize != moe.renormalize ||
      x.hidden != H)
    return "MoE layers of different shapes";
  if (!dense(L.router, moe.E, H, false)) return "a MoE router not dense bf16";
  const int64_t gu = int64_t{moe.E} * 2 * moe.I, dn = int64_t{moe.E} * H;
  if (qc ? !quantized(&x.gate_up, gu, H, false, *qc, 2) || !quantized(&x.down, dn, moe.I, false, *qc, 4)
         : !dense(&x.gate_up, gu, H, false) || !dense(&x.down, dn, moe.I, false))
    return qc ? "MoE experts not quantized like the other projections"
              : "MoE weights not dense bf16 (quantized, or another dtype or shape)";
  return nullptr;
}

// Why the kernel cannot run this stack (nullptr: it can); fills the layer table and, for
// quantized projections (those of the first layer decide), the quantized dims `quant`.
const char* build_table(const DecoderStack& s, int64_t H, int64_t I, const MoeDims& moe,
                        std::vector<StackLayerPtrs>& t, int64_t& num_slots, StackQuantDims& quant) {
  const QKVLayout& lay = s.layout;
  const int D = lay.head_dim, n_q = lay.n_q_heads, n_kv = lay.n_kv_heads;
  const int64_t Q = int64_t{n_q} * D, KV = int64_t{n_kv} * D;
  const AttentionMeta& m = *s.meta;
  if (s.rope.interleaved || s.rope.rotary_dim != D) return "RoPE is not split-half over the whole head";
  if (!s.cos_sin || !on_device(*s.cos_sin, DType::F32, false) || s.cos_sin->ndim() != 2 || s.cos_sin->dim(1) != D)
    return "no f32 cos/sin table of the head dim";
  if (!s.rope_rows || !on_device(*s.rope_rows, DType::I32, false) || !s.slot_mapping ||
      !on_device(*s.slot_mapping, DType::I64, false) || !on_device(m.seq_lens_k, DType::I32, false) ||
      !on_device(m.block_tables, DType::I32, false))
    return "batch metadata not on the device as i32/i64";
  if (!f32_vec(s.final_norm, H, false)) return "final norm weight not f32 [H]";
  t.assign(s.layers.size(), StackLayerPtrs{});
  num_slots = -1;
  QuantCheck qcheck;
  QuantCheck* qc = s.layers[0].qkv->quant != QuantScheme::None ? &qcheck : nullptr;
  const char* mixed = "weights neither all dense bf16 nor all quantized alike (scheme, scale dtype, group size)";
  for (size_t l = 0; l < s.layers.size(); ++l) {
    const DecoderStackLayer& L = s.layers[l];
    if (L.sliding_window != 0) return "sliding-window attention";
    if (qc ? !quantized(L.qkv, Q + 2 * KV, H, true, *qc, 0) || !quantized(L.o, H, Q, true, *qc, 1)
           : !dense(L.qkv, Q + 2 * KV, H, true) || !dense(L.o, H, Q, true))
      return qc ? mixed : "weights not dense bf16 (quantized, or another dtype or shape)";
    if (L.router || L.experts) {
      if (!L.router || !L.experts) return "a MoE layer without its router or experts";
      if (const char* why = check_moe(L, H, moe, qc)) return why;
    } else if (qc ? !quantized(L.gate_up, 2 * I, H, false, *qc, 2) || !quantized(L.down, H, I, false, *qc, 3)
                  : !dense(L.gate_up, 2 * I, H, false) || !dense(L.down, H, I, false)) {
      return qc ? mixed : "weights not dense bf16 (quantized, or another dtype or shape)";
    }
    if (!f32_vec(L.input_norm, H, false) || !f32_vec(L.post_norm, H, false) || !f32_vec(L.q_norm, D, true) ||
        !f32_vec(L.k_norm, D, true))
      return "norm weights not f32";
    for (const Tensor* c : {L.k_cache, L.v_cache})
      if (!c || !on_device(*c, DType::BF16) || c->ndim() != 4 || c->dim(1) != m.block_size || c->dim(2) != n_kv ||
          c->dim(3) != D)
        return "KV cache not bf16 [blocks, block_size, n_kv, head_dim]";
    const int64_t slots = L.k_cache->dim(0) * L.k_cache->dim(1);
    if (L.v_cache->dim(0) * L.v_cache->dim(1) != slots || (num_slots >= 0 && slots != num_slots))
      return "KV caches of different sizes";
    num_slots = slots;
    StackLayerPtrs& p = t[l];
    const LinearWeight& gate_up = L.router ? L.experts->gate_up : *L.gate_up;
    const LinearWeight& down = L.router ? L.experts->down : *L.down;
    if (L.router) p.w_router = L.router->weight.data<bf16>();
    if (qc) {
      p.q_qkv = quant_ptrs(*L.qkv);
      p.q_o = quant_ptrs(*L.o);
      p.q_gate_up = quant_ptrs(gate_up);
      p.q_down = quant_ptrs(down);
    } else {
      p.w_qkv = L.qkv->weight.data<bf16>();
      p.w_o = L.o->weight.data<bf16>();
      p.w_gate_up = gate_up.weight.data<bf16>();
      p.w_down = down.weight.data<bf16>();
    }
    p.b_qkv = L.qkv->bias.defined() ? L.qkv->bias.data<float>() : nullptr;
    p.b_o = L.o->bias.defined() ? L.o->bias.data<float>() : nullptr;
    p.input_norm = L.input_norm->data<float>();
    p.post_norm = L.post_norm->data<float>();
    p.q_norm = f32_or_null(L.q_norm);
    p.k_norm = f32_or_null(L.k_norm);
    p.k_cache = const_cast<bf16*>(L.k_cache->data<bf16>());
    p.v_cache = const_cast<bf16*>(L.v_cache->data<bf16>());
  }
  quant = qc ? qc->q : StackQuantDims{};
  return nullptr;
}

bool same_table(const std::vector<StackLayerPtrs>& a, const std::vector<StackLayerPtrs>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(StackLayerPtrs) * a.size()) == 0;
}

}  // namespace

CudaBackend::StackTable::~StackTable() {
  if (table) cudaFree(table);
  if (timing) cudaFree(timing);
  if (trace) cudaFree(trace);
}

// TLLM_STACK_TRACE=FILE: every 8th eager step from the 64th (16 steps), the per-block event
// times of the traced layers appended to FILE as "step event block ns" lines (a diagnostic for
// scripts/device/stack_trace.py).
void CudaBackend::dump_trace(StackTable& st, int layer) {
  const int64_t call = st.traced_calls++;
  if (call < 64 || call % 8 != 0 || call >= 64 + 16 * 8) return;
  const size_t n = static_cast<size_t>(kStackTraceSlots) * num_sms_;
  std::vector<unsigned long long> t(n);
  CUDA_CHECK(cudaMemcpyAsync(t.data(), st.trace, n * sizeof(unsigned long long), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  FILE* f = std::fopen(stack_trace_path_.c_str(), "a");
  if (!f) {
    TLLM_LOG(Warn, "TLLM_STACK_TRACE: cannot open ", stack_trace_path_, " for appending; trace dropped");
    return;
  }
  for (int k = 0; k < kStackTraceSlots; ++k)
    for (int b = 0; b < num_sms_; ++b) {
      const unsigned long long v = t[static_cast<size_t>(k) * num_sms_ + b];
      if (v) std::fprintf(f, "%lld %d %d %llu\n", static_cast<long long>(call), k, b, v);
    }
  std::fprintf(f, "# layer %d\n", layer);
  std::fclose(f);
}

void CudaBackend::log_timing(StackTable& st, size_t stamps) {
  std::vector<unsigned long long> t(stamps);
  CUDA_CHECK(cudaMemcpyAsync(t.data(), st.timing, stamps * sizeof(unsigned long long), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (size_t k = 0; k + 1 < stamps; ++k) st.phase_ns[k % kStackPhases] += static_cast<double>(t[k + 1] - t[k]);
  st.total_ns += static_cast<double>(t[stamps - 1] - t[0]);
  if (++st.timed_calls % 256 != 0) return;
  const double per = 1e3 * static_cast<double>(st.timed_calls) * static_cast<double>(st.host.size());
  std::string phases;
  for (int k = 0; k < kStackPhases; ++k)
    phases += std::string(k ? ", " : "") + kStackPhaseNames[k] + " " + std::to_string(st.phase_ns[k] / per);
  TLLM_LOG(Info, "decoder stack phases, us per layer (mean of ", st.timed_calls, " steps): ", phases,
           "; all layers ", st.total_ns / (1e3 * static_cast<double>(st.timed_calls)), " us");
}

bool CudaBackend::decoder_stack(const DecoderStack& s) {
  if (stack_enabled_ < 0) {  // 0 off, 1 by size, 2 forced on
    const int e = env_int("TLLM_DECODER_STACK", -1);
    stack_enabled_ = e < 0 ? 1 : (e == 0 ? 0 : 2);
  }
  if (stack_timing_ < 0) {
    stack_timing_ = env_flag("TLLM_STACK_TIMING");
    if (const char* tp = std::getenv("TLLM_STACK_TRACE")) stack_trace_path_ = tp;
  }
  if (!stack_enabled_ || !s.meta || s.meta->num_seqs != 1 || s.meta->num_tokens != 1 || s.layers.empty()) return false;
  const DecoderStackLayer& L0 = s.layers[0];
  if (!s.x || !s.h || !on_device(*s.x, DType::BF16) || !on_device(*s.h, DType::BF16) || !L0.qkv ||
      !L0.qkv->weight.defined())
    return false;
  const QKVLayout& lay = s.layout;
  const int D = lay.head_dim, n_q = lay.n_q_heads, n_kv = lay.n_kv_heads;
  const int64_t H = s.x->numel();
  int64_t I = 0;
  MoeDims moe;
  mlp_dims(s, I, moe);
  if (s.h->numel() != H) return false;
  // One table per model (speculative decoding runs two on one backend), keyed by its first weight.
  StackTable& st = stack_tables_[L0.qkv->weight.raw()];
  std::vector<StackLayerPtrs> t;
  int64_t num_slots = -1;
  StackQuantDims quant;
  const char* why = stack_enabled_ == 1 && max_layer_bytes(s, H, I, moe) > kAutoLayerBytes
                        ? "layers above 128 MB, where the op-by-op kernels are faster; TLLM_DECODER_STACK=1 forces it"
                        : build_table(s, H, I, moe, t, num_slots, quant);
  if (!why && stack_enabled_ == 1 && quant.bits != 16 && moe.E == 0)
    why = "quantized dense layers, where the op-by-op kernels are faster; TLLM_DECODER_STACK=1 forces it";
  if (why) {
    if (!st.declined) TLLM_LOG(Info, "decoder stack kernel: not used for this model (", why, ")");
    st.declined = true;
    return false;
  }
  const std::vector<int64_t> shape = {H, I, n_q, n_kv, D, moe.E, moe.k, moe.I, quant.bits, quant.scales_f16,
                                      quant.qkv.ktiles, quant.qkv.groups, quant.qkv.group_size,
                                      quant.o.ktiles, quant.o.groups, quant.o.group_size,
                                      quant.gate_up.ktiles, quant.gate_up.groups, quant.gate_up.group_size,
                                      quant.down.ktiles, quant.down.groups, quant.down.group_size,
                                      quant.edown.ktiles, quant.edown.groups, quant.edown.group_size};
  if (st.shape_checked != shape) {
    st.shape_checked = shape;
    st.shape_ok = H < (1 << 30) && I < (1 << 30) &&
                  decoder_stack_supported(static_cast<int>(H), static_cast<int>(I), n_q, n_kv, D, moe, quant, num_sms_);
    if (!st.shape_ok)
      TLLM_LOG(Info, "decoder stack kernel: not used for this model (shape H=", H, " I=", I, " heads ", n_q, "/",
               n_kv, " head_dim ", D, " experts ", moe.E, " top-", moe.k, " of I=", moe.I,
               quant.bits == 16 ? std::string() : " with " + std::to_string(quant.bits) + "-bit codes",
               " unsupported on this device)");
  }
  if (!st.shape_ok) return false;
  // The device copy of the table, refreshed when it changed: in stream order, so the launch
  // below reads it; never inside a capture (the graph would keep reading whatever the table
  // holds at replay).
  if (!same_table(t, st.host)) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(stream_, &cs));
    if (cs != cudaStreamCaptureStatusNone) return false;
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // queued launches may still read the old table
    if (st.capacity < t.size()) {
      if (st.table) CUDA_CHECK(cudaFree(st.table));
      st.table = nullptr;
      CUDA_CHECK(cudaMalloc(&st.table, sizeof(StackLayerPtrs) * t.size()));
      st.capacity = t.size();
    }
    st.host = std::move(t);
    CUDA_CHECK(cudaMemcpyAsync(st.table, st.host.data(), sizeof(StackLayerPtrs) * st.host.size(),
                               cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (!st.announced)
      TLLM_LOG(Info, "decoder stack kernel: one-token decode steps run ", st.host.size(),
               " layers in one persistent kernel (TLLM_DECODER_STACK=0 turns it off)");
    st.announced = true;
  }

  const AttentionMeta& m = *s.meta;
  DecoderStackParams p;
  p.layers = st.table;
  p.n_layers = static_cast<int>(st.host.size());
  p.x = s.x->data<bf16>();
  p.h = s.h->data<bf16>();
  p.final_norm = s.final_norm->data<float>();
  p.H = static_cast<int>(H);
  p.I = static_cast<int>(I);
  p.moe = moe;
  p.quant = quant;
  p.n_q = n_q;
  p.n_kv = n_kv;
  p.D = D;
  p.cos_sin = s.cos_sin->data<float>();
  p.rope_rows = s.rope_rows->data<int32_t>();
  p.slot_mapping = s.slot_mapping->data<int64_t>();
  p.num_slots = num_slots;
  p.seq_lens_k = m.seq_lens_k.data<int32_t>();
  p.block_tables = m.block_tables.data<int32_t>();
  p.block_size = m.block_size;
  p.scale = s.scale;
  p.eps = s.eps;
  // The kernel's counters are zeroed once in new memory; every launch leaves them 0
  // (decoder_stack.cu, grid_exit), so no memset precedes each step.
  p.workspace = stack_ws_.get_counters_zeroed(decoder_stack_workspace_bytes(p.I, n_q, n_kv, D, moe, num_sms_),
                                              decoder_stack_sync_bytes(n_q), stream_);
  bool timed = false;
  if (stack_timing_ || !stack_trace_path_.empty()) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(stream_, &cs));
    timed = cs == cudaStreamCaptureStatusNone;
  }
  const size_t stamps = kStackPhases * st.host.size() + 1;
  if (timed && stack_timing_) {
    if (st.timing_n < stamps) {
      if (st.timing) CUDA_CHECK(cudaFree(st.timing));
      CUDA_CHECK(cudaMalloc(&st.timing, stamps * sizeof(unsigned long long)));
      st.timing_n = stamps;
    }
    p.timing = st.timing;
  }
  if (timed && !stack_trace_path_.empty() && quant.bits == 16) {  // the traced build: bf16 weights only
    const size_t n = static_cast<size_t>(kStackTraceSlots) * num_sms_;
    if (!st.trace) CUDA_CHECK(cudaMalloc(&st.trace, n * sizeof(unsigned long long)));
    CUDA_CHECK(cudaMemsetAsync(st.trace, 0, n * sizeof(unsigned long long), stream_));
    p.trace = st.trace;
    p.trace_layer = p.n_layers / 2;  // >= 1 from two layers on (layer 0 has no arrival before its qkv)
  }
  if (!cuda::decoder_stack(p, num_sms_, stream_)) {
    TLLM_LOG(Warn, "decoder stack kernel: the device refused a cooperative launch of ", num_sms_,
             " blocks (SMs taken by another context?); running the layers op by op from now on");
    st.shape_ok = false;
    return false;
  }
  ++stack_launches_;
  if (p.timing) log_timing(st, stamps);
  if (p.trace) dump_trace(st, p.trace_layer);
  return true;
}

}  // namespace tllm::cuda
