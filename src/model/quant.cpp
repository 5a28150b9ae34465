#include "model/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/logging.h"
#include "core/thread_pool.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace tllm {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string module_of(const std::string& weight_name) {
  TLLM_CHECK(ends_with(weight_name, ".weight"), "quantized weight name \"", weight_name,
             "\" does not end in .weight");
  return weight_name.substr(0, weight_name.size() - 7);
}

// std::nearbyint(v) (round half to even) for |v| <= 2^22 without a libm call (the generic
// x86-64 build has no roundss): adding 1.5 * 2^23 leaves no fraction bits. Callers clamp v
// to a small integer range first; clamp then round equals round then clamp for integer bounds.
inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

float float_at(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::BF16: return bf16_to_f32(t.data<uint16_t>()[i]);
    case DType::F16: return f16_to_f32(t.data<uint16_t>()[i]);
    default: TLLM_THROW("not a float tensor: ", t.str());
  }
}

void expect(const Tensor& t, const std::string& name, std::initializer_list<DType> dtypes, const Shape& shape,
            const std::string& what) {
  TLLM_CHECK(t.defined(), what, ": missing tensor ", name);
  bool ok = false;
  for (DType d : dtypes) ok = ok || t.dtype() == d;
  std::string want;
  for (DType d : dtypes) want += std::string(want.empty() ? "" : " or ") + dtype_name(d);
  TLLM_CHECK(ok, what, ": tensor ", name, " has dtype ", dtype_name(t.dtype()), ", expected ", want);
  TLLM_CHECK(t.shape() == shape, what, ": tensor ", name, " has shape ", shape_str(t.shape()), ", expected ",
             shape_str(shape));
}

QuantizedMatrix empty_matrix(int64_t rows, int64_t cols, int bits, int group) {
  QuantizedMatrix m;
  m.bits = bits;
  m.group_size = group;
  m.rows = rows;
  m.cols = cols;
  m.codes = Tensor::empty({rows, cols}, DType::U8);
  m.scales = Tensor::empty({rows, m.groups()}, DType::F32);
  m.offsets = Tensor::empty({rows, m.groups()}, DType::F32);
  return m;
}

// Kernel bit width for stored codes of `bits` bits (narrower codes are valid wider ones).
int kernel_bits(int bits) { return bits <= 4 ? 4 : 8; }

template <typename F>
void parallel_rows(ThreadPool* pool, int64_t rows, F&& f) {
  if (pool) pool->parallel_for(rows, 8, f);
  else f(int64_t{0}, rows);
}

float round_to(float v, DType dt) {
  if (dt == DType::F16) return f16_to_f32(f32_to_f16(v));
  if (dt == DType::BF16) return bf16_to_f32(f32_to_bf16(v));
  return v;
}

}  // namespace

const char* quant_format_name(QuantFormat f) {
  switch (f) {
    case QuantFormat::None: return "none";
    case QuantFormat::OnLoad: return "quantize-on-load";
    case QuantFormat::Mlx: return "mlx";
    case QuantFormat::Awq: return "awq";
    case QuantFormat::Gptq: return "gptq";
    case QuantFormat::Fp8: return "fp8";
    case QuantFormat::CompressedTensors: return "compressed-tensors";
    case QuantFormat::Gguf: return "gguf";
  }
  return "?";
}

// --- config ------------------------------------------------------------------------------

namespace {

// quantization_config of a compressed-tensors checkpoint (quant.h): one weight scheme for
// every config group, integer (pack-quantized / int-quantized) or float (FP8).
void parse_compressed_tensors(const JsonFields& qc, QuantSpec& s) {
  const std::string status = lower(qc.get_string("quantization_status").value_or("compressed"));
  if (status != "compressed")
    qc.fail("quantization_status", "compressed-tensors checkpoints must be saved compressed (\"compressed\"), not \"" +
                                       status + "\"");
  const std::string top_format = lower(qc.get_string("format").value_or(""));
  const std::optional<JsonFields> groups = qc.get_object("config_groups");
  if (!groups || groups->raw().empty()) qc.fail("config_groups", "compressed-tensors needs at least one config group");
  std::string scheme;  // the first group's, to compare the others with
  for (auto it = groups->raw().begin(); it != groups->raw().end(); ++it) {
    const std::optional<JsonFields> g = groups->get_object(it.key());
    if (!g) groups->fail(it.key(), "expected a config group object");
    const std::optional<JsonFields> w = g->get_object("weights");
    if (!w) continue;  // activations only
    const std::string fmt = lower(g->get_string("format").value_or(top_format));
    const std::string type = lower(w->get_string("type").value_or("int"));
    const int bits = w->require_int_in("num_bits", 1, 64);
    const std::string strategy = lower(w->get_string("strategy").value_or("tensor"));
    const bool sym = w->get_bool("symmetric").value_or(true);
    const std::string actorder = w->has("actorder") && w->raw()["actorder"].is_string()
                                     ? lower(w->raw()["actorder"].get<std::string>())
                                     : "";
    const int group = strategy == "group" ? w->require_int_in("group_size", 1, 1 << 20) : 0;
    if (type == "float") {
      if (bits != 8) w->fail("num_bits", "float weights must be 8-bit (FP8)");
      if (fmt != "float-quantized" && fmt != "naive-quantized")
        g->fail("format", "float weights are supported in the \"float-quantized\" format, not \"" + fmt + "\"");
      s.fp8 = true;
      s.fp8_fmt = "e4m3";
      s.ct_format = fmt;
      if (strategy == "channel") {
        s.fp8_block_rows = 1, s.fp8_block_cols = 0;
      } else if (strategy == "tensor") {
        s.fp8_block_rows = 0, s.fp8_block_cols = 0;
      } else if (strategy == "block") {
        const std::optional<std::vector<int64_t>> b = w->get_int_list("block_structure");
        if (!b || b->size() != 2 || (*b)[0] <= 0 || (*b)[1] <= 0 || (*b)[0] > (1 << 20) || (*b)[1] > (1 << 20))
          w->fail("block_structure", "expected [rows, cols], two positive integers");
        s.fp8_block_rows = static_cast<int>((*b)[0]), s.fp8_block_cols = static_cast<int>((*b)[1]);
      } else {
        w->fail("strategy", "FP8 weight strategy \"" + strategy + "\" is not supported (channel, tensor, block)");
      }
    } else if (type == "int") {
      if (fmt == "pack-quantized") {
        if (bits != 4 && bits != 8) w->fail("num_bits", "pack-quantized weights must be 4- or 8-bit");
        if (strategy != "group" && strategy != "channel")
          w->fail("strategy", "int weight strategy \"" + strategy + "\" is not supported (group, channel)");
        if (group && group % 32) w->fail("group_size", "the group size must be a multiple of 32");
      } else if (fmt == "int-quantized" || fmt == "naive-quantized") {
        if (bits != 8 || strategy != "channel" || !sym)
          w->fail("num_bits", "int-quantized weights are supported as 8-bit symmetric per channel (W8A8's), not " +
                                  std::to_string(bits) + "-bit " + strategy + (sym ? "" : " asymmetric"));
      } else {
        g->fail("format", "int weights are supported in the \"pack-quantized\" and \"int-quantized\" formats, not \"" +
                              fmt + "\"");
      }
      s.format = QuantFormat::CompressedTensors;
      s.bits = bits;
      s.group_size = group ? group : -1;
      s.ct_format = fmt;
      s.ct_symmetric = sym;
      // Act-order with permuted groups (weight_g_idx): dequantized on load, as GPTQ's.
      s.act_order = fmt == "pack-quantized" && (actorder == "group" || actorder == "dynamic");
      s.act_order_bits = s.bits, s.act_order_group = s.group_size;
    } else {
      w->fail("type", "weight type \"" + type + "\" is not supported (int, float)");
    }
    const std::string this_scheme = type + fmt + std::to_string(bits) + strategy + std::to_string(group) +
                                    std::to_string(sym) + std::to_string(s.fp8_block_rows) + "x" +
                                    std::to_string(s.fp8_block_cols);
    if (scheme.empty()) scheme = this_scheme;
    else if (scheme != this_scheme)
      groups->fail(it.key(), "config groups with different weight schemes are not supported (one scheme per checkpoint)");
  }
  if (scheme.empty()) qc.fail("config_groups", "no config group quantizes weights");
  if (s.format != QuantFormat::CompressedTensors) s.format = QuantFormat::Fp8, s.bits = 8;
}

}  // namespace

