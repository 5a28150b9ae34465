// CpuBackend: tensor checks, then the free functions of cpu_ops.h.
#include "kernels/cpu/cpu_backend.h"

#include <cstring>

#include "core/cpu_features.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm {

namespace {

void check_cpu(const Tensor& t, const char* op, const char* what) {
  TLLM_CHECK(t.defined(), op, ": ", what, " is undefined");
  TLLM_CHECK(t.device() == Device::CPU, op, ": ", what, " is on ", device_name(t.device()),
             ", the CPU backend needs host tensors");
}

void check_dtype(const Tensor& t, DType want, const char* op, const char* what) {
  check_cpu(t, op, what);
  TLLM_CHECK(t.dtype() == want, op, ": ", what, " ", t.str(), " must be ", dtype_name(want));
}

bool is_float16ish(DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F16; }

// Integer index tensors may be i32 or i64.
std::vector<int64_t> to_i64(const Tensor& t, const char* op, const char* what) {
  check_cpu(t, op, what);
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::I64) {
    std::memcpy(v.data(), t.raw(), v.size() * sizeof(int64_t));
  } else {
    TLLM_CHECK(t.dtype() == DType::I32, op, ": ", what, " ", t.str(), " must be i32 or i64");
    const int32_t* p = t.data<int32_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  }
  return v;
}

const int32_t* as_i32(const Tensor& t, std::vector<int32_t>& tmp, const char* op, const char* what) {
  check_cpu(t, op, what);
  if (t.dtype() == DType::I32) return t.data<int32_t>();
  TLLM_CHECK(t.dtype() == DType::I64, op, ": ", what, " ", t.str(), " must be i32 or i64");
  tmp.resize(static_cast<size_t>(t.numel()));
  const int64_t* p = t.data<int64_t>();
  for (size_t i = 0; i < tmp.size(); ++i) tmp[i] = static_cast<int32_t>(p[i]);
  return tmp.data();
}

// Small float vectors (norm weights, biases) in any float dtype as f32.
const float* as_f32(const Tensor& t, std::vector<float>& tmp, int64_t n, const char* op, const char* what) {
  check_cpu(t, op, what);
  TLLM_CHECK(t.numel() == n, op, ": ", what, " ", t.str(), " must have ", n, " elements");
  if (t.dtype() == DType::F32) return t.data<float>();
  TLLM_CHECK(is_float16ish(t.dtype()), op, ": ", what, " ", t.str(), " must be f32, bf16 or f16");
  tmp.resize(static_cast<size_t>(n));
  cpu::scalar::to_f32(tmp.data(), t.raw(), t.dtype(), n);
  return tmp.data();
}

int64_t last_dim(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(-1); }
int64_t rows_of(const Tensor& t) {
  const int64_t d = last_dim(t);
  return d == 0 ? 0 : t.numel() / d;
}

}  // namespace

CpuBackend::CpuBackend(const CpuBackendOptions& opts, cpu::Isa isa) : pool_(opts.threads), isa_(isa) {
  TLLM_CHECK(cpu::isa_supported(isa), "CPU backend: this machine does not support ", cpu::isa_name(isa));
}

std::string CpuBackend::name() const {
  // AMX: the quantized linears' 16-token tiles (quant_avx512.cpp) on machines that have it.
  const bool amx = isa_ == cpu::Isa::Avx512 && cpu_features().amx_int8;
  return "cpu (" + std::to_string(pool_.size()) + " threads, " + cpu::isa_name(isa_) + (amx ? " + amx" : "") + ")";
}

void CpuBackend::copy(Tensor& dst, const Tensor& src) {
  check_cpu(dst, "copy", "dst");
  check_cpu(src, "copy", "src");
  TLLM_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel(), "copy: ", src.str(), " into ",
             dst.str(), " (dtype and numel must match)");
  if (dst.raw() != src.raw() && src.nbytes()) std::memmove(dst.raw(), src.raw(), src.nbytes());
}

Tensor CpuBackend::upload(const Tensor& host, DType dtype) {
  check_cpu(host, "upload", "tensor");
  if (host.dtype() == dtype) return host;  // zero-copy: mmap'd weights stay where they are
  TLLM_CHECK(dtype_is_float(host.dtype()) && is_float16ish(dtype), "upload: cannot convert ", host.str(),
             " to ", dtype_name(dtype), " (float tensors convert between f32, bf16, f16)");
  Tensor out = Tensor::empty(host.shape(), dtype);
  const int64_t n = host.numel();
  const cpu::Isa isa = isa_;
  pool_.parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    constexpr int64_t kChunk = 4096;
    float buf[kChunk];
    for (int64_t i = b; i < e; i += kChunk) {
      const int64_t m = std::min(kChunk, e - i);
      const float* src;
      if (host.dtype() == DType::F64) {
        const double* d = host.data<double>() + i;
        for (int64_t j = 0; j < m; ++j) buf[j] = static_cast<float>(d[j]);
        src = buf;
      } else if (host.dtype() == DType::F32) {
        src = host.data<float>() + i;
      } else {
        isa_kernel(isa, to_f32)(buf, static_cast<const char*>(host.raw()) + i * 2, host.dtype(), m);
        src = buf;
      }
      isa_kernel(isa, from_f32)(static_cast<char*>(out.raw()) + i * dtype_size(dtype), dtype, src, m);
    }
  });
  return out;
}

