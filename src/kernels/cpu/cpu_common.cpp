// Instruction-set selection and scratch memory shared by the CPU ops.
#include <cstring>

#include "core/allocator.h"
#include "core/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"

namespace tllm::cpu {

namespace {
bool machine_has(Isa isa) {
  if (isa == Isa::Scalar) return true;
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == Isa::Avx2) return avx2;
  return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
}  // namespace

bool isa_supported(Isa isa) { return machine_has(isa); }

Isa best_isa() {
  const CpuFeatures& f = cpu_features();
  if (f.has_avx512() && machine_has(Isa::Avx512)) return Isa::Avx512;
  if (f.has_avx2()) return Isa::Avx2;
  return Isa::Scalar;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Scalar: return "scalar";
  }
  return "?";
}

Scratch::~Scratch() { aligned_host_free(data_); }

void* Scratch::bytes(size_t n) {
  if (n > size_) {
    aligned_host_free(data_);
    data_ = nullptr;
    size_ = 0;
    const size_t grown = n + n / 4 + 4096;
    data_ = aligned_host_alloc(grown, 64);
    size_ = grown;
  }
  return data_;
}

}  // namespace tllm::cpu
