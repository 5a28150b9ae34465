// Tensor maps for the TMA kernels (tma.cuh). The encoder comes from the driver through the
// runtime's entry-point query, so nothing links against libcuda.
#include <cudaTypedefs.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/tma.cuh"

namespace tllm::cuda {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q));
    TLLM_CHECK(q == cudaDriverEntryPointSuccess && f != nullptr, "TMA: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

}  // namespace

void tma_init() { (void)tensor_map_encoder(); }

CUtensorMap tma_map_bf16(const void* base, int64_t rows, int64_t cols, int box_rows, const char* who) {
  TLLM_CHECK(rows >= 1 && cols >= 8 && cols % 8 == 0 && box_rows >= 1 && box_rows <= 256 &&
                 reinterpret_cast<uintptr_t>(base) % 16 == 0,
             who, ": no tensor map for a [", rows, ", ", cols, "] bf16 matrix in boxes of ", box_rows,
             " rows (needs cols % 8 == 0 and a 16-byte aligned base)");
  CUtensorMap m;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)}, elem[2] = {1, 1};
  const CUresult r = tensor_map_encoder()(&m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims,
                                          strides, box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                          CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  TLLM_CHECK(r == CUDA_SUCCESS, who, ": cuTensorMapEncodeTiled failed (", static_cast<int>(r), ") for [", rows, ", ",
             cols, "]");
  return m;
}

}  // namespace tllm::cuda
