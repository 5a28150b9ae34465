// Host memory handed back to the operating system (core/allocator.h). glibc keeps freed
// blocks below its adaptive mmap threshold in the heap; a model load frees gigabytes of such
// transients between long-lived allocations, so the loader calls release_free_host_memory()
// after each layer (a Qwen1.5-MoE-A2.7B int4 load stayed at 10.7 GB resident for 3.2 GB of
// weights without it).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"

namespace tllm {
namespace {

// Resident set of this process in kB (Linux), or -1.
long resident_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST(HostMemory, FreedHeapBlocksGoBackToTheSystem) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "release_free_host_memory is a no-op without glibc";
#else
  if (resident_kb() < 0) GTEST_SKIP() << "no /proc/self/status";
  // A freed 24 MB mapping raises glibc's mmap threshold to 24 MB (its ceiling is 32 MB), so
  // the 16 MB blocks below come from the heap, as a layer's per-expert weights do.
  aligned_host_free(aligned_host_alloc(size_t{24} << 20));
  constexpr int kBlocks = 32;
  constexpr size_t kBytes = size_t{16} << 20;
  std::vector<void*> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    blocks.push_back(aligned_host_alloc(kBytes));
    std::memset(blocks.back(), 1, kBytes);  // resident
  }
  void* keep = aligned_host_alloc(size_t{1} << 20);  // long-lived, above them: no top trim
  std::memset(keep, 1, size_t{1} << 20);
  for (void* p : blocks) aligned_host_free(p);
  const long before = resident_kb();
  const long freed_kb = static_cast<long>(kBlocks * kBytes / 1024);
  if (before < freed_kb / 2) {
    aligned_host_free(keep);
    GTEST_SKIP() << "the C library returned the freed blocks by itself (resident " << before << " kB)";
  }
  release_free_host_memory();
  const long after = resident_kb();
  aligned_host_free(keep);
  EXPECT_LT(after, before - freed_kb / 2) << "resident " << before << " kB before the release, " << after
                                          << " kB after; " << freed_kb << " kB were freed";
#endif
}

// The smaps entry of the mapping that holds `p`: its "THPeligible" value (1: the kernel may
// back it with huge pages), or -1 when the kernel does not say.
int thp_eligible(const void* p) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(f, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = addr >= lo && addr < hi;
    } else if (inside && line.rfind("THPeligible:", 0) == 0) {
      return std::stoi(line.substr(12));
    }
  }
  return -1;
}

// Large host buffers ask for transparent huge pages (a decode step streams every weight; on
// 4 KiB pages the prefetchers stop at each page boundary): the mapping that holds one is
// eligible where the kernel's THP mode allows advice, and small buffers are left alone.
TEST(HostMemory, LargeBuffersAskForHugePages) {
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string m;
  std::getline(mode, m);
  // Only the "madvise" mode shows the advice: "always" makes every mapping eligible, "never" none.
  if (m.find("[madvise]") == std::string::npos) GTEST_SKIP() << "transparent huge pages are not in madvise mode: " << m;
  void* big = aligned_host_alloc(size_t{16} << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big) % (size_t{2} << 20), 0u) << "not on a 2 MiB boundary";
  std::memset(big, 1, size_t{16} << 20);
  const int eligible = thp_eligible(big);
  aligned_host_free(big);
  if (eligible < 0) GTEST_SKIP() << "this kernel's smaps has no THPeligible field";
  EXPECT_EQ(eligible, 1);
}

// MemAvailable of /proc/meminfo in bytes, or 0.
size_t meminfo_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  std::string unit;
  while (f >> key >> kib) {
    std::getline(f, unit);
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

// A request larger than the machine can hold is refused naming both sizes, before the kernel
// (which grants it: overcommit) would kill the process once its pages are touched; smaller
// ones are served. Against the kernel's own MemAvailable, then under the test hook's cap.
TEST(HostMemory, AllocationsTheMachineCannotHoldAreRefused) {
  const size_t meminfo = meminfo_available();
  if (meminfo == 0) GTEST_SKIP() << "no MemAvailable in /proc/meminfo";
  const size_t avail = host_memory_available();
  EXPECT_GT(avail, 0u);
  // At most MemAvailable (a cgroup limit can lower it) plus the C library's free blocks,
  // and other processes move MemAvailable meanwhile: a loose upper bound.
  EXPECT_LE(avail, meminfo + meminfo / 10 + (size_t{256} << 20));
  try {
    aligned_host_alloc(meminfo * 2);
    ADD_FAILURE() << "twice the available memory was granted";
  } catch (const HostOutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("out of host memory: "), std::string::npos) << e.what();
  }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  // The test hook: this process alone on a machine of 768 MiB, of which it holds a little.
  ::setenv("TINYLLM_DEBUG_HOST_MEMORY", std::to_string(size_t{768} << 20).c_str(), 1);
  const size_t start = host_memory_available();
  EXPECT_LE(start, size_t{768} << 20);
  EXPECT_GT(start, size_t{700} << 20);
  try {
    aligned_host_alloc(size_t{1} << 30);
    ADD_FAILURE() << "1 GiB was granted with 768 MiB available";
  } catch (const HostOutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("1.00 GiB requested, 0."), std::string::npos) << e.what();
  }
  void* held = aligned_host_alloc(size_t{256} << 20);  // within what is usable
  EXPECT_LE(host_memory_available(), start - (size_t{256} << 20)) << "what the process holds is gone";
  // Smaller buffers are counted: with the 256 MiB held and ~500 MiB more in blocks of 1 MiB,
  // fewer than 128 MiB are left and a 64-MiB check refuses the next block, where each block
  // alone would be granted.
  std::vector<void*> blocks;
  bool refused = false;
  for (int i = 0; i < 700 && !refused; ++i) {
    try {
      blocks.push_back(aligned_host_alloc(size_t{1} << 20));
    } catch (const HostOutOfMemory& e) {
      refused = true;
      EXPECT_NE(std::string(e.what()).find(" left (MemAvailable or the cgroup's limit)"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_TRUE(refused) << blocks.size() << " blocks of 1 MiB on a 768-MiB machine";
  EXPECT_GE(blocks.size(), 380u) << "refused with more than 128 MiB left";
  for (void* p : blocks) aligned_host_free(p);
  aligned_host_free(held);
  ::unsetenv("TINYLLM_DEBUG_HOST_MEMORY");
#endif
}

}  // namespace
}  // namespace tllm