namespace {

// The module a GGUF weight runs in: q / k / v and gate / up are fused into one weight.
std::string fused_module(std::string name) {
  for (const auto& [part, fused] : {std::pair<const char*, const char*>{".q_proj.", ".qkv."}, {".k_proj.", ".qkv."},
                                    {".v_proj.", ".qkv."}, {".gate_proj.", ".gate_up."}, {".up_proj.", ".gate_up."}})
    if (const size_t at = name.find(part); at != std::string::npos) return name.replace(at, std::strlen(part), fused);
  return name;
}

// Block-quantized (q4_0 .. q6_K, iq4_nl, iq4_xs), not a float type.
bool ggml_quantized(uint32_t type) {
  const std::string name = ggml_type_name(type);
  return name.starts_with("q") || name.starts_with("iq");
}

// A GGUF folder: the block types of its matrices and the bytes per weight the kernels read
// (decoder layers, lm_head) under format Gguf. False when no matrix is block-quantized.
bool scan_gguf(const std::string& dir, QuantSpec& s) {
  const Checkpoint ck = Checkpoint::open(dir);
  std::map<std::string, int> types;
  struct Fused {
    double params = 0;
    bool quantized = false, wide = false, f32_scales = false;
  };
  std::map<std::string, Fused> fused;
  bool any = false;
  for (const std::string& n : ck.names()) {
    const std::optional<uint32_t> t = ck.gguf_type(n);
    if (!t || !n.ends_with(".weight") || ck.info(n).shape.size() != 2) continue;
    ++types[ggml_type_name(*t)];
    Fused& f = fused[fused_module(n)];
    f.params += static_cast<double>(shape_numel(ck.info(n).shape));
    if (!ggml_quantized(*t)) continue;
    any = f.quantized = true;
    f.wide = f.wide || ggml_affine_bits(*t) != 4;
    f.f32_scales = f.f32_scales || ggml_type_name(*t).ends_with("_K");
  }
  if (!any) return false;
  for (const auto& [type, n] : types)
    s.gguf_types += (s.gguf_types.empty() ? "" : ", ") + type + " (" + std::to_string(n) + ")";
  // Float matrices fused with quantized ones and every part of a fused weight of mixed widths
  // run at 8 bits; a float matrix alone stays dense (bf16 counted here).
  auto bpw = [](const Fused& f) {
    return !f.quantized ? 2.0 : (f.wide ? 1.0 : 0.5) + (f.f32_scales ? 8.0 : 4.0) / 32;
  };
  double layer_params = 0, layer_bytes = 0;
  for (const auto& [name, f] : fused)
    if (name.find(".layers.") != std::string::npos) layer_params += f.params, layer_bytes += f.params * bpw(f);
  s.gguf_layer_bpw = layer_params > 0 ? layer_bytes / layer_params : 0;
  const auto head = fused.count("lm_head.weight") ? fused.find("lm_head.weight") : fused.find("model.embed_tokens.weight");
  s.gguf_head_bpw = head != fused.end() ? bpw(head->second) : 0;
  // The width most of the layers' weights take.
  double narrow = 0;
  for (const auto& [name, f] : fused)
    if (name.find(".layers.") != std::string::npos && f.quantized && !f.wide) narrow += f.params;
  s.bits = narrow * 2 >= layer_params ? 4 : 8;
  s.group_size = 32;
  return true;
}

}  // namespace

void QuantSpec::check_stored_in(const Checkpoint& ckpt) const {
  if (fp8_on_load) return;  // --quantization fp8 of a float checkpoint: format Fp8, nothing stored
  std::vector<const char*> marks;  // tensor name endings that only stored-quantized weights have
  switch (format) {
    case QuantFormat::Awq:
    case QuantFormat::Gptq: marks = {".qweight"}; break;
    case QuantFormat::Mlx: marks = {".scales"}; break;
    case QuantFormat::CompressedTensors: marks = {".weight_packed", ".weight_scale"}; break;
    case QuantFormat::Fp8: marks = {".weight_scale_inv", ".weight_scale"}; break;
    default: return;  // float checkpoints, quantized on load or not
  }
  for (const std::string& n : ckpt.names())
    for (const char* m : marks)
      if (n.ends_with(m)) return;
  TLLM_CHECK_ARG(false, source, " declares ", describe(), " weights, but ", ckpt.dir(),
                 " stores none (no tensor named *", marks.front(),
                 "): its weights are float; without the quantization config they load as such");
}

QuantSpec QuantSpec::resolve(const std::string& model_dir, const std::string& option, int group_size) {
  QuantSpec s;
  s.source = model_dir + "/config.json";
  if (file_exists(s.source)) {
    const nlohmann::json root = read_json_file(s.source);
    JsonFields f(root, s.source);
    const std::optional<JsonFields> qc = f.get_object("quantization_config");
    const std::optional<JsonFields> mlx = f.get_object("quantization");
    // MLX writes its "quantization" object a second time as quantization_config, without a
    // method; any other quantization_config must name one (transformers refuses it too).
    if (qc && !qc->has("quant_method") && !mlx)
      qc->fail("quant_method", "is missing: name the method that quantized the weights (awq, gptq, fp8, "
                               "compressed-tensors)");
    if (qc && qc->has("quant_method")) {
      const std::string method = lower(qc->require_string("quant_method"));
      if (method == "awq") {
        s.format = QuantFormat::Awq;
        const std::optional<int64_t> bits = qc->has("bits") ? qc->get_int("bits") : qc->get_int("w_bit");
        if (bits.value_or(4) != 4) qc->fail(qc->has("bits") ? "bits" : "w_bit", "AWQ checkpoints must be 4-bit");
        s.bits = 4;
        const std::optional<int64_t> g = qc->has("group_size") ? qc->get_int("group_size") : qc->get_int("q_group_size");
        if (!g) qc->fail("group_size", "AWQ group_size is required");
        if (*g <= 0 || *g % 32) qc->fail("group_size", "AWQ group size must be a positive multiple of 32");
        s.group_size = static_cast<int>(*g);
        if (!qc->get_bool("zero_point").value_or(true))
          qc->fail("zero_point", "AWQ without zero points is not supported (zero_point must be true)");
        const std::string version = lower(qc->get_string("version").value_or("gemm"));
        if (version != "gemm")
          qc->fail("version", "AWQ version \"" + version + "\" is not supported (only \"gemm\": qweight packed along "
                              "the output dimension in AWQ's order)");
      } else if (method == "gptq") {
        s.format = QuantFormat::Gptq;
        const int64_t bits = qc->require_int("bits");
        if (bits != 2 && bits != 4 && bits != 8) qc->fail("bits", "GPTQ bit width must be 2, 4 or 8");
        s.bits = static_cast<int>(bits);
        const int64_t g = qc->get_int("group_size").value_or(-1);
        if (g != -1 && (g <= 0 || g % 32)) qc->fail("group_size", "GPTQ group size must be -1 or a positive multiple of 32");
        s.group_size = static_cast<int>(g);
        // Act-order (permuted groups) has no int kernels here: dequantized on load.
        s.act_order = qc->get_bool("desc_act").value_or(false);
        const std::string fmt = lower(qc->get_string("checkpoint_format").value_or("gptq"));
        if (fmt == "gptq_v2") s.gptq_v2 = true;
        else if (fmt != "gptq")
          qc->fail("checkpoint_format", "GPTQ checkpoint format \"" + fmt + "\" is not supported (gptq, gptq_v2)");
        s.act_order_bits = s.bits, s.act_order_group = s.group_size;
      } else if (method == "fp8") {
        s.format = QuantFormat::Fp8;
        s.fp8 = true;
        s.bits = 8;
        s.fp8_fmt = lower(qc->get_string("fmt").value_or("e4m3"));
        if (s.fp8_fmt != "e4m3" && s.fp8_fmt != "e5m2")
          qc->fail("fmt", "FP8 format \"" + s.fp8_fmt + "\" is not supported (e4m3, e5m2)");
        const std::string act = lower(qc->get_string("activation_scheme").value_or("dynamic"));
        if (act != "dynamic" && act != "static")
          qc->fail("activation_scheme", "FP8 activation scheme \"" + act + "\" is not supported (dynamic, static)");
        if (qc->has("weight_block_size") && !qc->raw()["weight_block_size"].is_null()) {
          const nlohmann::json& b = qc->raw()["weight_block_size"];
          if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer() ||
              b[0].get<int64_t>() <= 0 || b[1].get<int64_t>() <= 0 || b[0].get<int64_t>() > (1 << 20) ||
              b[1].get<int64_t>() > (1 << 20))
            qc->fail("weight_block_size", "expected [rows, cols], two positive integers (e.g. [128, 128]), got " +
                                              b.dump());
          s.fp8_block_rows = static_cast<int>(b[0].get<int64_t>());
          s.fp8_block_cols = static_cast<int>(b[1].get<int64_t>());
        }
      } else if (method == "compressed-tensors") {
        parse_compressed_tensors(*qc, s);
      } else {
        qc->fail("quant_method", "quantization method \"" + method +
                                     "\" is not supported (awq, gptq, fp8, compressed-tensors, or MLX's "
                                     "\"quantization\" field)");
      }
    } else if (mlx) {
      s.format = QuantFormat::Mlx;
      const std::string mode = lower(mlx->get_string("mode").value_or("affine"));
      if (mode != "affine") mlx->fail("mode", "MLX quantization mode \"" + mode + "\" is not supported (affine)");
      auto check = [&](const JsonFields& o, int bits, int group) {
        if (bits != 2 && bits != 4 && bits != 8) o.fail("bits", "MLX bit width must be 2, 4 or 8");
        if (group <= 0 || group % 32) o.fail("group_size", "MLX group size must be a positive multiple of 32");
      };
      s.bits = mlx->require_int_in("bits", 1, 16);
      s.group_size = mlx->require_int_in("group_size", 1, 1 << 20);
      check(*mlx, s.bits, s.group_size);
      for (auto it = mlx->raw().begin(); it != mlx->raw().end(); ++it) {
        const std::string& key = it.key();
        if (key == "bits" || key == "group_size" || key == "mode") continue;
        if (it->is_boolean() && !it->get<bool>()) {
          s.mlx_overrides.push_back({key, {0, 0}});
        } else if (it->is_object()) {
          const std::optional<JsonFields> o = mlx->get_object(key);
          const int b = o->get_int_in("bits", 1, 16).value_or(s.bits);
          const int g = o->get_int_in("group_size", 1, 1 << 20).value_or(s.group_size);
          check(*o, b, g);
          s.mlx_overrides.push_back({key, {b, g}});
        } else if (!it->is_boolean()) {
          mlx->fail(key, "expected a per-module object {\"bits\", \"group_size\"} or false");
        }
      }
    }
  }
  const std::string opt = lower(option);
  // A folder made from a GGUF file: its blocks as they are, unless --quantization says none
  // (decoded to floats) or int8 / int4 (the decoded weights quantized again).
  if (s.format == QuantFormat::None && file_exists(model_dir + "/gguf_tensors.json") && scan_gguf(model_dir, s)) {
    s.format = QuantFormat::Gguf;
    s.source = model_dir + "/gguf_tensors.json";
  }
  if (opt == "none") {
    if (s.format == QuantFormat::Gguf) s.format = QuantFormat::None;
    return s;
  }
  // vLLM's --quantization also names the checkpoint's own method (awq, gptq, fp8, ...): that
  // is a statement about the checkpoint, checked here and otherwise without effect.
  const std::vector<std::pair<std::string, QuantFormat>> kNamed = {
      {"awq", QuantFormat::Awq},        {"awq_marlin", QuantFormat::Awq},
      {"gptq", QuantFormat::Gptq},      {"gptq_marlin", QuantFormat::Gptq},
      {"fp8", QuantFormat::Fp8},        {"compressed-tensors", QuantFormat::CompressedTensors},
      {"mlx", QuantFormat::Mlx},        {"compressed_tensors", QuantFormat::CompressedTensors},
      {"gguf", QuantFormat::Gguf}};
  for (const auto& [name, fmt] : kNamed) {
    if (opt != name) continue;
    const bool ct_fp8 = fmt == QuantFormat::CompressedTensors && s.format == QuantFormat::Fp8 && !s.ct_format.empty();
    if (s.format == fmt || ct_fp8 || (fmt == QuantFormat::Fp8 && s.fp8)) return s;
    if (fmt == QuantFormat::Fp8 && s.format == QuantFormat::None) {
      // A float checkpoint quantized to e4m3 on load, in Qwen's FP8 layout (128 x 128 blocks).
      s.format = QuantFormat::Fp8;
      s.fp8 = s.fp8_on_load = true;
      s.fp8_fmt = "e4m3";
      s.fp8_block_rows = s.fp8_block_cols = 128;
      s.bits = 8;
      return s;
    }
    throw InvalidArgument("--quantization " + option + " names the checkpoint's quantization method, but " +
                          s.source + " describes " +
                          (s.format == QuantFormat::None ? std::string("an unquantized checkpoint")
                                                         : std::string("a checkpoint quantized with ") +
                                                               quant_format_name(s.format)) +
                          " (leave --quantization out, or give int8 / int4 to quantize a float checkpoint on load)");
  }
  if (!option.empty()) {
    // FP8 and act-order weights are dequantized on load, so they can be quantized on too.
    TLLM_CHECK_ARG(s.format == QuantFormat::None || s.format == QuantFormat::Gguf || s.dequantized_on_load(),
                   s.source, " describes a pre-quantized (", quant_format_name(s.format),
                   ") checkpoint; --quantization ", option,
                   " applies to float, FP8, GGUF and act-order checkpoints only (leave it out)");
    s.format = QuantFormat::OnLoad;
    if (option == "int8") {
      s.bits = 8;
      s.group_size = 0;
    } else if (option == "int4") {
      s.bits = 4;
      TLLM_CHECK_ARG(group_size == 32 || group_size == 64 || group_size == 128, "--quant-group-size ", group_size,
                     " is not supported for int4 (32, 64, 128)");
      s.group_size = group_size;
    } else {
      throw InvalidArgument("--quantization " + option +
                            " is not supported (int8, int4 to quantize on load; none; or the checkpoint's own "
                            "method: awq, gptq, fp8, compressed-tensors, mlx, gguf)");
    }
  }
  return s;
}

