#include "kernels/cuda/device_allocator.h"

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "core/error.h"

namespace tllm::cuda {

DeviceCachingAllocator& DeviceCachingAllocator::for_device(int device) {
  static std::mutex mu;
  static std::vector<DeviceCachingAllocator*> all;  // intentionally leaked (see header)
  std::lock_guard<std::mutex> lock(mu);
  if (static_cast<int>(all.size()) <= device) all.resize(device + 1, nullptr);
  if (!all[device]) all[device] = new DeviceCachingAllocator(device);
  return *all[device];
}

size_t DeviceCachingAllocator::round_size(size_t bytes) {
  auto up = [](size_t x, size_t m) { return (x + m - 1) / m * m; };
  if (bytes == 0) return 512;
  if (bytes < (1u << 20)) return up(bytes, 512);
  if (bytes < (64u << 20)) return up(bytes, 64u << 10);
  return up(bytes, 2u << 20);
}

void* DeviceCachingAllocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  // Best fit among cached blocks, wasting at most a quarter.
  auto it = free_.lower_bound(size);
  if (it != free_.end() && it->first <= size + size / 4) {
    void* p = it->second;
    const size_t got = it->first;
    free_.erase(it);
    in_use_[p] = got;
    stats_.cached_bytes -= got;
    stats_.in_use_bytes += got;
    return p;
  }
  int prev = 0;
  cudaGetDevice(&prev);
  if (prev != device_) cudaSetDevice(device_);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation && !free_.empty()) {
    cudaGetLastError();
    release_cached_locked();
    err = cudaMalloc(&p, size);
  }
  if (prev != device_) cudaSetDevice(prev);
  if (err != cudaSuccess) {
    cudaGetLastError();
    TLLM_THROW("out of GPU memory on cuda:", device_, ": allocating ", bytes, " bytes failed (",
               cudaGetErrorString(err), "); in use by tensors: ", stats_.in_use_bytes >> 20, " MiB");
  }
  ++stats_.num_device_mallocs;
  in_use_[p] = size;
  stats_.in_use_bytes += size;
  return p;
}

void DeviceCachingAllocator::deallocate(void* ptr, size_t) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end()) return;  // not ours; never free foreign memory
  const size_t size = it->second;
  in_use_.erase(it);
  free_.emplace(size, ptr);
  stats_.in_use_bytes -= size;
  stats_.cached_bytes += size;
}

void DeviceCachingAllocator::release_cached_locked() {
  if (free_.empty()) return;
  cudaDeviceSynchronize();  // a cached block may still be read by queued work
  for (auto& [size, p] : free_) cudaFree(p);
  free_.clear();
  stats_.cached_bytes = 0;
}

void DeviceCachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

DeviceCachingAllocator::Stats DeviceCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace tllm::cuda
