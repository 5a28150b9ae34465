// Kernel layouts of quantized weights (see LinearWeight in backend.h for the arithmetic).
// The checkpoint formats (MLX, AWQ, GPTQ, quantize-on-load) are decoded into a
// QuantizedMatrix by model/quant.cpp; pack() lays it out here for one backend's kernels, and
// unpack() inverts it (tests, reference dequantization). Both layouts group output rows in
// panels of 16 and pad the rows with zero codes, zero scales and zero offsets.
//
// Scales and offsets (both layouts): [rows_padded / 16][groups][16], declared [rows_padded,
// groups]; f16 when every scale and offset of the matrix is exactly an f16, else f32.
//
// CPU codes (kernels/cpu/quant_*.cpp), columns padded with zero codes to a multiple of 32:
//   8 bits: panel p = [cols_padded / 4][16 rows][4 consecutive k] bytes, so one 64-byte load
//           is 16 rows x 4 k, the operand of one AVX-512 VNNI dot product (vpdpbusd);
//   4 bits: panel p = [cols_padded / 8][16 rows][4 bytes]: byte j of row r in step s holds k =
//           8s + j in its low nibble and k = 8s + 4 + j in its high nibble, so `v & 15` and
//           `v >> 4 & 15` are two such 16 x 4 operands.
// CUDA codes (kernels/cuda/quant_*.cu): tiles of 16 rows x kTile columns (128 for 4 bits, 64
// for 8 bits) of 1024 bytes each, [rows_padded / 16][cols_padded / kTile][1024], laid out so
// that lane L of a warp reads the A fragments of mma.m16n8k16 with two 16-byte loads: bytes
// [16 L, 16 L + 16) hold row L / 4 and bytes [512 + 16 L, ...) row L / 4 + 8, each covering
// k = 16 m + 2 (L % 4) + {0, 1} (fragment a0 / a1) and the same + 8 (a2 / a3) of every
// 16-wide k step m of the tile. Word w of a 4-bit lane holds steps m = 2w, 2w + 1: bits
// 4p + 16e with p = 2 (m - 2w) + (k >= 8 in the step), e = k odd, so
// `(v >> 4p) & 0x000F000F` is a bf16x2 operand pair once or-ed with 0x4300 (128 + q). Word w
// of an 8-bit lane holds step m = w: byte (k >= 8 in the step) + 2 (k odd), so the low and
// high nibbles of bytes {0, 2} and {1, 3} extract the same way.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/backend.h"

namespace tllm {
class ThreadPool;
}

namespace tllm::quant {

constexpr int kPanelRows = 16;
constexpr int kCpuBlock = 32;  // K granularity of the CPU layout (the activation block)

enum class Layout : uint8_t { Cpu, Cuda };

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
inline int64_t padded_rows(int64_t rows) { return round_up(rows, kPanelRows); }
inline int cuda_k_tile(int bits) { return bits == 4 ? 128 : 64; }
inline int64_t padded_cols(Layout layout, int bits, int64_t cols) {
  return round_up(cols, layout == Layout::Cpu ? kCpuBlock : cuda_k_tile(bits));
}
inline int64_t row_bytes(Layout layout, int bits, int64_t cols) { return padded_cols(layout, bits, cols) * bits / 8; }

// Throws naming `what` unless m is well formed: bits 4 or 8, group size a multiple of 32
// (or covering the row), codes u8 [rows, cols] within range, scales and offsets f32
// [rows, groups] and finite.
void validate(const QuantizedMatrix& m, const std::string& what);

QuantScheme scheme_of(const QuantizedMatrix& m);

// m laid out for `layout` as host tensors (pool, when given, runs the packing in parallel).
LinearWeight pack(const QuantizedMatrix& m, Layout layout, ThreadPool* pool = nullptr);

// The inverse of pack for host tensors of `layout`: the codes, scales and offsets of the real
// (unpadded) rows and columns.
QuantizedMatrix unpack(const LinearWeight& w, Layout layout);

// Scale and offset of (row, group) of a packed weight on the host (either layout).
float packed_scale(const LinearWeight& w, int64_t row, int64_t group);
float packed_offset(const LinearWeight& w, int64_t row, int64_t group);

}  // namespace tllm::quant
