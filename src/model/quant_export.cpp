#include "model/quant_export.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/quant.h"

namespace tllm {

namespace fs = std::filesystem;

namespace {

bool is_quantizable(const std::string& name, const Tensor& t, bool tied) {
  if (t.ndim() != 2 || !dtype_is_float(t.dtype())) return false;
  if (tied && name == "lm_head.weight") return false;  // tied: the loader reads it as a float tensor
  static const char* kModules[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                   "down_proj", "embed_tokens", "lm_head"};
  for (const char* m : kModules) {
    const std::string suffix = std::string(m) + ".weight";
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.'))
      return true;
  }
  return false;
}

}  // namespace

QuantizeExportStats write_mlx_checkpoint(const std::string& model_dir, const std::string& out_dir, int bits,
                                         int group_size) {
  TLLM_CHECK_ARG(bits == 4 || bits == 8, "quantize: --bits ", bits, " is not supported (4, 8)");
  TLLM_CHECK_ARG(group_size == 32 || group_size == 64 || group_size == 128, "quantize: --group-size ", group_size,
                 " is not supported (32, 64, 128)");
  const std::string cfg_path = model_dir + "/config.json";
  // The model's own checks first (they name the field), so that a broken config.json is not
  // copied into the output; the ordered copy keeps its keys in order for the rewrite.
  const ModelConfig mc = ModelConfig::load(model_dir);
  nlohmann::ordered_json cfg = nlohmann::ordered_json::parse(read_file(cfg_path), nullptr, true);
  TLLM_CHECK_ARG(cfg.is_object(), cfg_path, ": not a JSON object");
  std::error_code ec;
  TLLM_CHECK_ARG(!fs::exists(out_dir, ec) || !fs::equivalent(model_dir, out_dir, ec), "quantize: --out ", out_dir,
                 " is the model directory; the quantized checkpoint would replace the float weights it is made from");
  TLLM_CHECK_ARG(!fs::exists(out_dir, ec) || fs::is_directory(out_dir, ec), "quantize: --out ", out_dir,
                 " exists and is not a directory");
  // Weights of another checkpoint in out_dir would be read beside (or instead of) the new
  // model.safetensors: a shard index wins over it. Overwriting an earlier export is fine.
  if (fs::is_directory(out_dir, ec))
    for (const auto& e : fs::directory_iterator(out_dir, ec)) {
      const std::string f = e.path().filename().string();
      TLLM_CHECK_ARG(f == "model.safetensors" || (e.path().extension() != ".safetensors" &&
                                                  f != "model.safetensors.index.json"),
                     "quantize: --out ", out_dir, " holds weights of another checkpoint (", f,
                     "); give an empty or new directory");
    }
  // An FP8 checkpoint is quantized from its dequantized weights (model/quant.h); others that
  // are already quantized are refused.
  const QuantSpec src = QuantSpec::resolve(model_dir, "", group_size);
  TLLM_CHECK_ARG(src.format == QuantFormat::Fp8 || (!cfg.contains("quantization") && !cfg.contains("quantization_config")),
                 cfg_path, " is already a quantized checkpoint; quantize a float (bf16/f16/f32) or FP8 checkpoint");
  const bool tied = mc.tie_word_embeddings;

  const Checkpoint ckpt = Checkpoint::open(model_dir);
  fs::create_directories(out_dir);
  ThreadPool pool(0);
  QuantizeExportStats st;
  std::vector<std::pair<std::string, Tensor>> out;
  for (const std::string& name : ckpt.names()) {
    const TensorInfo& info = ckpt.info(name);
    st.bytes_in += info.nbytes;
    // FP8 block scales and static activation scales go with their weights.
    if (src.fp8 && (name.ends_with(".weight_scale_inv") || name.ends_with(".weight_scale") ||
                    name.ends_with(".input_scale")))
      continue;
    Tensor t = ckpt.get(name);
    if (dtype_is_fp8(info.dtype)) {
      TLLM_CHECK_ARG(src.fp8, "quantize: tensor \"", name, "\" is stored as FP8 (", dtype_name(info.dtype), ") but ",
                     cfg_path, " has no quantization_config with quant_method \"fp8\"");
      const std::string module = name.substr(0, name.size() - 7);
      const std::string scale = fp8_scale_name(ckpt, module);
      TLLM_CHECK_ARG(name.ends_with(".weight") && !scale.empty(), "quantize: FP8 tensor \"", name,
                     "\" has no ", module, ".weight_scale_inv");
      const Tensor deq = dequantize_fp8(t, ckpt.get(scale), src.fp8_block_rows, src.fp8_block_cols,
                                        model_dir + ": " + name, &pool);
      t = Tensor::empty(deq.shape(), DType::BF16);  // the dtype of Qwen's FP8 checkpoints' other tensors
      for (int64_t i = 0; i < deq.numel(); ++i) t.data<uint16_t>()[i] = f32_to_bf16(deq.data<float>()[i]);
    }
    const int64_t cols = info.shape.size() == 2 ? info.shape[1] : 0;
    if (!is_quantizable(name, t, tied) || cols % group_size != 0) {
      out.emplace_back(name, t);
      st.bytes_out += t.nbytes();
      ++st.copied;
      continue;
    }
    const int64_t rows = info.shape[0];
    Tensor f = Tensor::empty({rows, cols}, DType::F32);
    pool.parallel_for(rows * cols, 1 << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        f.data<float>()[i] = t.dtype() == DType::F32    ? t.data<float>()[i]
                             : t.dtype() == DType::BF16 ? bf16_to_f32(t.data<uint16_t>()[i])
                             : t.dtype() == DType::F16  ? f16_to_f32(t.data<uint16_t>()[i])
                                                        : static_cast<float>(t.data<double>()[i]);
      }
    });
    const DType sdt = t.dtype() == DType::F16 ? DType::F16 : t.dtype() == DType::F32 ? DType::F32 : DType::BF16;
    const QuantizedMatrix m = quantize_affine(f.data<float>(), rows, cols, bits, group_size, sdt, &pool);
    const MlxTensors e = encode_mlx(m, sdt);
    const std::string module = name.substr(0, name.size() - 7);
    out.emplace_back(module + ".weight", e.weight);
    out.emplace_back(module + ".scales", e.scales);
    out.emplace_back(module + ".biases", e.biases);
    st.bytes_out += e.weight.nbytes() + e.scales.nbytes() + e.biases.nbytes();
    ++st.quantized;
  }
  TLLM_CHECK_ARG(st.quantized > 0, "quantize: no linear weight of ", model_dir, " could be quantized with group size ",
                 group_size);
  write_safetensors(out_dir + "/model.safetensors", out, {{"format", "mlx"}});

  cfg.erase("quantization_config");  // FP8's
  const nlohmann::ordered_json q = {{"group_size", group_size}, {"bits", bits}};
  cfg["quantization"] = q;
  cfg["quantization_config"] = q;
  {
    std::ofstream f(out_dir + "/config.json");
    TLLM_CHECK(f.good(), "quantize: cannot write ", out_dir, "/config.json");
    f << cfg.dump(2) << "\n";
  }
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                           "special_tokens_map.json", "vocab.json", "merges.txt", "chat_template.jinja",
                           "chat_template.json", "added_tokens.json"}) {
    const fs::path src = fs::path(model_dir) / file;
    if (fs::exists(src)) fs::copy_file(src, fs::path(out_dir) / file, fs::copy_options::overwrite_existing);
  }
  return st;
}

}  // namespace tllm
