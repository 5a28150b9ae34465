// Quantized weights at load: which scheme a model uses (config.json of a pre-quantized
// checkpoint, or the --quantization option for quantize-on-load), decoding of the published
// formats into QuantizedMatrix (backend.h), and quantization of dense weights. The backend
// then packs each matrix into its kernel layout (Backend::pack_quantized).
//
// Formats, as published (W = the [out, in] weight HF's Linear multiplies with):
// - MLX (config.json "quantization": {"group_size", "bits", optional per-module overrides
//   or false}; mode "affine"): <m>.weight u32 [out, in * bits / 32], values packed from the
//   lowest bits of each word up, <m>.scales and <m>.biases [out, in / group_size];
//   W = scales * q + biases. A module is quantized when <m>.scales exists (as mlx-lm loads).
//   2, 4 and 8 bits (2-bit codes run on the 4-bit kernels, unchanged).
// - AWQ, GEMM version (quantization_config {"quant_method": "awq", "bits": 4, "group_size",
//   "zero_point": true, "version": "gemm"}): <m>.qweight i32 [in, out / 8] and <m>.qzeros
//   i32 [in / group, out / 8] packed along the output dimension, nibble i of a word holding
//   column 8 j + [0, 2, 4, 6, 1, 3, 5, 7][i]; <m>.scales [in / group, out];
//   W[n, k] = (q - z) * s.
// - GPTQ (quantization_config {"quant_method": "gptq", "bits": 2|4|8, "group_size" (-1: one
//   group), "desc_act": false, "sym"}): <m>.qweight i32 [in * bits / 32, out] packed along the
//   input dimension (value j of word row i is input i * 32 / bits + j), <m>.qzeros i32
//   [groups, out * bits / 32] packed along the output dimension and stored minus one (the
//   zero point is the stored value + 1; "checkpoint_format": "gptq_v2" stores it as is),
//   <m>.scales [groups, out], <m>.g_idx i32 [in] (must be k / group_size);
//   W[n, k] = (q - z) * s. With "desc_act": true (act-order) input k belongs to group
//   g_idx[k]; no kernel here takes permuted groups, so such weights are dequantized on load
//   into the weight dtype (or quantized on with --quantization int8 / int4).
// - FP8, block-wise (quantization_config {"quant_method": "fp8", "fmt": "e4m3",
//   "weight_block_size": [bm, bn], "activation_scheme": "dynamic"|"static"}; Qwen3-*-FP8,
//   DeepSeek-V3 style): <m>.weight F8_E4M3 (or F8_E5M2) [out, in] and <m>.weight_scale_inv
//   f32 [ceil(out / bm), ceil(in / bn)]; W[n, k] = f32(q[n, k]) * scale_inv[n / bm, k / bn]
//   (transformers' Fp8Dequantize). Without weight_block_size one scale covers the matrix
//   (<m>.weight_scale_inv or <m>.weight_scale, one element). A module is FP8 when its weight
//   is stored as FP8 (modules_to_not_convert are stored in bf16). The weights are dequantized
//   on load into the weight dtype (bf16: the rounding the checkpoint's source had; no FP8
//   kernels yet), or quantized on from there with --quantization int8 / int4. Static
//   activation scales (<m>.input_scale) are read past: activations stay in the compute dtype.
// - compressed-tensors (llm-compressor's checkpoints: quantization_config {"quant_method":
//   "compressed-tensors", "format", "config_groups": {name: {"weights": {"type", "num_bits",
//   "strategy", "group_size", "symmetric", "actorder", "block_structure"}, "format"?}},
//   "ignore"}); the schemes of every group must agree. Integer weights:
//   "pack-quantized" (W4A16 / W8A16): <m>.weight_packed i32 [out, in * bits / 32], value j of
//   a word = input 32 / bits * word + j from the lowest bits up, stored as q + 2^(bits-1);
//   <m>.weight_scale [out, in / group] ("channel": [out, 1]); asymmetric: <m>.weight_zero_point
//   i32 [out * bits / 32, groups] packed along the output dimension the same way, also
//   offset by 2^(bits-1); <m>.weight_shape i32 [2]; W = (q - z) * s. "int-quantized" /
//   "naive-quantized" 8-bit per channel (W8A8 checkpoints): <m>.weight i8 [out, in] and
//   <m>.weight_scale [out, 1], W = q * s (activations stay in the compute dtype). Float
//   weights ("float-quantized", FP8 "channel" / "tensor" / "block"): <m>.weight F8_E4M3 and
//   <m>.weight_scale, dequantized on load as FP8 above. Act-order ("actorder": "group", a
//   weight_g_idx that is not k / group) is dequantized on load, as GPTQ's.
// - GGUF (a folder made from a llama.cpp file, io/gguf_model.h): each weight's blocks as
//   stored. q4_0 / q4_1 / q4_K become 4-bit codes and q5_0 / q5_1 / q5_K / q8_0 / q3_K / iq4_nl
//   / iq4_xs 8-bit codes, each with an f32 scale and offset per group of 32 that give ggml's own values
//   (ggml_affine_groups): the same weights, not quantized again. q6_K (a scale per 16 values)
//   becomes 8-bit codes in groups of 32 whose larger-scale half is exact and whose other half
//   is rounded to 1/4 of that half's step (ggml_q6_K_groups); a float weight fused with
//   quantized ones (q|k|v, gate|up) is quantized as 8-bit codes; fused parts of different
//   widths run at 8 bits. --quantization none decodes every block to the weight dtype; int8 / int4
//   quantize the decoded weights on load.
// Everything else (AWQ GEMV/Marlin versions, other bit widths, MLX modes
// other than affine) is rejected with an error naming the field and what is supported.
//
// Quantize on load (--quantization): "int8" is symmetric per output channel (W8A16, scale
// max|w| / 127 as f16, codes q + 128); "int4" is affine per group of quant_group_size inputs
// (32, 64 or 128) as MLX quantizes: scale = (max - min) / 15 and offset = min, both rounded
// to f16, q = round((w - offset) / scale). With int4, the embedding and lm_head are int8
// per channel (what llama.cpp's Q4_0 keeps them at); with int8 they are int8 too.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "model/weights.h"

