// GGUF files (llama.cpp's format, versions 2 and 3), memory-mapped: the metadata key/values,
// the tensor directory, and each tensor as floats. F32 / F16 / BF16 tensors are views into the
// mapping; block-quantized ones (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) are decoded
// to f32 on request, following ggml's block layouts. Other types are refused by name.
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count; the key/values (string
// key, u32 type, value; arrays as u32 element type + u64 count + elements); the tensor infos
// (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset); then,
// aligned to general.alignment (32), the data block the offsets point into.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace tllm {

struct GgufTensorInfo {
  std::string name;
  uint32_t type = 0;            // ggml type id
  std::vector<int64_t> shape;   // row-major (outermost first): ne reversed
  uint64_t offset = 0;          // into the data block of its part
  uint64_t nbytes = 0;
  int part = 0;                 // the file of a split GGUF that holds it (0: the first)
};

// llama.cpp's names of split GGUF files: PREFIX-00001-of-00003.gguf is part 1 of 3.
struct GgufSplitName {
  std::string prefix;
  int part = 0, count = 0;
};
std::optional<GgufSplitName> parse_gguf_split_name(const std::string& filename);
std::string gguf_split_name(const std::string& prefix, int part, int count);

// A metadata value. Arrays hold their elements as the widest type of their kind.
struct GgufValue {
  using Array = std::variant<std::vector<int64_t>, std::vector<uint64_t>, std::vector<double>,
                             std::vector<std::string>, std::vector<bool>>;
  std::variant<int64_t, uint64_t, double, bool, std::string, Array> v;
};

class GgufFile {
 public:
  // Throws InvalidArgument naming the file and what is wrong (magic, version, a truncated
  // header, a tensor outside the file or of an unknown type). The first part of a split file
  // (llama.cpp's gguf-split: split.count > 1, parts named PREFIX-0000K-of-0000N.gguf beside it)
  // opens all its parts as one file; a later part, or a missing one, is an error naming it.
  static std::shared_ptr<GgufFile> open(const std::string& path);
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const std::map<std::string, GgufTensorInfo>& tensors() const { return tensors_; }
  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  bool has_tensor(const std::string& name) const { return tensors_.count(name) != 0; }

  // Typed metadata; throw naming the key when absent or of another kind.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;  // any integer type
  double get_float(const std::string& key) const;  // f32, f64 or an integer
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_strings(const std::string& key) const;
  std::vector<int64_t> get_ints(const std::string& key) const;

  const GgufTensorInfo& tensor(const std::string& name) const;  // throws naming the file
  // The tensor as floats: a view (F32, F16, BF16) or a decoded f32 host tensor; float_dtype
  // says which dtype that is without reading it.
  Tensor tensor_floats(const std::string& name) const;
  // Slice `slice` of the outermost dimension ([E, rows, cols] -> [rows, cols]: one expert of a
  // stacked tensor), the same way.
  Tensor tensor_floats(const std::string& name, int64_t slice) const;
  DType float_dtype(const std::string& name) const;
  // The tensor's bytes as stored (its blocks, for a quantized type).
  const uint8_t* tensor_bytes(const std::string& name) const {
    const GgufTensorInfo& t = tensor(name);
    return parts_[t.part].data + t.offset;
  }
  int parts() const { return static_cast<int>(parts_.size()); }

 private:
  struct Part {
    std::string path;
    void* map = nullptr;
    size_t map_size = 0;
    const uint8_t* data = nullptr;  // its data block
    int64_t split_no = 0, split_count = 1;
  };
  GgufFile() = default;
  // Maps one file and reads its header: the metadata of the first part, the tensors of each.
  void read_part(const std::string& path, bool first);
  Tensor floats_at(const uint8_t* p, const Shape& shape, uint32_t type) const;
  std::string path_;
  uint32_t version_ = 0;
  std::vector<Part> parts_;
  std::map<std::string, GgufValue> metadata_;
  std::map<std::string, GgufTensorInfo> tensors_;
  std::weak_ptr<GgufFile> self_;
};

// ggml's name of a type id ("q4_K", "bf16"), or "type N".
std::string ggml_type_name(uint32_t type);
// Bytes of `n` elements of a ggml type (n a multiple of its block), or 0 for a type this
// reader does not decode.
uint64_t ggml_row_bytes(uint32_t type, int64_t n);
// Decodes `n` elements (a whole number of blocks) of a block-quantized type into dst.
void ggml_dequantize(uint32_t type, const uint8_t* src, float* dst, int64_t n);

// The block types whose elements are an unsigned integer code times a scale plus an offset
// per group of 32 consecutive elements (q4_0, q4_1, q4_K: 4-bit codes; q5_0, q5_1, q5_K: 5;
// q8_0: 8, the int8 stored plus 128; q3_K: 8, its 3-bit value times its 6-bit scale per 16
// elements plus 127, all groups scaled by the block's d; iq4_nl, iq4_xs: 8, the value of the
// non-linear table an index stands for plus 127): their code width, or 0 (q6_K's scales change
// every 16 elements; float types).
int ggml_affine_bits(uint32_t type);
// Decodes `n` elements of such a type into one code per element (codes[n]) and a scale and an
// offset per group of 32 (scales / offsets [n / 32]), so that element i is
// codes[i] * scales[i / 32] + offsets[i / 32]: the scale and offset are exact f32 values
// (an f16, or a K-quant's f16 times its 6-bit integer), and that sum is ggml's own value.
void ggml_affine_groups(uint32_t type, const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* offsets);
// q6_K blocks (a 6-bit q in [-32, 31] times d times an int8 scale per 16 values) as 8-bit
// codes in groups of 32 in the same form: per group, the scale is d times the larger of its two
// int8 scales over 4, so that half's values are exact (code 128 + 4 q) and the other half's,
// 4 q s / s_larger, are rounded to that grid: exact where that is an integer, else within 1/8
// of the larger half's step (a code that would be 256, only where the two scales are of
// opposite signs and equal size, is 255).
void ggml_q6_K_groups(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* offsets);

}  // namespace tllm