std::string QuantSpec::describe() const {
  std::string d = quant_format_name(format);
  if (format == QuantFormat::None) return d;
  std::string from;
  if (fp8) {
    from = "fp8 " + fp8_fmt +
           (fp8_block_rows == 1 && fp8_block_cols == 0 ? ", per-channel scales"
            : fp8_block_rows ? ", blocks " + std::to_string(fp8_block_rows) + "x" + std::to_string(fp8_block_cols)
                             : ", one scale per matrix");
    if (format == QuantFormat::Fp8)
      return (fp8_on_load ? "quantize-on-load " : "") + from +
             (fp8_native() ? ", FP8 kernels (W8A16)" : ", dequantized on load");
    from = " (from " + from + ")";
  }
  if (act_order) {
    from = (ct_format.empty() ? "gptq " : "compressed-tensors ") + std::to_string(act_order_bits) +
           "-bit act-order" + (act_order_group < 0 ? "" : ", group " + std::to_string(act_order_group));
    if (format != QuantFormat::OnLoad) return from + ", dequantized on load";
    from = " (from " + from + ")";
  }
  if (format == QuantFormat::Gguf) return "gguf blocks as stored: " + gguf_types + "; codes in groups of 32";
  if (format == QuantFormat::OnLoad && bits == 8) return d + " 8-bit per channel" + from;
  if (format == QuantFormat::CompressedTensors) d += " " + ct_format;
  d += " " + std::to_string(bits) + "-bit";
  d += group_size < 0 ? ", one group per row" : ", group " + std::to_string(group_size);
  return d + from;
}

double quant_bytes_per_weight(const QuantSpec& spec, bool head, DType dense) {
  const double dense_bytes = static_cast<double>(dtype_size(dense));
  if (spec.dequantized_on_load()) return dense_bytes;
  switch (spec.format) {
    case QuantFormat::None: return dense_bytes;
    case QuantFormat::Fp8:  // e4m3 bytes and an f32 scale per row and block (Qwen keeps its lm_head dense)
      if (head) return dense_bytes;
      return 1.0 + (spec.fp8_block_cols > 0 ? 4.0 / spec.fp8_block_cols : 0.0);
    case QuantFormat::OnLoad:
      // int8: one f16 scale and offset per row (negligible); int4: f16 pair per group.
      if (head || spec.bits == 8) return 1.0;
      return 0.5 + 4.0 / spec.group_size;
    case QuantFormat::Mlx: return (spec.bits <= 4 ? 0.5 : 1.0) + 4.0 / spec.group_size;  // f16 when exact
    case QuantFormat::Gguf: return head ? spec.gguf_head_bpw : spec.gguf_layer_bpw;
    case QuantFormat::Awq:
    case QuantFormat::Gptq:
    case QuantFormat::CompressedTensors:
      if (head) return dense_bytes;
      // f16 scales, offsets -scale * zero usually need f32; one group per row: negligible.
      return (spec.bits <= 4 ? 0.5 : 1.0) + (spec.group_size > 0 ? 6.0 / spec.group_size : 0.0);
  }
  return dense_bytes;
}

// --- codecs ------------------------------------------------------------------------------

QuantizedMatrix quantize_int8_per_channel(const float* w, int64_t rows, int64_t cols, ThreadPool* pool) {
  QuantizedMatrix m = empty_matrix(rows, cols, 8, static_cast<int>(cols));
  parallel_rows(pool, rows, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* x = w + r * cols;
      float amax = 0.0f;
      for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[c]));
      const float s = round_to(amax / 127.0f, DType::F16);
      const float inv = s > 0.0f ? 1.0f / s : 0.0f;
      uint8_t* q = m.codes.data<uint8_t>() + r * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const float v = round_even(std::min(std::max(x[c] * inv, -127.0f), 127.0f));
        q[c] = static_cast<uint8_t>(static_cast<int>(v) + 128);
      }
      m.scales.data<float>()[r] = s;
      m.offsets.data<float>()[r] = -128.0f * s;
    }
  });
  return m;
}

QuantizedMatrix quantize_affine(const float* w, int64_t rows, int64_t cols, int bits, int group_size,
                                DType scale_dtype, ThreadPool* pool) {
  TLLM_CHECK(bits == 4 || bits == 8, "quantize_affine: bits must be 4 or 8");
  TLLM_CHECK(group_size > 0 && (group_size % 32 == 0 || group_size >= cols), "quantize_affine: group size ",
             group_size, " unsupported");
  QuantizedMatrix m = empty_matrix(rows, cols, bits, group_size);
  const int64_t G = m.groups();
  const int64_t gs = std::min<int64_t>(group_size, cols);
  const float qmax = static_cast<float>((1 << bits) - 1);
  parallel_rows(pool, rows, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      for (int64_t g = 0; g < G; ++g) {
        const int64_t c0 = g * gs, c1 = std::min(cols, c0 + gs);
        const float* x = w + r * cols;
        float lo = x[c0], hi = x[c0];
        for (int64_t c = c0; c < c1; ++c) {
          lo = std::min(lo, x[c]);
          hi = std::max(hi, x[c]);
        }
        const float s = round_to((hi - lo) / qmax, scale_dtype);
        const float o = round_to(lo, scale_dtype);
        const float inv = s > 0.0f ? 1.0f / s : 0.0f;
        uint8_t* q = m.codes.data<uint8_t>() + r * cols;
        for (int64_t c = c0; c < c1; ++c)
          q[c] = static_cast<uint8_t>(round_even(std::min(std::max((x[c] - o) * inv, 0.0f), qmax)));
        m.scales.data<float>()[r * G + g] = s;
        m.offsets.data<float>()[r * G + g] = o;
      }
  });
  return m;
}

