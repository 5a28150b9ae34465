// CudaBackend's quantized-weight ops: packing into the CUDA layout (kernels/quant_layout.h)
// and uploading; linear() for quantized weights picks
//   T <= 16:                  quant_gemv (streams the packed weights: decode)
//   16 < T < kDequantTokens:  quant_gemm (fused: codes and activations in shared memory, mma)
//   T >= kDequantTokens:      dequantize the weight to bf16 once, then cuBLASLt (prefill:
//                             the GEMM is compute bound and the bf16 copy costs ~2.5 bytes
//                             per weight against ~2 T flops)
// TLLM_QUANT_GEMM=fused|dequant forces one of the two large-batch paths (benchmarks).
// linear_silu_mul and linear_residual_norm at T <= 8 (the norm at T <= 4) take quant_gemv
// with its epilogue fused (linear_quantized_fused), as the dense skinny GEMM does, and so
// does linear_rope_kv_write without q/k norms at T <= 8 (linear_quantized_rope).
#include <cstdlib>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/quant_ops.h"
#include "kernels/quant_layout.h"

namespace tllm::cuda {

namespace {

constexpr int kDequantTokens = 512;
constexpr size_t kMaxDequantScratch = size_t{640} << 20;  // larger weights (big lm_heads) use the fused GEMM

int forced_large_path() {
  const char* e = std::getenv("TLLM_QUANT_GEMM");
  if (!e || !*e || std::strcmp(e, "auto") == 0) return 0;
  if (std::strcmp(e, "fused") == 0) return 2;
  if (std::strcmp(e, "dequant") == 0) return 3;
  TLLM_THROW("TLLM_QUANT_GEMM=", e, " is not supported (auto, fused, dequant)");
}

// quant_params(w) for out [T, N] = x [T, K] w^T (+ w's bias).
QuantGemmParams linear_params(const LinearWeight& w, const Tensor& x, int64_t T, Tensor& out) {
  QuantGemmParams p = quant_params(w);
  p.x = x.data<bf16>();
  p.T = static_cast<int>(T);
  p.out = out.raw();
  p.out_dtype = out.dtype();
  p.bias = w.bias.defined() ? w.bias.raw() : nullptr;
  p.bias_dtype = w.bias.defined() ? w.bias.dtype() : DType::F32;
  return p;
}

// Tokens of x where a decode-path epilogue of quant_gemv may take x @ w^T: bf16 x on the GPU
// with w's in_features per row, w's bias (if any) one value per output; 0 where not.
int64_t decode_tokens(const Tensor& x, const LinearWeight& w) {
  if (!x.defined() || x.device() != Device::CUDA || x.dtype() != DType::BF16 || x.ndim() < 1 ||
      x.dim(-1) != w.in_features || (w.bias.defined() && w.bias.numel() != w.out_features))
    return 0;
  return x.numel() / w.in_features;
}

}  // namespace

QuantGemmParams quant_params(const LinearWeight& w) {
  QuantGemmParams p;
  p.bits = w.quant_bits();
  p.N = static_cast<int>(w.out_features);
  p.K = static_cast<int>(w.in_features);
  p.groups = static_cast<int>(w.scales.dim(1));
  p.group_size = w.group_size >= w.in_features ? static_cast<int>(w.in_features) : w.group_size;
  const int tile = p.bits == 4 ? 128 : 64;
  p.ktiles = (p.K + tile - 1) / tile;
  p.codes = static_cast<const uint8_t*>(w.weight.raw());
  p.scales = w.scales.raw();
  p.offsets = w.zeros.defined() ? w.zeros.raw() : nullptr;  // FP8: none
  p.scales_f16 = w.scales.dtype() == DType::F16;
  p.fp8 = w.quant == QuantScheme::Fp8E4M3;
  return p;
}

void check_quant_packed(const LinearWeight& w, const char* op) {
  TLLM_CHECK(w.quant != QuantScheme::None, op, ": weight is not quantized");
  const bool fp8 = w.quant == QuantScheme::Fp8E4M3;  // no offsets
  for (const Tensor* t : {&w.weight, &w.scales, &w.zeros})
    TLLM_CHECK((fp8 && t == &w.zeros) ? !t->defined() : t->defined() && t->device() == Device::CUDA, op,
               ": quantized weight tensors must be on the GPU (pack with the CUDA backend)");
  const int bits = w.quant_bits();
  const int64_t N = w.out_features, K = w.in_features;
  const int64_t rb = quant::row_bytes(quant::Layout::Cuda, bits, K);
  TLLM_CHECK(w.weight.dtype() == DType::U8 && w.weight.ndim() == 2 && w.weight.dim(1) == rb &&
                 w.weight.dim(0) >= quant::padded_rows(N),
             op, ": codes ", w.weight.str(), " are not in the CUDA layout for [", N, ", ", K, "] ", bits, "-bit");
  TLLM_CHECK((w.scales.dtype() == DType::F16 || w.scales.dtype() == DType::F32) &&
                 (fp8 || (w.zeros.dtype() == w.scales.dtype() && w.zeros.shape() == w.scales.shape())) &&
                 w.scales.ndim() == 2 && w.scales.dim(0) >= quant::padded_rows(N),
             op, ": scales ", w.scales.str(), " / offsets ", fp8 ? std::string("(none: FP8)") : w.zeros.str(),
             " do not match the weight");
  TLLM_CHECK(N < (1ll << 31) && K < (1ll << 31), op, ": shape too large");
}

LinearWeight CudaBackend::pack_quantized(const QuantizedMatrix& m, bool) {
  const std::string why = quant_unsupported_reason(m.bits, m.cols, m.group_size, m.groups());
  TLLM_CHECK(why.empty(), "quantized weight [", m.rows, ", ", m.cols, "] on CUDA: ", why);
  ThreadPool pool(0);
  const LinearWeight h = quant::pack(m, quant::Layout::Cuda, &pool);
  LinearWeight d = h;
  d.weight = upload(h.weight, h.weight.dtype());
  d.scales = upload(h.scales, h.scales.dtype());
  if (h.zeros.defined()) d.zeros = upload(h.zeros, h.zeros.dtype());  // FP8: none
  synchronize();  // the host tensors go away with h
  // Size the prefill scratch now, before the KV cache is sized from the free memory.
  const size_t bytes = static_cast<size_t>(quant::padded_rows(m.rows)) * static_cast<size_t>(m.cols) * 2;
  if (bytes <= kMaxDequantScratch && bytes > quant_ws_bytes_) {
    quant_ws_.get(bytes);
    quant_ws_bytes_ = bytes;
  }
  return d;
}

void CudaBackend::linear_quantized(Tensor& out, const Tensor& x, const LinearWeight& w, int path) {
  const char* op = "linear";
  check_quant_packed(w, op);
  const int64_t N = w.out_features, K = w.in_features;
  TLLM_CHECK(x.defined() && x.device() == Device::CUDA && x.dtype() == DType::BF16, op, ": x ", x.str(),
             " must be bf16 on the GPU");
  TLLM_CHECK(x.ndim() >= 1 && x.dim(-1) == K, op, ": x ", x.str(), " does not match the quantized weight [", N, ", ",
             K, "]");
  const int64_t T = x.numel() / K;
  TLLM_CHECK(out.defined() && out.device() == Device::CUDA && (out.dtype() == DType::BF16 || out.dtype() == DType::F32) &&
                 out.numel() == T * N,
             op, ": out ", out.str(), " must be bf16 or f32 [", T, ", ", N, "]");
  if (w.bias.defined())
    TLLM_CHECK(w.bias.device() == Device::CUDA && w.bias.numel() == N &&
                   (w.bias.dtype() == DType::F32 || w.bias.dtype() == DType::BF16),
               op, ": bias ", w.bias.str(), " must be f32 or bf16 [", N, "] on the GPU");
  if (T == 0) return;
  QuantGemmParams p = linear_params(w, x, T, out);

  if (path == 0) {
    if (T <= kQuantGemvMaxTokens) {
      path = 1;
    } else {
      path = forced_large_path();
      if (path == 0) path = T >= kDequantTokens ? 3 : 2;
    }
  }
  if (path == 3) {
    const size_t bytes = static_cast<size_t>(N) * static_cast<size_t>(K) * 2;
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(stream_, &st));
    // Inside a graph capture the scratch cannot grow: use it only if it is large enough.
    if (bytes > kMaxDequantScratch || (st != cudaStreamCaptureStatusNone && bytes > quant_ws_bytes_)) path = 2;
  }
  if (path == 1) {
    TLLM_CHECK(T <= kQuantGemvMaxTokens, op, ": the skinny path takes at most ", kQuantGemvMaxTokens, " tokens");
    quant_gemv(p, stream_);
  } else if (path == 2) {
    quant_gemm(p, stream_);
  } else {
    const size_t bytes = static_cast<size_t>(N) * static_cast<size_t>(K) * 2;
    if (bytes > quant_ws_bytes_) quant_ws_bytes_ = bytes;
    bf16* wb = static_cast<bf16*>(quant_ws_.get(quant_ws_bytes_));
    quant_dequantize(p, wb, stream_);
    lt_->run(out.raw(), out.dtype(), x.data<bf16>(), wb, p.bias, p.bias_dtype, static_cast<int>(T), static_cast<int>(N),
             static_cast<int>(K), stream_);
  }
}

