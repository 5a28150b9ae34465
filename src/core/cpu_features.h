// Instruction sets of the machine we run on, read once at start-up. CPU kernels pick
// AVX-512 / AVX2 / scalar variants from this at run time, so one binary runs everywhere.
#pragma once

#include <cstdint>
#include <string>

namespace tllm {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512bf16 = false;
  bool avx512vnni = false;
  bool avxvnni = false;
  bool amx_int8 = false;  // AMX tiles with int8 products, and the OS lets this process use them

  bool has_avx512() const { return avx512f && avx512bw && avx512vl; }
  bool has_avx2() const { return avx2 && fma && f16c; }
  std::string str() const;  // "avx512 avx512bf16 avx512vnni ..."
};

// Detected features; TLLM_CPU_ISA=avx2|scalar in the environment caps what is reported
// (used by tests to exercise the fallbacks on an AVX-512 machine), and TLLM_CPU_AMX=0 leaves
// AMX out (benchmarks against the AVX-512 kernels).
const CpuFeatures& cpu_features();

// The largest CPU cache of cpu0 in bytes as Linux reports it (sysfs sizes such as "2048K";
// 0 where it says nothing): a decode step whose bytes fit in it need not be bound by DRAM.
int64_t cpu_last_level_cache_bytes();

}  // namespace tllm
