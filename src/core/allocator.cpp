#include "core/allocator.h"

#include <algorithm>
#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <new>

#include "core/error.h"

namespace tllm {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

void* aligned_host_alloc(size_t bytes, size_t alignment) {
  // Large buffers (weights, the CPU KV cache, big workspaces) on 2 MiB pages where the kernel
  // gives them on request (transparent huge pages in "madvise" mode, the Debian default): a
  // decode step streams every weight once, and on 4 KiB pages the hardware prefetchers stop
  // at each page boundary and every page costs a TLB walk. The advice goes before the first
  // touch, so the pages are huge from their first fault; where it is refused, nothing changes.
  constexpr size_t kHugePage = size_t{2} << 20;
  const bool huge = bytes >= 4 * kHugePage;
  if (huge) alignment = std::max(alignment, kHugePage);
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  if (rounded == 0) rounded = alignment;
  void* p = std::aligned_alloc(alignment, rounded);
  TLLM_CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge) madvise(p, rounded, MADV_HUGEPAGE);
#endif
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