bool CudaBackend::linear_quantized_fused(Tensor& out, const Tensor& x, const LinearWeight& w, const ResidualNorm* rn) {
  // Up to one 8-token MMA tile, as the dense skinny GEMM's epilogues (gemv.cu).
  const int64_t N = w.out_features, K = w.in_features, T = decode_tokens(x, w);
  if (T < 1 || T > 8 || !out.defined() || out.device() != Device::CUDA || out.dtype() != DType::BF16) return false;
  check_quant_packed(w, "linear");
  QuantGemmParams p = linear_params(w, x, T, out);  // out is bf16 (checked above)
  if (rn) {
    if (out.numel() != T * N || !fused_norm_args(out, *rn, T, K, p.norm, true)) return false;
  } else {
    if (N % 32 != 0 || out.numel() != T * (N / 2)) return false;
    p.silu = true;
  }
  if (quant_gemv_choice(p).gemm) return false;
  quant_gemv(p, stream_);
  return true;
}

bool CudaBackend::quantized_rope_fusable(const Tensor& x, const LinearWeight& w, const QKVLayout& L) const {
  const int64_t T = decode_tokens(x, w);
  if (w.out_features != L.row_stride() ||
      !cuda::quant_gemv_rope_supported(static_cast<int>(T), L.n_q_heads, L.n_kv_heads, L.head_dim))
    return false;
  check_quant_packed(w, "linear_rope_kv_write");
  QuantGemmParams p = quant_params(w);
  p.T = static_cast<int>(T);
  p.out_dtype = DType::BF16;
  p.rope_kv = true;
  return !quant_gemv_choice(p).gemm;
}