QuantizedMatrix decode_gguf(const Checkpoint& ck, const std::string& name, int64_t rows, int64_t cols,
                            ThreadPool* pool) {
  const std::optional<Checkpoint::GgufRows> g = ck.gguf_rows(name);
  TLLM_CHECK(g.has_value(), ck.dir(), ": ", name, " is not a GGUF tensor");
  TLLM_CHECK_ARG(g->rows == rows && g->cols == cols, ck.dir(), ": GGUF tensor ", name, " is [", g->rows, ", ", g->cols,
                 "], the model expects [", rows, ", ", cols, "]");
  const int bits = ggml_affine_bits(g->type);
  const bool q6k = ggml_type_name(g->type) == "q6_K";
  if ((bits == 0 && !q6k) || cols % 32 != 0) {
    // Floats fused with quantized weights: 8-bit codes.
    const Tensor h = ck.get(name);
    Tensor f = Tensor::empty(h.shape(), DType::F32);
    host_to_f32(h, f.data<float>(), pool);
    return quantize_affine(f.data<float>(), rows, cols, 8, 32, DType::F16, pool);
  }
  QuantizedMatrix m = empty_matrix(rows, cols, bits == 4 ? 4 : 8, 32);
  const int64_t G = cols / 32;
  parallel_rows(pool, rows, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      uint8_t* q = m.codes.data<uint8_t>() + r * cols;
      float* sc = m.scales.data<float>() + r * G;
      float* of = m.offsets.data<float>() + r * G;
      if (q6k) ggml_q6_K_groups(g->row[r], cols, q, sc, of);
      else ggml_affine_groups(g->type, g->row[r], cols, q, sc, of);
    }
  });
  return m;
}

QuantizedMatrix decode_mlx(const Tensor& weight, const Tensor& scales, const Tensor& biases, int64_t rows,
                           int64_t cols, int bits, int group_size, const std::string& what) {
  TLLM_CHECK(bits == 2 || bits == 4 || bits == 8, what, ": MLX ", bits, "-bit weights are not supported (2, 4, 8)");
  TLLM_CHECK(cols % group_size == 0, what, ": in_features ", cols, " is not a multiple of the group size ", group_size);
  const int per = 32 / bits;
  TLLM_CHECK(cols % per == 0, what, ": in_features ", cols, " is not a multiple of ", per);
  const int64_t words = cols / per, G = cols / group_size;
  expect(weight, what + ".weight", {DType::U32, DType::I32}, {rows, words}, what);
  expect(scales, what + ".scales", {DType::F32, DType::BF16, DType::F16}, {rows, G}, what);
  expect(biases, what + ".biases", {DType::F32, DType::BF16, DType::F16}, {rows, G}, what);
  QuantizedMatrix m = empty_matrix(rows, cols, kernel_bits(bits), group_size);
  const uint32_t mask = (1u << bits) - 1u;
  const uint32_t* src = static_cast<const uint32_t*>(weight.raw());
  uint8_t* q = m.codes.data<uint8_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t wi = 0; wi < words; ++wi) {
      const uint32_t v = src[r * words + wi];
      for (int j = 0; j < per; ++j) q[r * cols + wi * per + j] = static_cast<uint8_t>((v >> (bits * j)) & mask);
    }
  host_to_f32(scales, m.scales.data<float>());
  host_to_f32(biases, m.offsets.data<float>());
  return m;
}

QuantizedMatrix decode_awq(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, int64_t rows,
                           int64_t cols, int group_size, const std::string& what) {
  TLLM_CHECK(rows % 8 == 0, what, ": out_features ", rows, " is not a multiple of 8 (AWQ packs 8 outputs per word)");
  TLLM_CHECK(cols % group_size == 0, what, ": in_features ", cols, " is not a multiple of the group size ", group_size);
  const int64_t G = cols / group_size, W = rows / 8;
  expect(qweight, what + ".qweight", {DType::I32, DType::U32}, {cols, W}, what);
  expect(qzeros, what + ".qzeros", {DType::I32, DType::U32}, {G, W}, what);
  expect(scales, what + ".scales", {DType::F16, DType::BF16, DType::F32}, {G, rows}, what);
  // Nibble i of a packed word holds output column 8 j + kOrder[i] (AutoAWQ's pack order).
  static constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  QuantizedMatrix m = empty_matrix(rows, cols, 4, group_size);
  const uint32_t* qw = static_cast<const uint32_t*>(qweight.raw());
  const uint32_t* qz = static_cast<const uint32_t*>(qzeros.raw());
  uint8_t* q = m.codes.data<uint8_t>();
  for (int64_t k = 0; k < cols; ++k)
    for (int64_t j = 0; j < W; ++j) {
      const uint32_t v = qw[k * W + j];
      for (int i = 0; i < 8; ++i) q[(8 * j + kOrder[i]) * cols + k] = static_cast<uint8_t>((v >> (4 * i)) & 15u);
    }
  for (int64_t g = 0; g < G; ++g)
    for (int64_t j = 0; j < W; ++j) {
      const uint32_t v = qz[g * W + j];
      for (int i = 0; i < 8; ++i) {
        const int64_t n = 8 * j + kOrder[i];
        const float s = float_at(scales, g * rows + n);
        const float z = static_cast<float>((v >> (4 * i)) & 15u);
        m.scales.data<float>()[n * G + g] = s;
        m.offsets.data<float>()[n * G + g] = -(s * z);  // exact: an f16 times a 4-bit integer
      }
    }
  return m;
}

namespace {

// A GPTQ module's codes, with the scale and offset of each (row, group); group g is the
// inputs k with g_idx[k] = g (k / group_size when not act-order). Shapes checked.
QuantizedMatrix gptq_unpacked(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, int64_t rows,
                              int64_t cols, int bits, int group_size, bool v2, const std::string& what) {
  TLLM_CHECK(bits == 2 || bits == 4 || bits == 8, what, ": GPTQ ", bits, "-bit weights are not supported (2, 4, 8)");
  const int per = 32 / bits;
  const int64_t gs = group_size < 0 ? cols : group_size;
  TLLM_CHECK(cols % per == 0 && rows % per == 0, what, ": [", rows, ", ", cols, "] must be multiples of ", per,
             " for ", bits, "-bit GPTQ packing");
  TLLM_CHECK(cols % gs == 0, what, ": in_features ", cols, " is not a multiple of the group size ", gs);
  const int64_t G = cols / gs;
  expect(qweight, what + ".qweight", {DType::I32, DType::U32}, {cols / per, rows}, what);
  expect(qzeros, what + ".qzeros", {DType::I32, DType::U32}, {G, rows / per}, what);
  expect(scales, what + ".scales", {DType::F16, DType::BF16, DType::F32}, {G, rows}, what);
  QuantizedMatrix m = empty_matrix(rows, cols, kernel_bits(bits), static_cast<int>(gs));
  const uint32_t mask = (1u << bits) - 1u;
  const uint32_t* qw = static_cast<const uint32_t*>(qweight.raw());
  const uint32_t* qz = static_cast<const uint32_t*>(qzeros.raw());
  uint8_t* q = m.codes.data<uint8_t>();
  for (int64_t i = 0; i < cols / per; ++i)
    for (int64_t n = 0; n < rows; ++n) {
      const uint32_t v = qw[i * rows + n];
      for (int j = 0; j < per; ++j) q[n * cols + i * per + j] = static_cast<uint8_t>((v >> (bits * j)) & mask);
    }
  for (int64_t g = 0; g < G; ++g)
    for (int64_t c = 0; c < rows / per; ++c) {
      const uint32_t v = qz[g * (rows / per) + c];
      for (int j = 0; j < per; ++j) {
        const int64_t n = c * per + j;
        const float z = static_cast<float>(((v >> (bits * j)) & mask) + (v2 ? 0u : 1u));
        const float s = float_at(scales, g * rows + n);
        m.scales.data<float>()[n * G + g] = s;
        m.offsets.data<float>()[n * G + g] = -(s * z);  // exact: an f16 times an integer <= 256
      }
    }
  return m;
}

// Element k of an i32 or i64 tensor.
int64_t int_at(const Tensor& t, int64_t k) {
  return t.dtype() == DType::I32 ? t.data<int32_t>()[k] : t.data<int64_t>()[k];
}

}  // namespace

QuantizedMatrix decode_gptq(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, const Tensor& g_idx,
                            int64_t rows, int64_t cols, int bits, int group_size, bool v2, const std::string& what) {
  QuantizedMatrix m = gptq_unpacked(qweight, qzeros, scales, rows, cols, bits, group_size, v2, what);
  if (g_idx.defined()) {
    expect(g_idx, what + ".g_idx", {DType::I32, DType::I64}, {cols}, what);
    const int64_t gs = m.group_size;
    for (int64_t k = 0; k < cols; ++k)
      TLLM_CHECK(int_at(g_idx, k) == k / gs, what, ".g_idx[", k, "] = ", int_at(g_idx, k), " but ", k / gs,
                 " was expected: act-order (desc_act) GPTQ weights have no int kernels here (the checkpoint's "
                 "config.json must then say desc_act true, and they are dequantized on load)");
  }
  return m;
}

