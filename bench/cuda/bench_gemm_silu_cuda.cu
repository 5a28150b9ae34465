// Prefill's MLP first half at the Qwen2.5 shapes: cuBLASLt gate|up then silu_mul (the unfused
// path), cuBLASLt gate|up alone, and gemm_silu_sm90 (the activation in the GEMM's epilogue),
// against a cuBLASLt bf16 8192^3 GEMM measured here. FLOPs: 2 T (2I) K. Each fused output is
// compared with the unfused one (max |diff|, mean |diff|).
// Usage: bench_gemm_silu_cuda [--quick]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "bench_timing.h"

using namespace tllm;
using tllm::cuda::bf16;
using tllm::bench::rand_bf16;
using tllm::bench::to_host_f32;

namespace {

struct MlpShape {
  const char* name;
  int H, I;
};

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to benchmark\n");
    return 0;
  }
  cuda::CudaBackend be(CudaBackendOptions{});
  cudaStream_t s = be.stream();
  std::printf("device: %s, %d SMs\n", be.name().c_str(), be.num_sms());
  if (!cuda::sm90a_available()) {
    std::printf("no sm_90 device or no sm_90a code in this build: nothing to compare\n");
    return 0;
  }
  auto time = [&](const std::function<void()>& fn) { return bench::time_us(s, [&](int) { fn(); }, 3, 9, 2); };

  const double peak = bench::gemm_peak_tflops(be);

  const MlpShape shapes[] = {{"7B", 3584, 18944}, {"1.5B", 1536, 8960}, {"0.5B", 896, 4864}};
  const std::vector<int> lengths = quick ? std::vector<int>{512, 4096} : std::vector<int>{256, 512, 1024, 2048, 4096};
  for (const MlpShape& sh : shapes) {
    if (quick && std::strcmp(sh.name, "1.5B") == 0) continue;
    LinearWeight w;
    w.weight = rand_bf16(be, {2 * sh.I, sh.H}, 3, 2.0f / std::sqrt(float(sh.H)));
    for (int T : lengths) {
      Tensor x = rand_bf16(be, {T, sh.H}, 4 + T, 2.0f);
      Tensor gu = be.empty({T, 2 * sh.I}, DType::BF16);
      Tensor a_ref = be.empty({T, sh.I}, DType::BF16), a = be.empty({T, sh.I}, DType::BF16);
      const double flop = 2.0 * T * 2.0 * sh.I * sh.H;
      const double gemm_us = time([&] { be.linear_cublas(gu, x, w); });
      const double unfused_us = time([&] {
        be.linear_cublas(gu, x, w);
        be.silu_mul(a_ref, gu);
      });
      const double fused_us = time([&] {
        cuda::gemm_silu_sm90(a.data<bf16>(), x.data<bf16>(), w.weight.data<bf16>(), T, sh.I, sh.H, be.num_sms(), s);
      });
      const std::vector<float> r = to_host_f32(be, a_ref), f = to_host_f32(be, a);
      double max_diff = 0, sum_diff = 0, sum_ref = 0;
      for (size_t i = 0; i < r.size(); ++i) {
        const double d = std::fabs(double(r[i]) - f[i]);
        max_diff = std::isnan(d) ? INFINITY : std::max(max_diff, d);
        sum_diff += d;
        sum_ref += std::fabs(r[i]);
      }
      auto tf = [&](double us) { return flop / us / 1e6; };
      std::printf(
          "mlp1 %-5s T=%-5d cublas gate|up %8.1f us (%5.1f TFLOP/s) | + silu_mul %8.1f us (%5.1f%% of peak) | "
          "fused %8.1f us (%5.1f%% of peak)  x%.3f  max|diff| %.3g  mean|diff|/mean|ref| %.2e\n",
          sh.name, T, gemm_us, tf(gemm_us), unfused_us, 100.0 * tf(unfused_us) / peak, fused_us,
          100.0 * tf(fused_us) / peak, unfused_us / fused_us, max_diff, sum_diff / std::max(sum_ref, 1e-30));
    }
  }
  return 0;
}
