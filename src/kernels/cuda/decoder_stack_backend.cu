// CudaBackend::decoder_stack: decides whether a DecoderStack can run as the one persistent
// kernel of decoder_stack.cu (bf16 weights, dense or sparse-MoE MLPs without a shared
// expert, one token of one sequence, full-width split-half RoPE, no sliding window) and
// launches it. The per-layer pointer table lives on the device and is re-uploaded only when
// the layers or the KV cache change (never inside a graph capture: there the op declines
// and the layers run op by op).
//
// Used by default for models whose layers read at most kAutoLayerBytes of weights per token
// (a MoE layer: attention, router and k experts): measured on an H200 (tg128 batch 1), the
// kernel gains over the op-by-op graph at the Qwen2.5-0.5B shape (30 MB per layer: 1,238 ->
// 1,351 tok/s, run 71), at 1.5B (88 MB: 607 -> 712) and at Qwen3-30B-A3B (113 MB with 8 of
// 128 experts: 300 -> 331), but not at 7B (466 MB: 228 against 237, run 52; 235-240 against
// 237 in runs 75-78 of session 10: level), where each op-by-op GEMV is large enough to
// stream near the copy rate and the kernel's phase boundaries cost as much as the launches.
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
      I = L.gate_up->weight.dim(0) / 2;
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

// Why the kernel cannot run this MoE layer (nullptr: it can).
const char* check_moe(const DecoderStackLayer& L, int64_t H, const MoeDims& moe) {
  const MoeExperts& x = *L.experts;
  if (x.shared_inter > 0) return "a MoE layer with a shared expert (Qwen2-MoE)";
  if (x.num_experts != moe.E || L.top_k != moe.k || x.inter != moe.I || L.renormalize != moe.renormalize ||
      x.hidden != H)
    return "MoE layers of different shapes";
  if (!dense(L.router, moe.E, H, false) || !dense(&x.gate_up, int64_t{moe.E} * 2 * moe.I, H, false) ||
      !dense(&x.down, int64_t{moe.E} * H, moe.I, false))
    return "MoE weights not dense bf16 (quantized, or another dtype or shape)";
  return nullptr;
}

// Why the kernel cannot run this stack (nullptr: it can); fills the layer table.
const char* build_table(const DecoderStack& s, int64_t H, int64_t I, const MoeDims& moe,
                        std::vector<StackLayerPtrs>& t, int64_t& num_slots) {
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
  for (size_t l = 0; l < s.layers.size(); ++l) {
    const DecoderStackLayer& L = s.layers[l];
    if (L.sliding_window != 0) return "sliding-window attention";
    if (!dense(L.qkv, Q + 2 * KV, H, true) || !dense(L.o, H, Q, true))
      return "weights not dense bf16 (quantized, or another dtype or shape)";
    if (L.router || L.experts) {
      if (!L.router || !L.experts) return "a MoE layer without its router or experts";
      if (const char* why = check_moe(L, H, moe)) return why;
    } else if (!dense(L.gate_up, 2 * I, H, false) || !dense(L.down, H, I, false)) {
      return "weights not dense bf16 (quantized, or another dtype or shape)";
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
    p.w_qkv = L.qkv->weight.data<bf16>();
    p.b_qkv = L.qkv->bias.defined() ? L.qkv->bias.data<float>() : nullptr;
    p.w_o = L.o->weight.data<bf16>();
    p.b_o = L.o->bias.defined() ? L.o->bias.data<float>() : nullptr;
    if (L.router) {
      p.w_router = L.router->weight.data<bf16>();
      p.w_gate_up = L.experts->gate_up.weight.data<bf16>();
      p.w_down = L.experts->down.weight.data<bf16>();
    } else {
      p.w_gate_up = L.gate_up->weight.data<bf16>();
      p.w_down = L.down->weight.data<bf16>();
    }
    p.input_norm = L.input_norm->data<float>();
    p.post_norm = L.post_norm->data<float>();
    p.q_norm = f32_or_null(L.q_norm);
    p.k_norm = f32_or_null(L.k_norm);
    p.k_cache = const_cast<bf16*>(L.k_cache->data<bf16>());
    p.v_cache = const_cast<bf16*>(L.v_cache->data<bf16>());
  }
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
  const auto shape = std::make_tuple(H, I, n_q, n_kv, D, moe.E, moe.k, moe.I);
  if (st.shape_checked != shape) {
    st.shape_checked = shape;
    st.shape_ok = H < (1 << 30) && I < (1 << 30) &&
                  decoder_stack_supported(static_cast<int>(H), static_cast<int>(I), n_q, n_kv, D, moe, num_sms_);
    if (!st.shape_ok)
      TLLM_LOG(Info, "decoder stack kernel: not used for this model (shape H=", H, " I=", I, " heads ", n_q, "/",
               n_kv, " head_dim ", D, " experts ", moe.E, " top-", moe.k, " of I=", moe.I,
               " unsupported on this device)");
  }
  if (!st.shape_ok) return false;
  std::vector<StackLayerPtrs> t;
  int64_t num_slots = -1;
  const char* why = stack_enabled_ == 1 && max_layer_bytes(s, H, I, moe) > kAutoLayerBytes
                        ? "layers above 128 MB, where the op-by-op kernels are faster; TLLM_DECODER_STACK=1 forces it"
                        : build_table(s, H, I, moe, t, num_slots);
  if (why) {
    if (!st.declined) TLLM_LOG(Info, "decoder stack kernel: not used for this model (", why, ")");
    st.declined = true;
    return false;
  }
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
  if (timed && !stack_trace_path_.empty()) {
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
  if (p.timing) log_timing(st, stamps);
  if (p.trace) dump_trace(st, p.trace_layer);
  return true;
}

}  // namespace tllm::cuda
