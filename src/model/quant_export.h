// `tinyllm quantize`: a float (or FP8) checkpoint written back as an MLX-layout quantized
// checkpoint (model/quant.h describes the layout) that the loader reads as it reads MLX's own.
#pragma once

#include <cstddef>
#include <string>

namespace tllm {

struct QuantizeExportStats {
  int quantized = 0;        // weights written quantized
  int copied = 0;           // tensors copied unchanged (norms, biases, routers, ...)
  size_t bytes_in = 0;      // tensor bytes read
  size_t bytes_out = 0;     // tensor bytes written
};

// Quantizes every linear weight of the decoder (q/k/v/o, gate/up/down, MoE experts), the
// embedding and an untied lm_head, affine with `bits` (4 or 8) per `group_size` (32, 64,
// 128) inputs, scales and biases in the checkpoint's float dtype; copies the other tensors;
// writes config.json with "quantization": {"group_size", "bits"} (and the same object as
// "quantization_config", as mlx-lm does), and copies the tokenizer files and
// generation_config.json. An FP8 checkpoint's weights are dequantized first (to bf16, the
// dtype of its other tensors) and its scales dropped. config.json is checked as the loader
// checks it before anything is written. out_dir is created; existing files in it are
// overwritten, but an out_dir that is model_dir or holds other weight files (shards, an index)
// is refused.
QuantizeExportStats write_mlx_checkpoint(const std::string& model_dir, const std::string& out_dir, int bits,
                                         int group_size);

}  // namespace tllm