namespace tllm {

class Checkpoint;
class ThreadPool;
class WeightLoader;

enum class QuantFormat : uint8_t { None, OnLoad, Mlx, Awq, Gptq, Fp8, CompressedTensors, Gguf };
const char* quant_format_name(QuantFormat f);

struct QuantSpec {
  QuantFormat format = QuantFormat::None;
  int bits = 0;          // OnLoad / AWQ / GPTQ / MLX default
  int group_size = 0;    // OnLoad int4, AWQ, GPTQ (-1: one group), MLX default
  bool gptq_v2 = false;  // GPTQ zeros stored without the -1
  // Act-order weights (GPTQ desc_act true, compressed-tensors actorder "group": groups
  // permuted by g_idx): no int kernels take them, so they are dequantized on load (format
  // Gptq / CompressedTensors), or quantized on from there (OnLoad); their own bit width and
  // group size.
  bool act_order = false;
  int act_order_bits = 0, act_order_group = 0;
  std::string source;    // config.json path, for messages
  // MLX per-module overrides: module -> (bits, group_size); bits 0 = not quantized.
  std::vector<std::pair<std::string, std::pair<int, int>>> mlx_overrides;
  // An FP8 checkpoint (format Fp8, or OnLoad when --quantization requantizes it): its weight
  // blocks, rows x cols (0 x 0: one block per matrix), and the fmt it names.
  // A block dimension of 0 spans the matrix (per-channel scales: 1 x 0; one scale: 0 x 0).
  bool fp8 = false;
  bool fp8_on_load = false;  // --quantization fp8 on a float checkpoint: e4m3 in 128 x 128 blocks
  int fp8_block_rows = 0, fp8_block_cols = 0;
  std::string fp8_fmt;
  std::string ct_format;  // compressed-tensors' "format" ("pack-quantized", "float-quantized", ...)
  bool ct_symmetric = true;  // compressed-tensors' "symmetric": false needs <m>.weight_zero_point
  // A GGUF folder: its weights' block types ("q4_K (168), q6_K (29)") and, for the roofline,
  // the bytes per weight the kernels read in the decoder layers and in the lm_head (format
  // Gguf; 0 when not one).
  std::string gguf_types;
  double gguf_layer_bpw = 0, gguf_head_bpw = 0;
  // The backend runs e4m3 weights as they are (Backend::takes_fp8_weights); set by the caller
  // before loading. Then FP8 linears load as QuantScheme::Fp8E4M3 instead of dequantized.
  bool fp8_kernels = false;