namespace {

// A pack-quantized module's codes, with the scale and offset of each (row, group); shapes
// checked (g_idx left to the callers).
QuantizedMatrix ct_unpacked(const Tensor& packed, const Tensor& scale, const Tensor& zero_point, const Tensor& shape,
                            int64_t rows, int64_t cols, int bits, int group_size, const std::string& what) {
  TLLM_CHECK(bits == 4 || bits == 8, what, ": pack-quantized ", bits, "-bit weights are not supported (4, 8)");
  const int per = 32 / bits;
  const int64_t gs = group_size < 0 ? cols : group_size;
  TLLM_CHECK(cols % gs == 0, what, ": in_features ", cols, " is not a multiple of the group size ", gs);
  const int64_t G = cols / gs, P = (cols + per - 1) / per;
  expect(packed, what + ".weight_packed", {DType::I32, DType::U32}, {rows, P}, what);
  expect(scale, what + ".weight_scale", {DType::F16, DType::BF16, DType::F32}, {rows, G}, what);
  if (shape.defined()) {
    TLLM_CHECK((shape.dtype() == DType::I32 || shape.dtype() == DType::I64) && shape.numel() == 2, what,
               ": weight_shape must be two integers, got ", shape.str());
    const int64_t r = int_at(shape, 0), c = int_at(shape, 1);
    TLLM_CHECK(r == rows && c == cols, what, ": weight_shape is [", r, ", ", c, "], expected [", rows, ", ", cols, "]");
  }
  const uint32_t mask = (1u << bits) - 1u;
  if (zero_point.defined())
    expect(zero_point, what + ".weight_zero_point", {DType::I32, DType::U32}, {(rows + per - 1) / per, G}, what);
  QuantizedMatrix m = empty_matrix(rows, cols, bits, static_cast<int>(gs));
  const uint32_t* pw = static_cast<const uint32_t*>(packed.raw());
  uint8_t* q = m.codes.data<uint8_t>();
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t k = 0; k < cols; ++k)
      q[n * cols + k] = static_cast<uint8_t>((pw[n * P + k / per] >> (bits * (k % per))) & mask);
  // Codes and zero points are stored offset by 2^(bits-1): W = (q - z) * s with both offset.
  const uint32_t* zp = zero_point.defined() ? static_cast<const uint32_t*>(zero_point.raw()) : nullptr;
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t g = 0; g < G; ++g) {
      const float s = float_at(scale, n * G + g);
      const float z = zp ? static_cast<float>((zp[(n / per) * G + g] >> (bits * (n % per))) & mask)
                         : static_cast<float>(1u << (bits - 1));
      m.scales.data<float>()[n * G + g] = s;
      m.offsets.data<float>()[n * G + g] = -(s * z);  // exact for f16 / bf16 scales
    }
  return m;
}

// f32 [rows, cols] of a matrix whose input k belongs to group group[k].
Tensor dequantize_grouped(const QuantizedMatrix& m, const std::vector<int64_t>& group) {
  const int64_t G = m.groups();
  Tensor out = Tensor::empty({m.rows, m.cols}, DType::F32);
  for (int64_t n = 0; n < m.rows; ++n)
    for (int64_t k = 0; k < m.cols; ++k) {
      const int64_t i = n * G + group[k];
      const float prod = m.scales.data<float>()[i] * static_cast<float>(m.codes.data<uint8_t>()[n * m.cols + k]);
      out.data<float>()[n * m.cols + k] = prod + m.offsets.data<float>()[i];
    }
  return out;
}

// The group of every input: g_idx (checked to name groups 0..G-1), or k / group_size.
std::vector<int64_t> groups_of(const Tensor& g_idx, int64_t cols, int64_t group_size, const std::string& name,
                               const std::string& what) {
  const int64_t G = cols / group_size;
  std::vector<int64_t> group(static_cast<size_t>(cols));
  if (!g_idx.defined()) {
    for (int64_t k = 0; k < cols; ++k) group[k] = k / group_size;
    return group;
  }
  expect(g_idx, what + "." + name, {DType::I32, DType::I64}, {cols}, what);
  for (int64_t k = 0; k < cols; ++k) {
    group[k] = int_at(g_idx, k);
    TLLM_CHECK(group[k] >= 0 && group[k] < G, what, ".", name, "[", k, "] = ", group[k], " is not a group (0..",
               G - 1, ")");
  }
  return group;
}

}  // namespace

Tensor dequantize_gptq(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, const Tensor& g_idx,
                       int64_t rows, int64_t cols, int bits, int group_size, bool v2, const std::string& what) {
  const QuantizedMatrix m = gptq_unpacked(qweight, qzeros, scales, rows, cols, bits, group_size, v2, what);
  return dequantize_grouped(m, groups_of(g_idx, cols, m.group_size, "g_idx", what));
}

QuantizedMatrix decode_ct_packed(const Tensor& packed, const Tensor& scale, const Tensor& zero_point,
                                 const Tensor& g_idx, const Tensor& shape, int64_t rows, int64_t cols, int bits,
                                 int group_size, const std::string& what) {
  QuantizedMatrix m = ct_unpacked(packed, scale, zero_point, shape, rows, cols, bits, group_size, what);
  const std::vector<int64_t> group = groups_of(g_idx, cols, m.group_size, "weight_g_idx", what);
  for (int64_t k = 0; k < cols; ++k)
    TLLM_CHECK(group[k] == k / m.group_size, what, ".weight_g_idx[", k, "] = ", group[k], " but ", k / m.group_size,
               " was expected: act-order weights (permuted groups) have no int kernels here (the config must then "
               "say actorder \"group\", and they are dequantized on load)");
  return m;
}

Tensor dequantize_ct_packed(const Tensor& packed, const Tensor& scale, const Tensor& zero_point, const Tensor& g_idx,
                            const Tensor& shape, int64_t rows, int64_t cols, int bits, int group_size,
                            const std::string& what) {
  const QuantizedMatrix m = ct_unpacked(packed, scale, zero_point, shape, rows, cols, bits, group_size, what);
  return dequantize_grouped(m, groups_of(g_idx, cols, m.group_size, "weight_g_idx", what));
}

QuantizedMatrix decode_ct_int8(const Tensor& weight, const Tensor& scale, int64_t rows, int64_t cols,
                               const std::string& what) {
  expect(weight, what + ".weight", {DType::I8}, {rows, cols}, what);
  const Shape col{rows, 1}, flat{rows};
  TLLM_CHECK(dtype_is_float(scale.dtype()) && scale.dtype() != DType::F64 && (scale.shape() == col || scale.shape() == flat),
             what, ": weight_scale has shape ", shape_str(scale.shape()), " and dtype ", dtype_name(scale.dtype()),
             ", expected [", rows, ", 1] f32, bf16 or f16 (per channel)");
  QuantizedMatrix m = empty_matrix(rows, cols, 8, static_cast<int>(cols));
  for (int64_t i = 0; i < rows * cols; ++i)
    m.codes.data<uint8_t>()[i] = static_cast<uint8_t>(weight.data<int8_t>()[i] + 128);
  for (int64_t n = 0; n < rows; ++n) {
    const float s = float_at(scale, n);
    m.scales.data<float>()[n] = s;
    m.offsets.data<float>()[n] = -(s * 128.0f);  // W = (code - 128) * s
  }
  return m;
}

MlxTensors encode_mlx(const QuantizedMatrix& m, DType scale_dtype) {
  const int bits = m.bits;
  const int per = 32 / bits;
  TLLM_CHECK(m.cols % per == 0 && m.cols % m.group_size == 0, "MLX encoding needs in_features ", m.cols,
             " to be a multiple of the group size ", m.group_size);
  const int64_t words = m.cols / per, G = m.groups();
  MlxTensors t;
  t.weight = Tensor::empty({m.rows, words}, DType::U32);
  t.scales = Tensor::empty({m.rows, G}, scale_dtype);
  t.biases = Tensor::empty({m.rows, G}, scale_dtype);
  uint32_t* dst = t.weight.data<uint32_t>();
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t w = 0; w < words; ++w) {
      uint32_t v = 0;
      for (int j = 0; j < per; ++j) v |= static_cast<uint32_t>(m.codes.data<uint8_t>()[r * m.cols + w * per + j]) << (bits * j);
      dst[r * words + w] = v;
    }
  for (int64_t i = 0; i < m.rows * G; ++i) {
    const float s = m.scales.data<float>()[i], o = m.offsets.data<float>()[i];
    if (scale_dtype == DType::F32) {
      t.scales.data<float>()[i] = s;
      t.biases.data<float>()[i] = o;
    } else {
      const bool f16 = scale_dtype == DType::F16;
      const uint16_t hs = f16 ? f32_to_f16(s) : f32_to_bf16(s), ho = f16 ? f32_to_f16(o) : f32_to_bf16(o);
      TLLM_CHECK((f16 ? f16_to_f32(hs) : bf16_to_f32(hs)) == s && (f16 ? f16_to_f32(ho) : bf16_to_f32(ho)) == o,
                 "MLX encoding: scale ", s, " or offset ", o, " is not exact in ", dtype_name(scale_dtype));
      t.scales.data<uint16_t>()[i] = hs;
      t.biases.data<uint16_t>()[i] = ho;
    }
  }
  return t;
}

