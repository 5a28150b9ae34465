#include "dist/nccl_collective.h"

#ifdef TLLM_HAVE_CUDA
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <mutex>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"

namespace tllm {

namespace {

// The few NCCL entry points tinyllm uses, from libnccl.so.2 (its ABI is stable across 2.x).
struct Nccl {
  decltype(&ncclCommInitAll) comm_init_all = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;

  static const Nccl& get() {
    static Nccl n;
    static std::once_flag once;
    std::call_once(once, [] {
      void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_GLOBAL);
      if (!lib) lib = dlopen("libnccl.so", RTLD_NOW | RTLD_GLOBAL);
      if (!lib) return;
      n.comm_init_all = reinterpret_cast<decltype(n.comm_init_all)>(dlsym(lib, "ncclCommInitAll"));
      n.comm_destroy = reinterpret_cast<decltype(n.comm_destroy)>(dlsym(lib, "ncclCommDestroy"));
      n.all_reduce = reinterpret_cast<decltype(n.all_reduce)>(dlsym(lib, "ncclAllReduce"));
      n.error_string = reinterpret_cast<decltype(n.error_string)>(dlsym(lib, "ncclGetErrorString"));
    });
    TLLM_CHECK_ARG(n.comm_init_all && n.comm_destroy && n.all_reduce && n.error_string,
                   "tensor parallelism over GPUs needs NCCL: libnccl.so.2 was not found (or lacks ncclCommInitAll / "
                   "ncclAllReduce); install NCCL or put its lib folder on LD_LIBRARY_PATH");
    return n;
  }
  void check(ncclResult_t r, const char* what) const {
    TLLM_CHECK(r == ncclSuccess, "NCCL ", what, " failed: ", error_string(r));
  }
};

// The communicators of one group; destroyed with the last rank's Collective.
struct Comms {
  std::vector<ncclComm_t> comms;
  ~Comms() {
    for (ncclComm_t c : comms)
      if (c) Nccl::get().comm_destroy(c);
  }
};

class NcclRank final : public Collective {
 public:
  NcclRank(std::shared_ptr<Comms> comms, int rank) : comms_(std::move(comms)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(comms_->comms.size()); }
  void bind(cuda::CudaBackend& b) { stream_ = b.stream(); }

  void all_reduce_sum(Tensor& t) override {
    TLLM_CHECK(stream_, "NCCL rank ", rank_, " has no backend bound");
    TLLM_CHECK(t.device() == Device::CUDA, "NCCL all_reduce_sum takes device tensors, got ", t.str());
    ncclDataType_t type = ncclFloat32;
    switch (t.dtype()) {
      case DType::F32: type = ncclFloat32; break;
      case DType::BF16: type = ncclBfloat16; break;
      case DType::F16: type = ncclFloat16; break;
      default: TLLM_THROW("NCCL all_reduce_sum: unsupported dtype in ", t.str());
    }
    const Nccl& n = Nccl::get();
    n.check(n.all_reduce(t.raw(), t.raw(), static_cast<size_t>(t.numel()), type, ncclSum, comms_->comms[rank_], stream_),
            "all_reduce");
  }

 private:
  std::shared_ptr<Comms> comms_;
  int rank_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::vector<std::unique_ptr<Collective>> make_nccl_collectives(const std::vector<int>& devices) {
  const Nccl& n = Nccl::get();
  auto comms = std::make_shared<Comms>();
  comms->comms.resize(devices.size(), nullptr);
  n.check(n.comm_init_all(comms->comms.data(), static_cast<int>(devices.size()), devices.data()), "CommInitAll");
  std::vector<std::unique_ptr<Collective>> out;
  for (size_t r = 0; r < devices.size(); ++r) out.push_back(std::make_unique<NcclRank>(comms, static_cast<int>(r)));
  return out;
}

int visible_gpu_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void bind_nccl_backend(Collective& c, Backend& backend) {
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(&backend);
  TLLM_CHECK(cuda, "tensor parallelism over GPUs: rank ", c.rank(), " runs on ", backend.name(),
             ", not a CUDA backend (TLLM_PROFILE is not supported with tensor parallelism)");
  auto* rank = dynamic_cast<NcclRank*>(&c);
  TLLM_ASSERT(rank);
  const cudaError_t err = cudaSetDevice(cuda->device_index());  // the rank's thread drives its GPU
  TLLM_CHECK(err == cudaSuccess, "cudaSetDevice(", cuda->device_index(), "): ", cudaGetErrorString(err));
  rank->bind(*cuda);
}

}  // namespace tllm

#else  // built without CUDA

#include "core/error.h"

namespace tllm {
std::vector<std::unique_ptr<Collective>> make_nccl_collectives(const std::vector<int>&) {
  TLLM_THROW("this tinyllm was built without CUDA; tensor parallelism over GPUs needs a CUDA build");
}
int visible_gpu_count() { return 0; }
void bind_nccl_backend(Collective&, Backend&) { TLLM_THROW("built without CUDA"); }
}  // namespace tllm

#endif
