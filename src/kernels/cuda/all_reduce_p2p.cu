#include "kernels/cuda/all_reduce_p2p.h"

#include "kernels/cuda/cuda_common.cuh"

namespace tllm::cuda {

namespace {

constexpr int kMaxRanks = 8;
constexpr int kThreads = 1024;

struct P2pArgs {
  void* buf[kMaxRanks];         // rank r's staging buffer: two slots of `slot_bytes`
  unsigned* flags[kMaxRanks];   // rank r's flags: flags[r][p] = the last epoch rank p announced to r
  unsigned* epoch;              // this rank's call counter
  void* data;
  int64_t n;
  int64_t slot_bytes;
  int rank, ranks;
};

__device__ __forceinline__ void store_release_sys(unsigned* p, unsigned v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned load_acquire_sys(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// A peer's element, never from a stale cache line (ld.global.cv).
template <typename T>
__device__ __forceinline__ float load_cv(const T* p) {
  if constexpr (std::is_same_v<T, float>) return __ldcv(p);
  else return __bfloat162float(__ushort_as_bfloat16(__ldcv(reinterpret_cast<const unsigned short*>(p))));
}
template <typename T>
__device__ __forceinline__ T from_f(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else return __float2bfloat16(v);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) p2p_all_reduce_kernel(P2pArgs a) {
  __shared__ unsigned epoch_s;
  if (threadIdx.x == 0) epoch_s = *a.epoch + 1;
  __syncthreads();
  const unsigned e = epoch_s;
  const int64_t slot = (e & 1) * a.slot_bytes;
  T* data = static_cast<T*>(a.data);
  T* mine = reinterpret_cast<T*>(static_cast<char*>(a.buf[a.rank]) + slot);
  for (int64_t i = threadIdx.x; i < a.n; i += kThreads) mine[i] = data[i];
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence_system();
    for (int p = 0; p < a.ranks; ++p)
      if (p != a.rank) store_release_sys(a.flags[p] + a.rank, e);
    for (int p = 0; p < a.ranks; ++p)
      if (p != a.rank)
        while (load_acquire_sys(a.flags[a.rank] + p) < e) {
        }
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < a.n; i += kThreads) {
    float s = 0.0f;
    for (int r = 0; r < a.ranks; ++r) {
      const T* b = reinterpret_cast<const T*>(static_cast<const char*>(a.buf[r]) + slot);
      s += load_cv(b + i);
    }
    data[i] = from_f<T>(s);
  }
  if (threadIdx.x == 0) *a.epoch = e;
}

}  // namespace

struct P2pAllReduce::Shared {
  std::vector<int> devices;
  size_t capacity = 0;
  std::vector<void*> bufs;
  std::vector<unsigned*> flags;
  std::vector<unsigned*> epochs;
  ~Shared() {
    int prev = 0;
    cudaGetDevice(&prev);
    for (size_t r = 0; r < devices.size(); ++r) {
      cudaSetDevice(devices[r]);
      if (r < bufs.size() && bufs[r]) cudaFree(bufs[r]);
      if (r < flags.size() && flags[r]) cudaFree(flags[r]);
      if (r < epochs.size() && epochs[r]) cudaFree(epochs[r]);
    }
    cudaSetDevice(prev);
  }
};

std::vector<std::unique_ptr<P2pAllReduce>> P2pAllReduce::create(const std::vector<int>& devices,
                                                                size_t capacity_bytes) {
  const int n = static_cast<int>(devices.size());
  TLLM_CHECK(n >= 1 && n <= kMaxRanks, "p2p all-reduce: 1 to ", kMaxRanks, " ranks, got ", n);
  int prev = 0;
  CUDA_CHECK(cudaGetDevice(&prev));
  auto s = std::make_shared<Shared>();
  s->devices = devices;
  s->capacity = (capacity_bytes + 255) / 256 * 256;
  for (int r = 0; r < n; ++r) {
    CUDA_CHECK(cudaSetDevice(devices[r]));
    for (int p = 0; p < n; ++p) {
      if (devices[p] == devices[r]) continue;
      int can = 0;
      CUDA_CHECK(cudaDeviceCanAccessPeer(&can, devices[r], devices[p]));
      TLLM_CHECK_ARG(can, "GPU ", devices[r], " cannot access GPU ", devices[p],
                     "'s memory (no peer access): use NCCL alone (TLLM_TP_P2P_KB=0)");
      const cudaError_t err = cudaDeviceEnablePeerAccess(devices[p], 0);
      if (err == cudaErrorPeerAccessAlreadyEnabled) cudaGetLastError();
      else CUDA_CHECK(err);
    }
    void* buf = nullptr;
    unsigned *flags = nullptr, *epoch = nullptr;
    CUDA_CHECK(cudaMalloc(&buf, 2 * s->capacity));
    CUDA_CHECK(cudaMalloc(&flags, kMaxRanks * sizeof(unsigned)));
    CUDA_CHECK(cudaMalloc(&epoch, sizeof(unsigned)));
    CUDA_CHECK(cudaMemset(flags, 0, kMaxRanks * sizeof(unsigned)));
    CUDA_CHECK(cudaMemset(epoch, 0, sizeof(unsigned)));
    CUDA_CHECK(cudaDeviceSynchronize());
    s->bufs.push_back(buf);
    s->flags.push_back(flags);
    s->epochs.push_back(epoch);
  }
  CUDA_CHECK(cudaSetDevice(prev));
  std::vector<std::unique_ptr<P2pAllReduce>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::unique_ptr<P2pAllReduce>(new P2pAllReduce(s, r)));
  return out;
}

P2pAllReduce::~P2pAllReduce() = default;

bool P2pAllReduce::fits(const Tensor& t) const {
  return (t.dtype() == DType::F32 || t.dtype() == DType::BF16) && t.nbytes() <= s_->capacity;
}

void P2pAllReduce::run(Tensor& t, cudaStream_t stream) {
  TLLM_CHECK(fits(t) && t.device() == Device::CUDA, "p2p all-reduce of ", t.str(), ": f32 or bf16 on the GPU, up to ",
             s_->capacity, " bytes");
  P2pArgs a{};
  const int n = static_cast<int>(s_->devices.size());
  for (int r = 0; r < n; ++r) {
    a.buf[r] = s_->bufs[r];
    a.flags[r] = s_->flags[r];
  }
  a.epoch = s_->epochs[rank_];
  a.data = t.raw();
  a.n = t.numel();
  a.slot_bytes = static_cast<int64_t>(s_->capacity);
  a.rank = rank_;
  a.ranks = n;
  if (t.dtype() == DType::F32) p2p_all_reduce_kernel<float><<<1, kThreads, 0, stream>>>(a);
  else p2p_all_reduce_kernel<__nv_bfloat16><<<1, kThreads, 0, stream>>>(a);
  CUDA_CHECK_LAUNCH("p2p_all_reduce");
}

}  // namespace tllm::cuda