QuantizedMatrix slice_matrix(const QuantizedMatrix& m, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                             const std::string& what) {
  if (r0 == 0 && nr == m.rows && c0 == 0 && nc == m.cols) return m;
  TLLM_ASSERT(r0 >= 0 && r0 + nr <= m.rows && c0 >= 0 && c0 + nc <= m.cols);
  const bool per_row = m.groups() == 1;  // one scale per row: any columns keep it
  TLLM_CHECK_ARG(per_row || (c0 % m.group_size == 0 && nc % m.group_size == 0), what, ": the ", nc,
                 " columns of one tensor-parallel rank are not whole groups of ", m.group_size,
                 "; use a tensor parallel size that splits them into whole groups");
  QuantizedMatrix out = empty_matrix(nr, nc, m.bits, per_row ? static_cast<int>(nc) : m.group_size);
  out.fp8 = m.fp8;
  const int64_t g0 = per_row ? 0 : c0 / m.group_size, ng = out.groups();
  for (int64_t r = 0; r < nr; ++r) {
    std::memcpy(out.codes.data<uint8_t>() + r * nc, m.codes.data<uint8_t>() + (r0 + r) * m.cols + c0,
                static_cast<size_t>(nc));
    std::memcpy(out.scales.data<float>() + r * ng, m.scales.data<float>() + (r0 + r) * m.groups() + g0,
                static_cast<size_t>(ng) * sizeof(float));
    std::memcpy(out.offsets.data<float>() + r * ng, m.offsets.data<float>() + (r0 + r) * m.groups() + g0,
                static_cast<size_t>(ng) * sizeof(float));
  }
  return out;
}

QuantizedMatrix stack_rows(const std::vector<QuantizedMatrix>& parts) {
  TLLM_ASSERT(!parts.empty());
  if (parts.size() == 1) return parts[0];
  int64_t rows = 0;
  for (const QuantizedMatrix& p : parts) {
    TLLM_CHECK(p.cols == parts[0].cols && p.bits == parts[0].bits && p.fp8 == parts[0].fp8 &&
                   p.group_size == parts[0].group_size,
               "stacking quantized matrices of different shapes or schemes");
    rows += p.rows;
  }
  QuantizedMatrix m = empty_matrix(rows, parts[0].cols, parts[0].bits, parts[0].group_size);
  m.fp8 = parts[0].fp8;
  size_t oc = 0, os = 0;
  for (const QuantizedMatrix& p : parts) {
    std::memcpy(m.codes.data<uint8_t>() + oc, p.codes.raw(), p.codes.nbytes());
    std::memcpy(m.scales.data<float>() + os, p.scales.raw(), p.scales.nbytes());
    std::memcpy(m.offsets.data<float>() + os, p.offsets.raw(), p.offsets.nbytes());
    oc += p.codes.numel();
    os += p.scales.numel();
  }
  return m;
}

namespace {

// An FP8 weight's block scales, checked against its shape (dequantize_fp8 / decode_fp8).
struct Fp8Blocks {
  int64_t rows = 0, cols = 0, block_rows = 0, block_cols = 0, sc = 0;  // sc: blocks per row of blocks
  std::vector<float> scale;                                              // [rows of blocks][sc]
  float at(int64_t r, int64_t c) const { return scale[(r / block_rows) * sc + c / block_cols]; }
};

Fp8Blocks fp8_blocks(const Tensor& weight, const Tensor& scale, int64_t block_rows, int64_t block_cols,
                     const std::string& what) {
  TLLM_CHECK(dtype_is_fp8(weight.dtype()), what, ": weight has dtype ",
             dtype_name(weight.dtype()), ", expected f8e4m3 or f8e5m2");
  TLLM_CHECK(weight.ndim() == 2, what, ": FP8 weight of shape ", shape_str(weight.shape()), ", expected [rows, cols]");
  Fp8Blocks b;
  b.rows = weight.dim(0), b.cols = weight.dim(1);
  b.block_rows = block_rows <= 0 ? b.rows : block_rows;  // 0: the block spans the matrix that way
  b.block_cols = block_cols <= 0 ? b.cols : block_cols;
  const int64_t sr = (b.rows + b.block_rows - 1) / b.block_rows;
  b.sc = (b.cols + b.block_cols - 1) / b.block_cols;
  TLLM_CHECK(dtype_is_float(scale.dtype()) && scale.dtype() != DType::F64, what, ": scale has dtype ",
             dtype_name(scale.dtype()), ", expected f32, bf16 or f16");
  const Shape want{sr, b.sc};
  const bool one = sr * b.sc == 1 && scale.numel() == 1;  // [], [1] or [1, 1]
  TLLM_CHECK(one || scale.shape() == want, what, ": scale has shape ", shape_str(scale.shape()),
             ", expected ", shape_str(want), " (blocks of ", b.block_rows, " x ", b.block_cols, " over ",
             shape_str(weight.shape()), ")");
  b.scale.resize(static_cast<size_t>(sr * b.sc));
  for (int64_t i = 0; i < sr * b.sc; ++i) {
    b.scale[i] = float_at(scale, i);
    TLLM_CHECK(std::isfinite(b.scale[i]), what, ": scale [", i / b.sc, ", ", i % b.sc, "] is ", b.scale[i]);
  }
  // A code that is NaN / infinite is reported with its place.
  const int64_t j = fp8_first_non_finite(weight.dtype(), weight.data<uint8_t>(), weight.numel());
  TLLM_CHECK(j < 0, what, ": FP8 code 0x", std::hex, static_cast<int>(weight.data<uint8_t>()[j < 0 ? 0 : j]), std::dec,
             " at [", j / b.cols, ", ", j % b.cols, "] is not a finite number (", dtype_name(weight.dtype()), ")");
  return b;
}

}  // namespace

Tensor dequantize_fp8(const Tensor& weight, const Tensor& scale, int64_t block_rows, int64_t block_cols,
                      const std::string& what, ThreadPool* pool) {
  const Fp8Blocks b = fp8_blocks(weight, scale, block_rows, block_cols, what);
  const DType t = weight.dtype();
  float lut[256];  // the 256 code values once
  for (int c = 0; c < 256; ++c)
    lut[c] = t == DType::F8E4M3 ? fp8_e4m3_to_f32(static_cast<uint8_t>(c)) : fp8_e5m2_to_f32(static_cast<uint8_t>(c));
  const int64_t cols = b.cols;
  Tensor out = Tensor::empty({b.rows, cols}, DType::F32);
  const uint8_t* q = weight.data<uint8_t>();
  float* o = out.data<float>();
  parallel_rows(pool, b.rows, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* srow = b.scale.data() + (r / b.block_rows) * b.sc;
      for (int64_t c = 0; c < cols; ++c) o[r * cols + c] = lut[q[r * cols + c]] * srow[c / b.block_cols];
    }
  });
  return out;
}

QuantizedMatrix quantize_fp8(const float* w, int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols,
                             ThreadPool* pool) {
  if (block_rows <= 0) block_rows = rows;
  if (block_cols <= 0) block_cols = cols;
  QuantizedMatrix m = empty_matrix(rows, cols, 8, static_cast<int>(block_cols));
  m.fp8 = true;
  const int64_t G = m.groups(), sr = (rows + block_rows - 1) / block_rows;
  std::fill_n(m.offsets.data<float>(), m.offsets.numel(), 0.0f);
  // Each row's largest |w| per group (in parallel over rows: a MoE expert has few row blocks),
  // then each block's scale, then the codes.
  std::vector<float> rmax(static_cast<size_t>(rows * G));
  parallel_rows(pool, rows, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r)
      for (int64_t g = 0; g < G; ++g) {
        float mx = 0.0f;
        for (int64_t c = g * block_cols; c < std::min(cols, (g + 1) * block_cols); ++c)
          mx = std::max(mx, std::fabs(w[r * cols + c]));
        TLLM_CHECK(std::isfinite(mx), "--quantization fp8: a weight in row ", r, " is not finite");
        rmax[r * G + g] = mx;
      }
  });
  for (int64_t b = 0; b < sr; ++b)
    for (int64_t g = 0; g < G; ++g) {
      float amax = 0.0f;
      for (int64_t r = b * block_rows; r < std::min(rows, (b + 1) * block_rows); ++r) amax = std::max(amax, rmax[r * G + g]);
      const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
      for (int64_t r = b * block_rows; r < std::min(rows, (b + 1) * block_rows); ++r) m.scales.data<float>()[r * G + g] = scale;
    }
  parallel_rows(pool, rows, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r)
      for (int64_t g = 0; g < G; ++g) {
        const float s = m.scales.data<float>()[r * G + g];
        uint8_t* q = m.codes.data<uint8_t>() + r * cols;
        for (int64_t c = g * block_cols; c < std::min(cols, (g + 1) * block_cols); ++c) q[c] = f32_to_fp8_e4m3(w[r * cols + c] / s);
      }
  });
  return m;
}

