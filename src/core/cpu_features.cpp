#include "core/cpu_features.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"

namespace tllm {

namespace {
// Linux hands out the AMX tile registers per process on request (arch_prctl
// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); a process that uses them unasked is killed.
bool amx_permitted() {
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtileData = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
}

CpuFeatures detect() {
  CpuFeatures f;
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = true;  // every AVX2 part has F16C; checked below via avx2
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
  f.avxvnni = __builtin_cpu_supports("avxvnni");
  if (!f.avx2) f.f16c = false;
  const char* amx_env = std::getenv("TLLM_CPU_AMX");
  const bool amx_wanted = !(amx_env && std::strcmp(amx_env, "0") == 0);
  f.amx_int8 = amx_wanted && __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-int8") &&
               f.avx512vnni && amx_permitted();
  if (const char* cap = std::getenv("TLLM_CPU_ISA"); cap && *cap) {
    // A cap below what the CPU has (benchmarks and tests of the narrower kernels).
    TLLM_CHECK_ARG(std::strcmp(cap, "avx2") == 0 || std::strcmp(cap, "scalar") == 0,
                   "environment variable TLLM_CPU_ISA='", cap, "': expected avx2 or scalar");
    f.avx512f = f.avx512bw = f.avx512vl = f.avx512bf16 = f.avx512vnni = f.amx_int8 = false;
    if (std::strcmp(cap, "scalar") == 0) f.avx2 = f.fma = f.f16c = f.avxvnni = false;
  }
  return f;
}
}  // namespace

std::string CpuFeatures::str() const {
  std::string s;
  auto add = [&](bool b, const char* n) {
    if (b) s += s.empty() ? n : std::string(" ") + n;
  };
  add(has_avx512(), "avx512");
  add(avx512bf16, "avx512bf16");
  add(avx512vnni, "avx512vnni");
  add(amx_int8, "amx");
  add(has_avx2(), "avx2");
  add(avxvnni, "avxvnni");
  if (s.empty()) s = "scalar";
  return s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();  // immutable after first read
  return f;
}

int64_t cpu_last_level_cache_bytes() {
  int64_t best = 0;
  for (int i = 0; i < 16; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    int64_t v = 0;
    char unit = 0;
    if (!(f >> v)) continue;
    f >> unit;
    const int64_t scale = unit == 'K' ? 1 << 10 : unit == 'M' ? 1 << 20 : unit == 'G' ? 1 << 30 : 1;
    best = std::max(best, v * scale);
  }
  return best;
}

}  // namespace tllm