  // Reads <model_dir>/config.json and combines it with the --quantization option
  // ("", "int8", "int4"; or, as vLLM's flag does, the checkpoint's own method: "awq",
  // "awq_marlin", "gptq", "gptq_marlin", "fp8", "compressed-tensors", "mlx", "gguf", which must
  // match it and change nothing; "none": nothing quantized on load, and a GGUF's blocks
  // decoded to floats). A pre-quantized checkpoint with an option set is an error, but for
  // FP8 and GGUF, whose decoded weights can be quantized on load like a bf16 checkpoint's.
  static QuantSpec resolve(const std::string& model_dir, const std::string& option, int group_size);
  std::string describe() const;  // "awq 4-bit, group 128"
  // A pre-quantized format whose checkpoint holds no stored-quantized weight at all (an AWQ
  // config over bf16 weights, say) is an error; the weights would load as float under a
  // quantized name.
  void check_stored_in(const Checkpoint& ckpt) const;
  // FP8 e4m3 linears are loaded as FP8 weights (the backend's W8A16 FP8 kernels); e5m2 and
  // FP8 without fp8_kernels are dequantized.
  bool fp8_native() const { return format == QuantFormat::Fp8 && fp8_kernels && fp8_fmt == "e4m3"; }
  // The checkpoint's weights are dequantized on load and computed as dense ones (FP8 where not
  // fp8_native, and act-order GPTQ / compressed-tensors without --quantization).
  bool dequantized_on_load() const {
    return (format == QuantFormat::Fp8 && !fp8_native()) || (act_order && format != QuantFormat::OnLoad);
  }
};

// Loads the linears and embeddings of a model under a QuantSpec; WeightLoader calls it
// (weights.h) before falling back to dense weights.
class QuantLoader {
 public:
  explicit QuantLoader(QuantSpec spec);
  ~QuantLoader();
  const QuantSpec& spec() const { return spec_; }

  // The weights `names` ("<module>.weight") stacked by rows, quantized when the scheme
  // covers them; nullopt when they are to be loaded dense. With a slice (tensor
  // parallelism), rows and in_features are the rank's block of each tensor: the whole tensor
  // is decoded or quantized and the block kept (its columns must be whole groups).
  std::optional<LinearWeight> linear(WeightLoader& w, const std::vector<std::string>& names,
                                     const std::vector<int64_t>& rows, int64_t in_features,
                                     const WeightSlice& slice = {});
  // The embedding table "<module>.weight" [vocab, hidden] quantized, or nullopt (dense).
  std::optional<LinearWeight> embedding(WeightLoader& w, const std::string& name, int64_t vocab, int64_t hidden);
  // A weight the model reads as a dense tensor (a MoE router, say, or any FP8 weight) that the
  // checkpoint stores quantized: dequantized to f32 [rows, cols]; nullopt when it is not
  // stored quantized.
  std::optional<Tensor> dequantized(WeightLoader& w, const std::string& name, const Shape& shape);

 private:
  // Quantization of the module in the checkpoint (bits, group) or nullopt when dense.
  std::optional<std::pair<int, int>> stored_scheme(const Checkpoint& ckpt, const std::string& module) const;
  QuantizedMatrix decode(WeightLoader& w, const std::string& module, int64_t rows, int64_t cols, int bits,
                         int group);
  LinearWeight pack(WeightLoader& w, const QuantizedMatrix& m);
  // fp8_native: the FP8 weights `names` as one Fp8E4M3 weight, or nullopt (dense: a part not
  // stored as e4m3, or blocks the kernels do not take).
  std::optional<LinearWeight> fp8_linear(WeightLoader& w, const std::vector<std::string>& names,
                                         const std::vector<int64_t>& rows, int64_t in_features,
                                         const WeightSlice& slice);

