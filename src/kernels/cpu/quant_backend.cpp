// CpuBackend's quantized-weight ops: packing into the CPU layout (kernels/quant_layout.h)
// and the checks in front of quant_linear / quant_embedding (quant_ops.h).
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/quant_ops.h"
#include "kernels/quant_layout.h"

namespace tllm {

LinearWeight CpuBackend::pack_quantized(const QuantizedMatrix& m, bool f32_activations) {
  TLLM_CHECK(!m.fp8, "pack_quantized: the CPU backend has no FP8 kernels (FP8 checkpoints are dequantized on load)");
  LinearWeight w = quant::pack(m, quant::Layout::Cpu, &pool_);
  w.f32_activations = f32_activations;
  return w;
}

void CpuBackend::linear_quantized(Tensor& out, const Tensor& x, const LinearWeight& w) {
  const int64_t N = w.out_features, K = w.in_features;
  TLLM_CHECK(x.defined() && x.device() == Device::CPU && x.dtype() == DType::F32, "linear: x ", x.str(),
             " must be f32 on the CPU");
  TLLM_CHECK(x.ndim() >= 1 && x.dim(-1) == K, "linear: x ", x.str(), " does not match the quantized weight [",
             N, ", ", K, "]");
  const int64_t T = x.numel() / K;
  TLLM_CHECK(out.defined() && out.device() == Device::CPU && out.dtype() == DType::F32 && out.numel() == T * N &&
                 out.dim(-1) == N,
             "linear: out ", out.str(), " must be f32 [", T, ", ", N, "]");
  std::vector<float> btmp;
  const float* bias = nullptr;
  if (w.bias.defined()) {
    TLLM_CHECK(w.bias.device() == Device::CPU && w.bias.numel() == N, "linear: bias ", w.bias.str(),
               " must have ", N, " elements");
    if (w.bias.dtype() == DType::F32) {
      bias = w.bias.data<float>();
    } else {
      Tensor b = download(w.bias);
      btmp.assign(b.data<float>(), b.data<float>() + N);
      bias = btmp.data();
    }
  }
  cpu::quant_linear(out.data<float>(), x.data<float>(), T, w, bias, exec());
}

void CpuBackend::embedding_quantized(Tensor& out, const LinearWeight& table, const Tensor& tokens) {
  TLLM_CHECK(tokens.defined() && tokens.device() == Device::CPU &&
                 (tokens.dtype() == DType::I32 || tokens.dtype() == DType::I64),
             "embedding: tokens ", tokens.str(), " must be i32 or i64 on the CPU");
  const int64_t T = tokens.numel(), H = table.in_features;
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i)
    ids[i] = tokens.dtype() == DType::I32 ? tokens.data<int32_t>()[i] : static_cast<int32_t>(tokens.data<int64_t>()[i]);
  TLLM_CHECK(out.defined() && out.device() == Device::CPU && out.dtype() == DType::F32 && out.numel() == T * H,
             "embedding: out ", out.str(), " must be f32 [", T, ", ", H, "]");
  cpu::quant_embedding(out.data<float>(), table, ids.data(), T, exec());
}

}  // namespace tllm