void CudaBackend::linear_quantized_rope(Tensor& qkv, const Tensor& x, const LinearWeight& w, const QkNormRopeParams& r) {
  const int64_t T = x.numel() / w.in_features;
  TLLM_CHECK(qkv.numel() == T * w.out_features, "linear_rope_kv_write: qkv ", qkv.str(), " is not [", T, ", ",
             w.out_features, "]");
  QuantGemmParams p = linear_params(w, x, T, qkv);
  p.rope_kv = true;
  p.rope = r;
  quant_gemv(p, stream_);
}

void CudaBackend::embedding_quantized(Tensor& out, const LinearWeight& table, const Tensor& tokens) {
  check_quant_packed(table, "embedding");
  TLLM_CHECK(tokens.defined() && tokens.device() == Device::CUDA && tokens.dtype() == DType::I32,
             "embedding: tokens ", tokens.str(), " must be i32 on the GPU");
  const int64_t T = tokens.numel(), H = table.in_features;
  TLLM_CHECK(out.defined() && out.device() == Device::CUDA && (out.dtype() == DType::BF16 || out.dtype() == DType::F32) &&
                 out.numel() == T * H,
             "embedding: out ", out.str(), " must be bf16 or f32 [", T, ", ", H, "]");
  QuantGemmParams p = quant_params(table);
  quant_embedding(p, tokens.data<int32_t>(), static_cast<int>(T), out.raw(), out.dtype(), stream_);
}

}  // namespace tllm::cuda
