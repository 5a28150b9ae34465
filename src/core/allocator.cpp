#include "core/allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
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

namespace {

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(bytes) / (1u << 30));
  return buf;
}

// The first line of a file as a number of bytes; nullopt-like SIZE_MAX where it is missing or
// not a number ("max": no limit).
size_t read_bytes(const char* path) {
  std::ifstream f(path);
  std::string v;
  if (!(f >> v) || v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
    return std::numeric_limits<size_t>::max();
  return static_cast<size_t>(std::stoull(v));
}

// The value of `key` in a cgroup's memory.stat (bytes), or 0.
size_t stat_bytes(const std::string& path, const char* key) {
  std::ifstream f(path);
  std::string k;
  size_t v = 0;
  while (f >> k >> v)
    if (k == key) return v;
  return 0;
}

}  // namespace

size_t host_memory_available() {
  constexpr size_t kUnknown = std::numeric_limits<size_t>::max();
  size_t avail = kUnknown;
#if defined(__linux__)
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  size_t kib = 0;
  while (meminfo >> key >> kib) {
    std::getline(meminfo, unit);
    if (key == "MemAvailable:") {
      avail = kib * 1024;
      break;
    }
  }
  // The memory limit of this process's cgroup: v2 ("0::PATH": memory.max / memory.current)
  // or v1 ("N:memory:PATH": memory.limit_in_bytes / memory.usage_in_bytes; "max" or a
  // near-2^63 value where there is none). Inside a cgroup namespace PATH is "/". The usage
  // counts the page cache; its inactive file pages are reclaimed first, so they are not
  // counted as used (as `docker stats` computes it).
  auto limit_left = [&](const std::string& dir, const char* max_file, const char* used_file, const char* inactive) {
    const size_t limit = read_bytes((dir + max_file).c_str()), usage = read_bytes((dir + used_file).c_str());
    if (limit == kUnknown || usage == kUnknown || limit >= (size_t{1} << 62)) return;
    const size_t cache = stat_bytes(dir + "/memory.stat", inactive), used = usage > cache ? usage - cache : 0;
    avail = std::min(avail, limit > used ? limit - used : 0);
  };
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) == 0) {
      limit_left("/sys/fs/cgroup" + line.substr(3), "/memory.max", "/memory.current", "inactive_file");
    } else if (const size_t at = line.find(":memory:"); at != std::string::npos) {
      limit_left("/sys/fs/cgroup/memory" + line.substr(at + 8), "/memory.limit_in_bytes", "/memory.usage_in_bytes",
                 "total_inactive_file");
    }
  }
#endif
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 mi = mallinfo2();
  if (avail != kUnknown) avail += mi.fordblks;  // freed blocks malloc reuses first
  // Test hook: this process alone on a machine of this many bytes (what malloc holds for it,
  // in the heap and in its own mappings, is what is gone).
  if (const char* cap = std::getenv("TINYLLM_DEBUG_HOST_MEMORY")) {
    const size_t machine = std::strtoull(cap, nullptr, 10), used = mi.uordblks + mi.hblkhd;
    avail = std::min(avail, machine > used ? machine - used : 0);
  }
#endif
  return avail;
}

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
  if (huge) {
    const size_t usable = host_memory_usable();
    if (rounded > usable)
      throw HostOutOfMemory(detail::concat("out of host memory: ", gib(rounded), " requested, ", gib(usable),
                                           " available (MemAvailable or the cgroup's limit, less ",
                                           kHostMemoryReserve >> 20, " MiB kept free)"));
  } else if (bytes >= (size_t{64} << 10)) {
    // Smaller buffers add up too (norms, biases, a small model's layers, the transients of a
    // load): after every 64 MiB of them the memory left is read, and with less than half the
    // reserve left the request is refused. The count is the process's, as malloc's own
    // bookkeeping is.
    static std::atomic<size_t> since_check{0};
    constexpr size_t kEvery = size_t{64} << 20;
    if (since_check.fetch_add(rounded, std::memory_order_relaxed) + rounded >= kEvery) {
      since_check.store(0, std::memory_order_relaxed);
      const size_t avail = host_memory_available();
      if (avail < kHostMemoryReserve / 2)
        throw HostOutOfMemory(detail::concat("out of host memory: ", gib(avail),
                                             " left (MemAvailable or the cgroup's limit)"));
    }
  }
  void* p = std::aligned_alloc(alignment, rounded);
  if (p == nullptr) throw HostOutOfMemory(detail::concat("out of host memory: allocating ", bytes, " bytes failed"));
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
