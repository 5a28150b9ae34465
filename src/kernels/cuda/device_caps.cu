// What the current device can run: PDL launches (sm_90+) and this binary's sm_90a kernels
// (wgmma / TMA), each probed once; the dynamic shared memory a kernel may launch with.
#include <atomic>
#include <map>
#include <mutex>
#include <utility>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {

bool pdl_supported() {
  static const bool ok = [] {
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    return major >= 9;
  }();
  return ok;
}

namespace {
__global__ void sm90a_probe_kernel(int* out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  *out = 1;
#else
  *out = 0;
#endif
}
}  // namespace

// Per device: 0 not probed yet, 1 no, 2 yes. The probe runs once per device, on a stream of
// its own (callers are prefill kernels, never captured in graphs).
bool sm90a_available() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> state[kMaxDevices] = {};
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices) return false;
  const int known = state[dev].load(std::memory_order_acquire);
  if (known != 0) return known == 2;
  int major = 0, minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  bool yes = false;
  if (major == 9 && minor == 0) {
    cudaStream_t s = nullptr;
    int* flag = nullptr;
    int host = 0;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));  // not cudaMallocAsync: not every setup has pools
    sm90a_probe_kernel<<<1, 1, 0, s>>>(flag);
    const cudaError_t launched = cudaGetLastError();  // no sm_90 code in this binary: refused
    if (launched == cudaSuccess) CUDA_CHECK(cudaMemcpyAsync(&host, flag, sizeof(int), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    CUDA_CHECK(cudaFree(flag));
    CUDA_CHECK(cudaStreamDestroy(s));
    yes = launched == cudaSuccess && host == 1;
  }
  state[dev].store(yes ? 2 : 1, std::memory_order_release);
  return yes;
}

void allow_dynamic_smem(const void* kernel, size_t dynamic_bytes) {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  static std::mutex mu;
  static std::map<std::pair<int, const void*>, size_t> limits;  // (device, kernel) -> its limit now
  const std::lock_guard<std::mutex> lock(mu);
  auto it = limits.find({dev, kernel});
  if (it == limits.end()) {
    cudaFuncAttributes a{};
    CUDA_CHECK(cudaFuncGetAttributes(&a, kernel));
    it = limits.emplace(std::make_pair(dev, kernel), static_cast<size_t>(a.maxDynamicSharedSizeBytes)).first;
  }
  if (dynamic_bytes <= it->second) return;
  TLLM_CHECK(dynamic_bytes <= static_cast<size_t>(INT32_MAX), "dynamic shared memory of ", dynamic_bytes, " bytes");
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_bytes)));
  it->second = dynamic_bytes;
}

}  // namespace tllm::cuda
