#include "core/allocator.h"

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <new>

#include "core/error.h"

namespace tllm {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

void* aligned_host_alloc(size_t bytes, size_t alignment) {
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  if (rounded == 0) rounded = alignment;
  void* p = std::aligned_alloc(alignment, rounded);
  TLLM_CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
  return p;
}

void aligned_host_free(void* p) { std::free(p); }

void release_free_host_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

namespace {
class HostAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override { return aligned_host_alloc(bytes); }
  void deallocate(void* ptr, size_t) override { aligned_host_free(ptr); }
  Device device() const override { return Device::CPU; }
};
}  // namespace

Allocator& host_allocator() {
  static HostAllocator a;
  return a;
}

}  // namespace tllm
