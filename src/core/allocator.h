// Memory that tensors live in. Host memory is 64-byte aligned (AVX-512 loads); device
// allocators (CUDA caching allocator) implement the same interface in their backend.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tllm {

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual Device device() const = 0;
};

// Aligned host memory. Stateless, so one shared instance is fine (it is not forward state).
Allocator& host_allocator();

// Large requests (>= 8 MiB: weights, the KV cache, big workspaces) are first checked against
// host_memory_available(): one the machine cannot hold throws HostOutOfMemory naming both
// sizes, where the kernel would otherwise grant it (overcommit) and kill the process with
// SIGKILL once its pages are touched. Smaller ones (from 64 KiB) are counted, and every
// 64 MiB of them the memory left is checked the same way.
void* aligned_host_alloc(size_t bytes, size_t alignment = 64);
void aligned_host_free(void* p);

// Hands host memory that was freed back to the operating system. glibc keeps freed blocks
// below its (adaptive, up to 32 MB) mmap threshold in the heap, and a model load that frees
// gigabytes of such transients (per-expert weights, f32 copies before quantizing) between
// long-lived allocations otherwise keeps them resident: Qwen1.5-MoE-A2.7B quantized on load
// to ~8 GB of int4 peaked above 24 GB. The loader calls this after each layer. No-op where
// the C library has no such call.
void release_free_host_memory();

// Bytes this process can still allocate and touch: the kernel's MemAvailable, lowered to
// what a cgroup v2 memory.max leaves (a container's limit), plus the free blocks the C
// library holds for reuse. SIZE_MAX where none of it can be read.
size_t host_memory_available();
// Kept free beside the large allocations checked against it: the small ones it does not see.
constexpr size_t kHostMemoryReserve = size_t{256} << 20;
// host_memory_available() less that reserve.
inline size_t host_memory_usable() {
  const size_t a = host_memory_available();
  return a > kHostMemoryReserve ? a - kHostMemoryReserve : 0;
}

}  // namespace tllm