  QuantSpec spec_;
  std::unique_ptr<ThreadPool> pool_;
};

// Bytes the kernels read per weight (codes plus scales and offsets) of a decoder linear
// (head = false) or of the lm_head (head = true) under `spec`; dtype_size(dense) when that
// weight stays dense. For roofline arithmetic (tinyllm bench).
double quant_bytes_per_weight(const QuantSpec& spec, bool head, DType dense);

// --- format codecs (exposed for tests and `tinyllm quantize`) --------------------------

// Dense f32 [rows, cols] -> int8 symmetric per channel / affine int4 (or int8) per group.
QuantizedMatrix quantize_int8_per_channel(const float* w, int64_t rows, int64_t cols, ThreadPool* pool = nullptr);
QuantizedMatrix quantize_affine(const float* w, int64_t rows, int64_t cols, int bits, int group_size,
                                DType scale_dtype = DType::F16, ThreadPool* pool = nullptr);

// A GGUF weight (Checkpoint::gguf_rows) as codes in groups of 32: the blocks' own codes,
// scales and offsets for q4_0 / q4_1 / q5_0 / q5_1 / q8_0 / q4_K / q5_K (5-bit codes as 8-bit
// ones); q6_K as 8-bit codes with each group's larger-scale half exact (ggml_q6_K_groups);
// float weights (fused with quantized ones) quantized as 8-bit codes.
QuantizedMatrix decode_gguf(const Checkpoint& ck, const std::string& name, int64_t rows, int64_t cols,
                            ThreadPool* pool = nullptr);
// Decoders of one module's tensors (host tensors as stored) into a QuantizedMatrix.
QuantizedMatrix decode_mlx(const Tensor& weight, const Tensor& scales, const Tensor& biases, int64_t rows,
                           int64_t cols, int bits, int group_size, const std::string& what);
QuantizedMatrix decode_awq(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, int64_t rows,
                           int64_t cols, int group_size, const std::string& what);
QuantizedMatrix decode_gptq(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, const Tensor& g_idx,
                            int64_t rows, int64_t cols, int bits, int group_size, bool v2, const std::string& what);
// A GPTQ module dequantized to f32 [rows, cols], any g_idx (act-order) included.
Tensor dequantize_gptq(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, const Tensor& g_idx,
                       int64_t rows, int64_t cols, int bits, int group_size, bool v2, const std::string& what);
// compressed-tensors "pack-quantized" (zero_point undefined: symmetric; g_idx and shape may
// be undefined) and 8-bit "int-quantized" weights.
QuantizedMatrix decode_ct_packed(const Tensor& packed, const Tensor& scale, const Tensor& zero_point,
                                 const Tensor& g_idx, const Tensor& shape, int64_t rows, int64_t cols, int bits,
                                 int group_size, const std::string& what);
QuantizedMatrix decode_ct_int8(const Tensor& weight, const Tensor& scale, int64_t rows, int64_t cols,
                               const std::string& what);
// A pack-quantized module dequantized to f32 [rows, cols], any weight_g_idx (act-order).
Tensor dequantize_ct_packed(const Tensor& packed, const Tensor& scale, const Tensor& zero_point, const Tensor& g_idx,
                            const Tensor& shape, int64_t rows, int64_t cols, int bits, int group_size,
                            const std::string& what);

// An FP8 weight [rows, cols] (F8_E4M3 or F8_E5M2) times its block scales (f32 / bf16 / f16,
// [ceil(rows / block_rows), ceil(cols / block_cols)], a block dimension <= 0 spanning the
// matrix; one element, of any rank, for one block) as f32,
// each product rounded once as transformers' f32 multiply does. Non-finite codes and scales
// are errors naming `what`.
Tensor dequantize_fp8(const Tensor& weight, const Tensor& scale, int64_t block_rows, int64_t block_cols,
                      const std::string& what, ThreadPool* pool = nullptr);

// Dense f32 [rows, cols] -> e4m3 per block of block_rows x block_cols (<= 0: the matrix):
// scale = the block's largest |w| / 448, code = the nearest e4m3 of w / scale (ties to even).
QuantizedMatrix quantize_fp8(const float* w, int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols,
                             ThreadPool* pool = nullptr);

// An e4m3 weight [rows, cols] and its block scales (as dequantize_fp8 takes them) as a
// QuantizedMatrix with fp8 set: the codes as stored, each block's scale repeated for its rows
// in groups of block_cols columns (the whole row when block_cols <= 0), offsets 0. Errors as
// dequantize_fp8's.
QuantizedMatrix decode_fp8(const Tensor& weight, const Tensor& scale, int64_t block_rows, int64_t block_cols,
                           const std::string& what);

// The scale tensor of FP8 weight <module>.weight: <module>.weight_scale_inv (Qwen's /
// DeepSeek's FP8) or <module>.weight_scale (compressed-tensors, per-tensor FP8); both
// multiply. "" when the checkpoint has neither.
std::string fp8_scale_name(const Checkpoint& ckpt, const std::string& module);

// MLX encoding of a QuantizedMatrix whose codes fit `bits` (for `tinyllm quantize`):
// weight u32 [rows, cols * bits / 32], scales and biases [rows, groups] in `scale_dtype`.
struct MlxTensors {
  Tensor weight, scales, biases;
};
MlxTensors encode_mlx(const QuantizedMatrix& m, DType scale_dtype);

// Stacks matrices of equal cols, bits and group size by rows.
QuantizedMatrix stack_rows(const std::vector<QuantizedMatrix>& parts);
// Rows [r0, r0 + nr) and columns [c0, c0 + nc) of m (a tensor-parallel rank's block); the
// columns must be whole groups unless m has one group per row. `what` names m in the error.
QuantizedMatrix slice_matrix(const QuantizedMatrix& m, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                             const std::string& what);

}  // namespace tllm