QuantizedMatrix decode_fp8(const Tensor& weight, const Tensor& scale, int64_t block_rows, int64_t block_cols,
                           const std::string& what) {
  TLLM_CHECK(weight.dtype() == DType::F8E4M3, what, ": FP8 kernels take e4m3 weights, not ", dtype_name(weight.dtype()));
  const Fp8Blocks b = fp8_blocks(weight, scale, block_rows, block_cols, what);
  QuantizedMatrix m = empty_matrix(b.rows, b.cols, 8, static_cast<int>(b.block_cols));
  m.fp8 = true;
  std::memcpy(m.codes.raw(), weight.raw(), static_cast<size_t>(weight.nbytes()));
  const int64_t G = m.groups();
  float* s = m.scales.data<float>();
  for (int64_t r = 0; r < b.rows; ++r)
    for (int64_t g = 0; g < G; ++g) s[r * G + g] = b.at(r, g * b.block_cols);
  std::fill_n(m.offsets.data<float>(), m.offsets.numel(), 0.0f);
  return m;
}

std::string fp8_scale_name(const Checkpoint& ckpt, const std::string& module) {
  for (const char* suffix : {".weight_scale_inv", ".weight_scale"})
    if (ckpt.has(module + suffix)) return module + suffix;
  return "";
}

// --- loading ------------------------------------------------------------------------------

namespace {

// The dense weights `names` quantized by `quantize` (f32 [rows, cols] -> QuantizedMatrix) one
// part at a time and stacked: the int quantizers work row by row, so the codes are those of
// the concatenated matrix (FP8 blocks are each part's own, as an FP8 checkpoint stores each
// module), and only one part's dense and f32 copies are alive at once (a Qwen3-30B-A3B layer
// fuses 256 expert matrices: 2.4 GB of transients otherwise).
template <typename Quantize>
QuantizedMatrix quantize_parts(WeightLoader& w, const std::vector<std::string>& names, const std::vector<int64_t>& rows,
                               int64_t in_features, const WeightSlice& slice, ThreadPool* pool, Quantize&& quantize) {
  std::vector<QuantizedMatrix> parts;
  for (size_t i = 0; i < names.size(); ++i) {
    // Tensor parallelism: the whole tensor is quantized, then this rank's block is kept (the
    // codes and groups of every rank are those of one device).
    if (!slice.whole()) {
      const QuantizedMatrix q = quantize_parts(w, {names[i]}, {slice.rows_in_checkpoint(i, rows[i])},
                                               slice.cols_in_checkpoint(in_features), WeightSlice{}, pool, quantize);
      parts.push_back(slice_matrix(q, slice.row_start(i), rows[i], slice.col0, in_features, names[i]));
      continue;
    }
    Tensor h = w.host(names[i], {rows[i], in_features});
    Tensor f = h;
    if (h.dtype() != DType::F32) {
      f = Tensor::empty(h.shape(), DType::F32);
      host_to_f32(h, f.data<float>(), pool);
    }
    parts.push_back(quantize(f.data<float>(), rows[i], in_features));
  }
  return stack_rows(parts);
}

// The scale tensor of the FP8 weight `name`, once the weight's shape is checked against
// `shape` and the scale is found (Qwen's weight_scale_inv or weight_scale); the weight, its
// scale and any static input_scale are marked used.
std::string claim_fp8_weight(WeightLoader& w, const Checkpoint& ck, const std::string& name, const Shape& shape) {
  const TensorInfo& info = ck.info(name);
  TLLM_CHECK(info.shape == shape, "tensor \"", name, "\" in ", info.file, ": expected shape ", shape_str(shape),
             ", got ", shape_str(info.shape));
  const std::string module = module_of(name);
  const std::string scale = fp8_scale_name(ck, module);
  TLLM_CHECK(!scale.empty(), "checkpoint ", ck.dir(), " (fp8) has no tensor \"", module,
             ".weight_scale_inv\" for the FP8 weight \"", name, "\"");
  w.mark_used(name);
  w.mark_used(scale);
  if (ck.has(module + ".input_scale")) w.mark_used(module + ".input_scale");  // static activation scale
  return scale;
}

}  // namespace

QuantLoader::QuantLoader(QuantSpec spec) : spec_(std::move(spec)), pool_(std::make_unique<ThreadPool>(0)) {}
QuantLoader::~QuantLoader() = default;

std::optional<std::pair<int, int>> QuantLoader::stored_scheme(const Checkpoint& ckpt, const std::string& module) const {
  switch (spec_.format) {
    case QuantFormat::Mlx: {
      if (!ckpt.has(module + ".scales")) {
        // Codes packed in uint32 (or the biases of a quantized module) without the scales: a
        // quantized module that lost a tensor, not a float one.
        const bool packed = ckpt.has(module + ".weight") && ckpt.info(module + ".weight").dtype == DType::U32;
        TLLM_CHECK_ARG(!packed && !ckpt.has(module + ".biases"), ckpt.dir(), ": ", module,
                       packed ? ".weight holds packed codes (uint32)" : ".biases is there", " but ", module,
                       ".scales is missing");
        return std::nullopt;
      }
      std::pair<int, int> s{spec_.bits, spec_.group_size};
      for (const auto& [key, v] : spec_.mlx_overrides)
        if (key == module) s = v;
      TLLM_CHECK(s.first != 0, spec_.source, ": module ", module, " is marked unquantized but has ", module,
                 ".scales in the checkpoint");
      return s;
    }
    case QuantFormat::Awq:
    case QuantFormat::Gptq:
      if (!ckpt.has(module + ".qweight")) return std::nullopt;
      return std::pair<int, int>{spec_.bits, spec_.group_size};
    case QuantFormat::CompressedTensors:
      if (ckpt.has(module + ".weight_packed")) return std::pair<int, int>{spec_.bits, spec_.group_size};
      if (ckpt.has(module + ".weight") && ckpt.info(module + ".weight").dtype == DType::I8 &&
          ckpt.has(module + ".weight_scale"))
        return std::pair<int, int>{8, -1};  // int-quantized, per channel
      return std::nullopt;                  // dense (or FP8, dequantized as a dense weight)
    case QuantFormat::Gguf: {
      const std::string name = module + ".weight";
      if (!ckpt.has(name)) return std::nullopt;
      const std::optional<uint32_t> t = ckpt.gguf_type(name);
      if (!t || !ggml_quantized(*t)) return std::nullopt;
      return std::pair<int, int>{ggml_affine_bits(*t) == 4 ? 4 : 8, 32};
    }
    default: return std::nullopt;
  }
}

QuantizedMatrix QuantLoader::decode(WeightLoader& w, const std::string& module, int64_t rows, int64_t cols, int bits,
                                    int group) {
  const Checkpoint& ck = *w.checkpoint();
  auto get = [&](const std::string& suffix, bool required = true) {
    const std::string name = module + suffix;
    if (!ck.has(name)) {
      TLLM_CHECK(!required, "checkpoint ", ck.dir(), " (", quant_format_name(spec_.format), ") has no tensor \"", name,
                 "\"");
      return Tensor();
    }
    w.mark_used(name);
    return ck.get(name);
  };
  const std::string what = ck.dir() + ": " + module;
  switch (spec_.format) {
    case QuantFormat::Mlx:
      return decode_mlx(get(".weight"), get(".scales"), get(".biases"), rows, cols, bits, group, what);
    case QuantFormat::Awq:
      return decode_awq(get(".qweight"), get(".qzeros"), get(".scales"), rows, cols, group, what);
    case QuantFormat::Gptq:
      return decode_gptq(get(".qweight"), get(".qzeros"), get(".scales"), get(".g_idx", false), rows, cols, bits, group,
                         spec_.gptq_v2, what);
    case QuantFormat::CompressedTensors:
      if (ck.has(module + ".input_scale")) get(".input_scale");  // static activation scales: read past
      if (ck.has(module + ".input_zero_point")) get(".input_zero_point");
      if (ck.has(module + ".weight_packed"))
        // Asymmetric weights without their zero points would decode around the midpoint,
        // silently wrong: the tensor is required then (get names it when absent).
        return decode_ct_packed(get(".weight_packed"), get(".weight_scale"), get(".weight_zero_point", !spec_.ct_symmetric),
                                get(".weight_g_idx", false), get(".weight_shape", false), rows, cols, bits, group,
                                what);
      return decode_ct_int8(get(".weight"), get(".weight_scale"), rows, cols, what);
    case QuantFormat::Gguf:  // its own width; linear() widens parts fused with wider ones
      w.mark_used(module + ".weight");
      return decode_gguf(ck, module + ".weight", rows, cols, pool_.get());
    default: TLLM_THROW("internal error: decode of ", quant_format_name(spec_.format));
  }
}

LinearWeight QuantLoader::pack(WeightLoader& w, const QuantizedMatrix& m) {
  LinearWeight lw = w.backend().pack_quantized(m, w.weight_dtype() == DType::F32);
  w.add_uploaded_bytes(lw.weight.nbytes() + lw.scales.nbytes() + (lw.zeros.defined() ? lw.zeros.nbytes() : 0));
  return lw;
}

