// safetensors checkpoints, memory-mapped. A tensor handed out is a host Tensor viewing the
// mapping (no copy); the mapping stays alive while any such view lives.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data block; offsets are relative to the data block.
#pragma once

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tllm {

class GgufFile;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  size_t offset = 0;  // from the start of the data block
  size_t nbytes = 0;
  std::string file;   // path of the file holding it
};

// One .safetensors file. Every header entry is validated at open: known dtype, offsets in
// bounds, non-overlapping, nbytes == numel * dtype size. Errors name the file and tensor.
class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws naming file and tensor
  Tensor get(const std::string& name) const;              // host view into the mapping

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const char* data_ = nullptr;  // start of the data block
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<SafetensorsFile> self_;
};

// All weights of a checkpoint directory: model.safetensors, or the shards named by
// model.safetensors.index.json (every shard listed must exist and hold the tensors the
// index assigns to it), or any *.safetensors files when there is neither.
//
// A folder made from a GGUF file (io/gguf_model.h) has no safetensors but gguf_tensors.json:
// its tensors are the GGUF file's under their HF names, as floats (quantized blocks decoded
// to f32 by get(); info() reports that dtype); an entry may name one slice of a stacked
// tensor ({"slice": e}: MoE experts) or give the HF shape of the same elements ({"shape"}).
class Checkpoint {
 public:
  static Checkpoint open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const { return where_.count(name) != 0 || gguf_tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // error lists the checkpoint dir
  Tensor get(const std::string& name) const;
  std::vector<std::string> names() const;

  // A tensor of a GGUF file as stored: its ggml type (io/gguf.h) and each row's bytes (its
  // blocks) in the checkpoint's row order (llama.cpp's q / k row order undone); nullopt for a
  // safetensors tensor.
  struct GgufRows {
    uint32_t type = 0;
    int64_t rows = 0, cols = 0;
    std::vector<const uint8_t*> row;
  };
  std::optional<GgufRows> gguf_rows(const std::string& name) const;
  // Just the ggml type of a GGUF tensor; nullopt for a safetensors one.
  std::optional<uint32_t> gguf_type(const std::string& name) const;

 private:
  struct GgufTensor {
    std::string gguf_name;
    int64_t permute_heads = 0;  // Llama q / k: rows of each head interleaved by llama.cpp's converter
    int64_t slice = -1;         // >= 0: this slice of a stacked [E, rows, cols] tensor (an expert)
    bool reshaped = false;      // info.shape is the map's "shape" (the same elements)
    TensorInfo info;
  };
  void open_gguf(const std::string& map_path);

  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
  std::shared_ptr<GgufFile> gguf_;
  std::map<std::string, GgufTensor> gguf_tensors_;
};

// Writes tensors (host, any dtype) to a .safetensors file; used by tests and `quantize`.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace tllm