Tensor CpuBackend::download(const Tensor& t) {
  check_cpu(t, "download", "tensor");
  if (!dtype_is_float(t.dtype()) || t.dtype() == DType::F32) return t.clone();
  return upload(t, DType::F32);
}

void CpuBackend::fill_zero(Tensor& t) {
  check_cpu(t, "fill_zero", "tensor");
  if (t.nbytes()) std::memset(t.raw(), 0, t.nbytes());
}

void CpuBackend::embedding(Tensor& out, const Tensor& table, const Tensor& tokens) {
  check_cpu(table, "embedding", "table");
  TLLM_CHECK(table.ndim() == 2 && is_float16ish(table.dtype()), "embedding: table ", table.str(),
             " must be [vocab, hidden] f32, bf16 or f16");
  std::vector<int32_t> tmp;
  const int32_t* ids = as_i32(tokens, tmp, "embedding", "tokens");
  const int64_t T = tokens.numel(), H = table.dim(1);
  check_dtype(out, DType::F32, "embedding", "out");
  check_shape(out, {T, H}, "embedding: out");
  cpu::embedding(out.data<float>(), table.raw(), table.dtype(), table.dim(0), H, ids, T, exec());
}

void CpuBackend::rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) {
  check_dtype(x, DType::F32, "rms_norm", "x");
  check_dtype(out, DType::F32, "rms_norm", "out");
  TLLM_CHECK(out.shape() == x.shape(), "rms_norm: out ", out.str(), " and x ", x.str(), " differ in shape");
  std::vector<float> wtmp;
  const int64_t H = last_dim(x);
  const float* w = as_f32(weight, wtmp, H, "rms_norm", "weight");
  cpu::rms_norm(out.data<float>(), x.data<float>(), w, rows_of(x), H, eps, exec());
}

void CpuBackend::add_rms_norm(Tensor& residual, const Tensor& x, Tensor& out, const Tensor& weight,
                              float eps) {
  check_dtype(residual, DType::F32, "add_rms_norm", "residual");
  check_dtype(x, DType::F32, "add_rms_norm", "x");
  check_dtype(out, DType::F32, "add_rms_norm", "out");
  TLLM_CHECK(residual.shape() == x.shape() && out.shape() == x.shape(), "add_rms_norm: residual ",
             residual.str(), ", x ", x.str(), " and out ", out.str(), " must have one shape");
  std::vector<float> wtmp;
  const int64_t H = last_dim(x);
  const float* w = as_f32(weight, wtmp, H, "add_rms_norm", "weight");
  cpu::add_rms_norm(residual.data<float>(), x.data<float>(), out.data<float>(), w, rows_of(x), H, eps,
                    exec());
}

void CpuBackend::linear(Tensor& out, const Tensor& x, const LinearWeight& w) {
  if (w.quant != QuantScheme::None) return linear_quantized(out, x, w);
  check_cpu(w.weight, "linear", "weight");
  TLLM_CHECK(w.weight.ndim() == 2 && is_float16ish(w.weight.dtype()), "linear: weight ", w.weight.str(),
             " must be [out_features, in_features] f32, bf16 or f16");
  const int64_t N = w.weight.dim(0), K = w.weight.dim(1);
  check_dtype(x, DType::F32, "linear", "x");
  TLLM_CHECK(last_dim(x) == K, "linear: x ", x.str(), " does not match weight ", w.weight.str(),
             " (in_features ", K, ")");
  const int64_t T = rows_of(x);
  check_dtype(out, DType::F32, "linear", "out");
  TLLM_CHECK(out.numel() == T * N && last_dim(out) == N, "linear: out ", out.str(), " must be [", T, ", ",
             N, "]");
  std::vector<float> btmp;
  const float* bias = w.bias.defined() ? as_f32(w.bias, btmp, N, "linear", "bias") : nullptr;
  cpu::linear(out.data<float>(), x.data<float>(), w.weight.raw(), w.weight.dtype(), bias, T, N, K, exec());
}