std::optional<LinearWeight> QuantLoader::fp8_linear(WeightLoader& w, const std::vector<std::string>& names,
                                                    const std::vector<int64_t>& rows, int64_t in_features,
                                                    const WeightSlice& slice) {
  const int64_t full_cols = slice.cols_in_checkpoint(in_features);
  const Checkpoint* ck = w.checkpoint();
  const bool lm_head = names.size() == 1 && names[0] == "lm_head.weight";
  if (spec_.fp8_on_load || !ck) {
    // --quantization fp8, or an FP8 model's dummy weights: the dense weights quantized here,
    // one part at a time; the lm_head stays dense, as in Qwen's FP8 checkpoints (and vLLM's).
    if (lm_head) return std::nullopt;
    return pack(w, quantize_parts(w, names, rows, in_features, slice, pool_.get(),
                                  [&](const float* f, int64_t r, int64_t c) {
                                    return quantize_fp8(f, r, c, spec_.fp8_block_rows, spec_.fp8_block_cols, pool_.get());
                                  }));
  }
  for (const std::string& n : names)
    if (!ck->has(n) || ck->info(n).dtype != DType::F8E4M3) return std::nullopt;  // dense, or dequantized parts
  // The kernels' scale segments: a group of block_cols columns must divide or be a multiple
  // of their 64-column tile (Qwen's 128 x 128 blocks; per-channel and per-tensor scales).
  const int64_t group = spec_.fp8_block_cols <= 0 ? full_cols : spec_.fp8_block_cols;
  if (in_features % 8 != 0 || (group < full_cols && group % 64 != 0 && group != 32)) {
    TLLM_LOG(Info, "weights: ", names[0], " (FP8 blocks of ", group, " columns over ", in_features,
             ") is dequantized: the FP8 kernels take blocks of 32 or a multiple of 64 columns");
    return std::nullopt;
  }
  if (group < full_cols && (slice.col0 % group != 0 || in_features % group != 0)) {
    TLLM_LOG(Info, "weights: ", names[0], " (FP8 blocks of ", group, " columns) is dequantized: a tensor-parallel ",
             "rank's ", in_features, " columns are not whole blocks");
    return std::nullopt;
  }
  std::vector<QuantizedMatrix> parts;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string scale = claim_fp8_weight(w, *ck, names[i], {slice.rows_in_checkpoint(i, rows[i]), full_cols});
    parts.push_back(slice_matrix(decode_fp8(ck->get(names[i]), ck->get(scale), spec_.fp8_block_rows,
                                            spec_.fp8_block_cols, ck->dir() + ": " + names[i]),
                                 slice.row_start(i), rows[i], slice.col0, in_features, names[i]));
  }
  return pack(w, stack_rows(parts));
}

std::optional<LinearWeight> QuantLoader::linear(WeightLoader& w, const std::vector<std::string>& names,
                                                const std::vector<int64_t>& rows, int64_t in_features,
                                                const WeightSlice& slice) {
  if (spec_.fp8_native()) return fp8_linear(w, names, rows, in_features, slice);
  if (spec_.format == QuantFormat::None || spec_.dequantized_on_load())
    return std::nullopt;  // dense (WeightLoader::host has dequantized() give the f32 weights)
  const bool lm_head = names.size() == 1 && names[0] == "lm_head.weight";
  const Checkpoint* ck = w.checkpoint();
  if (!ck && lm_head &&
      (spec_.format == QuantFormat::Awq || spec_.format == QuantFormat::Gptq ||
       spec_.format == QuantFormat::CompressedTensors))
    return std::nullopt;  // dummy weights of an AWQ / GPTQ model: their lm_head is dense
  if (spec_.format == QuantFormat::OnLoad || !ck) {
    // Quantize the dense weights (also pre-quantized formats with dummy weights: benchmarks).
    const int bits = lm_head ? 8 : kernel_bits(spec_.bits);
    const int64_t cols = slice.cols_in_checkpoint(in_features);  // the checkpoint's (TP: all ranks')
    const int group = spec_.group_size < 0 ? static_cast<int>(cols) : spec_.group_size;
    const bool per_channel = bits == 8 && (lm_head || spec_.format == QuantFormat::OnLoad);
    return pack(w, quantize_parts(w, names, rows, in_features, slice, pool_.get(), [&](const float* f, int64_t r, int64_t c) {
                                    return per_channel ? quantize_int8_per_channel(f, r, c, pool_.get())
                                                       : quantize_affine(f, r, c, bits, group, DType::F16, pool_.get());
                                  }));
  }
  // Pre-quantized: every part stored with one scheme (or all dense).
  std::vector<std::optional<std::pair<int, int>>> schemes;
  bool any = false, all_same = true;
  for (const std::string& n : names) {
    schemes.push_back(stored_scheme(*ck, module_of(n)));
    any = any || schemes.back().has_value();
    all_same = all_same && schemes.back() == schemes.front();
  }
  if (!any) return std::nullopt;
  if (spec_.format == QuantFormat::Gguf)  // float parts beside quantized ones: 8-bit codes (decode_gguf)
    for (auto& sc : schemes)
      if (!sc) sc = std::pair<int, int>{8, 32};
  std::vector<QuantizedMatrix> parts;
  const size_t quantized_part = static_cast<size_t>(
      std::find_if(schemes.begin(), schemes.end(), [](const auto& sc) { return sc.has_value(); }) - schemes.begin());
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string module = module_of(names[i]);
    TLLM_CHECK(schemes[i].has_value(), ck->dir(), ": ", module, " is stored unquantized but ",
               module_of(names[quantized_part]),
               " is quantized; they are fused into one weight and must share their format");
    // Tensor parallelism: the whole tensor decoded, then this rank's block kept.
    parts.push_back(slice_matrix(decode(w, module, slice.rows_in_checkpoint(i, rows[i]),
                                        slice.cols_in_checkpoint(in_features), schemes[i]->first, schemes[i]->second),
                                 slice.row_start(i), rows[i], slice.col0, in_features, module));
  }
  if (!all_same) {
    // Different bit widths or groups (MLX mixed recipes): widen to the common kernel scheme
    // when the groups agree, else the parts cannot be fused.
    int bits = 4;
    for (const QuantizedMatrix& p : parts) bits = std::max(bits, p.bits);
    for (QuantizedMatrix& p : parts) {
      TLLM_CHECK(p.group_size == parts[0].group_size, ck->dir(), ": ", module_of(names[0]),
                 " and the weights fused with it use different group sizes (", parts[0].group_size, " vs ",
                 p.group_size, ")");
      p.bits = bits;
    }
  }
  return pack(w, stack_rows(parts));
}

std::optional<Tensor> QuantLoader::dequantized(WeightLoader& w, const std::string& name, const Shape& shape) {
  const Checkpoint* ck = w.checkpoint();
  if (!ck || shape.size() != 2 || !ends_with(name, ".weight")) return std::nullopt;
  if (spec_.act_order) {
    const std::string module = module_of(name);
    auto get = [&](const std::string& suffix) {
      w.mark_used(module + suffix);
      return ck->has(module + suffix) ? ck->get(module + suffix) : Tensor();
    };
    const std::string what = ck->dir() + ": " + module;
    if (ck->has(module + ".qweight"))
      return dequantize_gptq(get(".qweight"), get(".qzeros"), get(".scales"), get(".g_idx"), shape[0], shape[1],
                             spec_.act_order_bits, spec_.act_order_group, spec_.gptq_v2, what);
    if (ck->has(module + ".weight_packed"))
      return dequantize_ct_packed(get(".weight_packed"), get(".weight_scale"), get(".weight_zero_point"),
                                  get(".weight_g_idx"), get(".weight_shape"), shape[0], shape[1],
                                  spec_.act_order_bits, spec_.act_order_group, what);
  }
  if (spec_.fp8 && ck->has(name)) {
    const TensorInfo& info = ck->info(name);
    if (!dtype_is_fp8(info.dtype)) return std::nullopt;
    const std::string scale = claim_fp8_weight(w, *ck, name, shape);
    return dequantize_fp8(ck->get(name), ck->get(scale), spec_.fp8_block_rows, spec_.fp8_block_cols,
                          ck->dir() + ": " + name, pool_.get());
  }
  if (spec_.format != QuantFormat::Mlx && spec_.format != QuantFormat::Awq && spec_.format != QuantFormat::Gptq &&
      spec_.format != QuantFormat::CompressedTensors)
    return std::nullopt;
  const std::string module = module_of(name);
  const std::optional<std::pair<int, int>> s = stored_scheme(*ck, module);
  if (!s) return std::nullopt;
  const QuantizedMatrix m = decode(w, module, shape[0], shape[1], s->first, s->second);
  std::vector<int64_t> group(static_cast<size_t>(m.cols));
  for (int64_t c = 0; c < m.cols; ++c) group[c] = m.group_of(c);
  return dequantize_grouped(m, group);
}

std::optional<LinearWeight> QuantLoader::embedding(WeightLoader& w, const std::string& name, int64_t vocab,
                                                   int64_t hidden) {
  if (spec_.format == QuantFormat::None || spec_.format == QuantFormat::Fp8 || spec_.dequantized_on_load())
    return std::nullopt;  // FP8: an embedding stored as FP8 is dequantized (WeightLoader::host)
  const Checkpoint* ck = w.checkpoint();
  if (spec_.format == QuantFormat::OnLoad || (!ck && spec_.format == QuantFormat::Mlx)) {
    Tensor h = w.host(name, {vocab, hidden});
    Tensor f = Tensor::empty(h.shape(), DType::F32);
    host_to_f32(h, f.data<float>(), pool_.get());
    return pack(w, quantize_int8_per_channel(f.data<float>(), vocab, hidden, pool_.get()));
  }
  if (!ck) return std::nullopt;
  const std::string module = module_of(name);
  const std::optional<std::pair<int, int>> s = stored_scheme(*ck, module);
  if (!s) return std::nullopt;
  return pack(w, decode(w, module, vocab, hidden, s->first, s->second));
}

}  // namespace tllm
