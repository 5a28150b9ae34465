// Caching allocator for device memory: size-classed free lists, so the steady state of the
// engine (the same activation shapes every step) never calls cudaMalloc / cudaFree.
// One per device, created on first use and never destroyed, so tensors that outlive their
// backend can still hand their memory back. All work is on one stream per backend, so a
// block freed on the host may be reused by the next op at once: stream order keeps the old
// reader ahead of the new writer.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/allocator.h"

namespace tllm::cuda {

class DeviceCachingAllocator final : public Allocator {
 public:
  static DeviceCachingAllocator& for_device(int device);

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  Device device() const override { return Device::CUDA; }

  // Returns cached (free) blocks to the driver.
  void release_cached();

  struct Stats {
    size_t in_use_bytes = 0;
    size_t cached_bytes = 0;
    size_t num_device_mallocs = 0;
  };
  Stats stats() const;

  // Size a request is rounded up to (its size class).
  static size_t round_size(size_t bytes);

 private:
  explicit DeviceCachingAllocator(int device) : device_(device) {}
  void release_cached_locked();

  int device_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;           // size class -> block
  std::unordered_map<void*, size_t> in_use_;    // block -> size class
  Stats stats_;
};

}  // namespace tllm::cuda