void CpuBackend::qk_norm_rope_kv_write(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm,
                                       const Tensor& k_norm, float eps, const RopeSpec& rope,
                                       const Tensor& cos_sin, const Tensor& rope_rows,
                                       const Tensor& slot_mapping, Tensor& k_cache, Tensor& v_cache) {
  const char* op = "qk_norm_rope_kv_write";
  check_dtype(qkv, DType::F32, op, "qkv");
  TLLM_CHECK(last_dim(qkv) == layout.row_stride(), op, ": qkv ", qkv.str(), " rows must be ",
             layout.row_stride(), " wide for ", layout.n_q_heads, "+2x", layout.n_kv_heads, " heads of ",
             layout.head_dim);
  const int64_t T = rows_of(qkv);
  check_dtype(cos_sin, DType::F32, op, "cos_sin");
  TLLM_CHECK(cos_sin.ndim() == 2 && cos_sin.dim(1) == rope.rotary_dim, op, ": cos_sin ", cos_sin.str(),
             " must be [positions, rotary_dim=", rope.rotary_dim, "]");
  check_cpu(k_cache, op, "k_cache");
  check_cpu(v_cache, op, "v_cache");
  TLLM_CHECK(k_cache.dtype() == v_cache.dtype() && k_cache.shape() == v_cache.shape(), op, ": k_cache ",
             k_cache.str(), " and v_cache ", v_cache.str(), " differ");
  const int64_t kv_width = static_cast<int64_t>(layout.n_kv_heads) * layout.head_dim;
  TLLM_CHECK(k_cache.ndim() == 4 && k_cache.dim(2) == layout.n_kv_heads && k_cache.dim(3) == layout.head_dim,
             op, ": k_cache ", k_cache.str(), " must be [blocks, block_size, ", layout.n_kv_heads, ", ",
             layout.head_dim, "]");
  std::vector<int32_t> rows_tmp;
  const int32_t* rows = as_i32(rope_rows, rows_tmp, op, "rope_rows");
  TLLM_CHECK(rope_rows.numel() == T, op, ": rope_rows has ", rope_rows.numel(), " entries for ", T, " tokens");
  const std::vector<int64_t> slots = to_i64(slot_mapping, op, "slot_mapping");
  TLLM_CHECK(static_cast<int64_t>(slots.size()) == T, op, ": slot_mapping has ", slots.size(),
             " entries for ", T, " tokens");
  std::vector<float> qn_tmp, kn_tmp;
  cpu::RopeKvWriteParams p;
  p.qkv = qkv.data<float>();
  p.n_tokens = T;
  p.layout = layout;
  p.q_norm = q_norm.defined() ? as_f32(q_norm, qn_tmp, layout.head_dim, op, "q_norm") : nullptr;
  p.k_norm = k_norm.defined() ? as_f32(k_norm, kn_tmp, layout.head_dim, op, "k_norm") : nullptr;
  p.eps = eps;
  p.rope = rope;
  p.cos_sin = cos_sin.data<float>();
  p.cos_sin_rows = cos_sin.dim(0);
  p.rope_rows = rows;
  p.slot_mapping = slots.data();
  p.k_cache = k_cache.raw();
  p.v_cache = v_cache.raw();
  p.cache_dtype = k_cache.dtype();
  p.num_slots = kv_width == 0 ? 0 : k_cache.numel() / kv_width;
  cpu::qk_norm_rope_kv_write(p, exec());
}

void CpuBackend::attention(Tensor& out, const Tensor& qkv, const QKVLayout& layout, const Tensor& k_cache,
                           const Tensor& v_cache, const AttentionMeta& meta, float scale,
                           int sliding_window) {
  const char* op = "attention";
  check_dtype(qkv, DType::F32, op, "qkv");
  TLLM_CHECK(last_dim(qkv) == layout.row_stride(), op, ": qkv ", qkv.str(), " rows must be ",
             layout.row_stride(), " wide");
  const int64_t T = rows_of(qkv);
  TLLM_CHECK(T == meta.num_tokens, op, ": qkv has ", T, " rows but meta.num_tokens is ", meta.num_tokens);
  check_dtype(out, DType::F32, op, "out");
  TLLM_CHECK(out.numel() == T * layout.n_q_heads * layout.head_dim, op, ": out ", out.str(), " must be [", T,
             ", ", layout.n_q_heads * layout.head_dim, "]");
  check_cpu(k_cache, op, "k_cache");
  check_cpu(v_cache, op, "v_cache");
  TLLM_CHECK(k_cache.dtype() == v_cache.dtype() && k_cache.shape() == v_cache.shape(), op, ": k_cache ",
             k_cache.str(), " and v_cache ", v_cache.str(), " differ");
  TLLM_CHECK(k_cache.ndim() == 4 && k_cache.dim(1) == meta.block_size && k_cache.dim(2) == layout.n_kv_heads &&
                 k_cache.dim(3) == layout.head_dim,
             op, ": k_cache ", k_cache.str(), " must be [blocks, ", meta.block_size, ", ", layout.n_kv_heads,
             ", ", layout.head_dim, "]");
  check_dtype(meta.cu_seqlens_q, DType::I32, op, "cu_seqlens_q");
  check_dtype(meta.seq_lens_k, DType::I32, op, "seq_lens_k");
  check_dtype(meta.block_tables, DType::I32, op, "block_tables");
  TLLM_CHECK(meta.cu_seqlens_q.numel() >= meta.num_seqs + 1 && meta.seq_lens_k.numel() >= meta.num_seqs &&
                 meta.block_tables.numel() >= static_cast<int64_t>(meta.num_seqs) * meta.max_blocks_per_seq,
             op, ": metadata tensors are smaller than num_seqs=", meta.num_seqs, " needs");
  cpu::AttentionParams p;
  p.out = out.data<float>();
  p.q = qkv.data<float>();
  p.q_stride = layout.row_stride();
  p.k_cache = k_cache.raw();
  p.v_cache = v_cache.raw();
  p.cache_dtype = k_cache.dtype();
  p.n_q_heads = layout.n_q_heads;
  p.n_kv_heads = layout.n_kv_heads;
  p.head_dim = layout.head_dim;
  p.num_seqs = meta.num_seqs;
  p.num_tokens = meta.num_tokens;
  p.block_size = meta.block_size;
  p.max_blocks_per_seq = meta.max_blocks_per_seq;
  p.cu_seqlens_q = meta.cu_seqlens_q.data<int32_t>();
  p.seq_lens_k = meta.seq_lens_k.data<int32_t>();
  p.block_tables = meta.block_tables.data<int32_t>();
  p.scale = scale;
  p.sliding_window = sliding_window;
  cpu::validate_attention(p, k_cache.dim(0));
  cpu::attention(p, exec());
}

void CpuBackend::silu_mul(Tensor& out, const Tensor& gate_up) {
  check_dtype(gate_up, DType::F32, "silu_mul", "gate_up");
  check_dtype(out, DType::F32, "silu_mul", "out");
  const int64_t two_i = last_dim(gate_up);
  TLLM_CHECK(two_i % 2 == 0, "silu_mul: gate_up ", gate_up.str(), " has an odd last dimension");
  const int64_t T = rows_of(gate_up), I = two_i / 2;
  TLLM_CHECK(out.numel() == T * I && last_dim(out) == I, "silu_mul: out ", out.str(), " must be [", T, ", ",
             I, "]");
  cpu::silu_mul(out.data<float>(), gate_up.data<float>(), T, I, exec());
}

void CpuBackend::gather_rows(Tensor& out, const Tensor& x, const Tensor& indices) {
  check_cpu(x, "gather_rows", "x");
  check_cpu(out, "gather_rows", "out");
  const std::vector<int64_t> idx = to_i64(indices, "gather_rows", "indices");
  const int64_t rows = x.ndim() == 0 ? 1 : x.dim(0);
  const int64_t row_elems = rows == 0 ? 0 : x.numel() / rows;
  TLLM_CHECK(out.dtype() == x.dtype() && out.numel() == static_cast<int64_t>(idx.size()) * row_elems,
             "gather_rows: out ", out.str(), " must hold ", idx.size(), " rows of x ", x.str());
  for (size_t i = 0; i < idx.size(); ++i)
    TLLM_CHECK_ARG(idx[i] >= 0 && idx[i] < rows, "gather_rows: index ", idx[i], " at ", i, " outside [0, ",
                   rows, ")");
  cpu::gather_rows(out.raw(), x.raw(), static_cast<int64_t>(dtype_nbytes(x.dtype(), row_elems)), idx.data(),
                   static_cast<int64_t>(idx.size()), exec());
}

SampleResult CpuBackend::sample(const Tensor& logits, const SampleBatch& batch) {
  check_dtype(logits, DType::F32, "sample", "logits");
  return cpu::sample(logits.data<float>(), rows_of(logits), last_dim(logits), batch, exec());
}

Tensor CpuBackend::log_softmax_to_host(const Tensor& logits) {
  check_dtype(logits, DType::F32, "log_softmax_to_host", "logits");
  Tensor out = Tensor::empty(logits.shape(), DType::F32);
  cpu::log_softmax(out.data<float>(), logits.data<float>(), rows_of(logits), last_dim(logits), exec());
  return out;
}

std::unique_ptr<CpuBackend> make_cpu_backend_isa(const CpuBackendOptions& opts, cpu::Isa isa) {
  return std::make_unique<CpuBackend>(opts, isa);
}

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& opts) {
  return std::make_unique<CpuBackend>(opts, cpu::best_isa());
}

}  // namespace tllm
