// GGUF weights run as stored (model/quant.h, format Gguf): the blocks' codes, scales and
// offsets against the floats the file's blocks stand for, and a model loaded from a quantized
// GGUF against its twin, the same file with every block-quantized weight stored as those
// floats (scripts/gguf/write_gguf.py --decoded). On the CPU's exact path (f32 weights dtype:
// f32 activations times the codes' exact values) the two give the same logits within f32
// rounding, for every block type whose groups of 32 are affine; q6_K (a scale per 16 values)
// is quantized again as 8-bit codes and lands within that requantization's error.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_model.h"
#include "io/safetensors.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/quant.h"
#include "quant_model_util.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;
using test::max_abs;
using test::max_diff;

std::string python() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

class GgufQuant : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("tllm_gguf_quant_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // The folder of `model` (a checkpoint under the source tree) written as a GGUF file with
  // write_gguf.py's `args`.
  fs::path folder(const std::string& model, const std::string& label, const std::string& args) {
    const fs::path file = dir_ / (label + ".gguf");
    const std::string cmd = python() + " " + TLLM_SOURCE_DIR + "/scripts/gguf/write_gguf.py model " +
                            (fs::path(TLLM_SOURCE_DIR) / model).string() + " " + file.string() + " " + args;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return materialize_gguf(file.string(), (dir_ / "cache").string());
  }
  fs::path dir_;
};


Tensor logits_of(const fs::path& dir, DType wdt, const std::vector<int32_t>& prompt, const std::string& q = "") {
  auto be = make_cpu_backend({2});
  return test::model_logits(*be, dir, wdt, prompt, q, 64);
}

// Every affine block type of write_gguf.py's random blocks: code * scale + offset is the
// decoded float bit for bit (the sum rounded once, as ggml's own), codes within their width,
// and the offsets of the types without a stored one are the fixed multiples of the scale.
// q6_K's 8-bit groups: the larger-scale half of each exact, the other within half a code.
TEST_F(GgufQuant, AffineGroupsAreTheBlocksValues) {
  const fs::path file = dir_ / "b.gguf", floats = dir_ / "b.f32";
  const std::string cmd = python() + " " + TLLM_SOURCE_DIR + "/scripts/gguf/write_gguf.py blocks " + file.string() +
                          " " + floats.string() + " --seed 5";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto g = GgufFile::open(file.string());
  int affine = 0;
  for (const auto& [name, info] : g->tensors()) {
    const int bits = ggml_affine_bits(info.type);
    const std::string type = ggml_type_name(info.type);
    if (bits == 0) {
      ASSERT_EQ(type, "q6_K");
      // q6_K: per group of 32 one half exact, the other within half a code (1/8 of the
      // exact half's step), so code * scale + offset stays within |scale| / 2 everywhere.
      const Tensor want = g->tensor_floats(name);
      const int64_t n = want.numel();
      std::vector<uint8_t> q(n);
      std::vector<float> sc(n / 32), of(n / 32);
      ggml_q6_K_groups(g->tensor_bytes(name), n, q.data(), sc.data(), of.data());
      int exact = 0;
      for (int64_t k = 0; k < n / 32; ++k) {
        ASSERT_EQ(of[k], -128.f * sc[k]) << "group " << k;
        int halves = 0;
        for (int h = 0; h < 2; ++h) {
          bool all = true;
          for (int64_t i = 32 * k + 16 * h; i < 32 * k + 16 * h + 16; ++i) {
            const double v = (static_cast<double>(q[i]) - 128) * sc[k], w = want.data<float>()[i];
            ASSERT_LE(std::fabs(v - w), 0.5 * std::fabs(sc[k]) + 1e-12) << "q6_K[" << i << "]";
            all = all && v == w;
          }
          halves += all;
        }
        ASSERT_GE(halves, 1) << "q6_K group " << k << ": neither half exact";
        exact += halves;
      }
      std::printf("q6_K: %d of %lld halves exact\n", exact, static_cast<long long>(n / 16));
      continue;
    }
    ++affine;
    const Tensor want = g->tensor_floats(name);
    const int64_t n = want.numel();
    std::vector<uint8_t> q(n);
    std::vector<float> sc(n / 32), of(n / 32);
    ggml_affine_groups(info.type, g->tensor_bytes(name), n, q.data(), sc.data(), of.data());
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_LT(q[i], 1 << bits) << type << "[" << i << "]";
      const float v = static_cast<float>(static_cast<double>(q[i]) * sc[i / 32] + of[i / 32]);
      if (v != want.data<float>()[i] && ++bad < 4)
        ADD_FAILURE() << type << "[" << i << "]: " << v << " != " << want.data<float>()[i];
    }
    EXPECT_EQ(bad, 0) << type;
    const float fixed = type == "q4_0"   ? -8.f
                        : type == "q5_0" ? -16.f
                        : type == "q8_0" ? -128.f
                        : type == "q3_K" || type.starts_with("iq4") ? -127.f
                                                                    : 0.f;
    if (fixed != 0) {
      for (int64_t k = 0; k < n / 32; ++k) ASSERT_EQ(of[k], fixed * sc[k]) << type << " group " << k;
    }
  }
  EXPECT_EQ(affine, 10);
}

struct TwinCase {
  std::string model, type;
  bool exact;  // every weight affine in groups of 32 (no q6_K requantized)
};

class GgufTwins : public GgufQuant, public ::testing::WithParamInterface<TwinCase> {};

// The model from the quantized file against its decoded twin: the same logits within f32
// rounding where the blocks run as stored; with q6_K weights quantized again at 8 bits, KL
// within that rounding's. The default path (bf16 weights dtype: activations rounded to int8
// per block on the CPU) stays close to the twin too.
TEST_P(GgufTwins, SameLogitsAsTheDecodedTwin) {
  const TwinCase c = GetParam();
  const fs::path q = folder(c.model, c.type, "--type " + c.type);
  const fs::path d = folder(c.model, c.type + "_decoded", "--type " + c.type + " --decoded");
  const QuantSpec spec = QuantSpec::resolve(q.string(), "", 64);
  ASSERT_EQ(spec.format, QuantFormat::Gguf) << spec.describe();
  EXPECT_EQ(QuantSpec::resolve(d.string(), "", 64).format, QuantFormat::None);
  std::printf("[ %s %s ] %s\n", c.model.c_str(), c.type.c_str(), spec.describe().c_str());

  const std::vector<int32_t> prompt = test::random_prompt(13, 384, 11);
  const Tensor dense = logits_of(d, DType::F32, prompt);
  const Tensor exact = logits_of(q, DType::F32, prompt);
  const double scale = max_abs(dense), diff = max_diff(exact, dense);
  const auto [kl, top1] = test::kl_top1(dense, exact);
  std::printf("[ %s %s ] exact path max|diff| %.3g of max|logit| %.3g, KL %.3g, top-1 %.3f\n", c.model.c_str(),
              c.type.c_str(), diff, scale, kl, top1);
  if (c.exact) {
    EXPECT_LE(diff, 2e-6 * scale + 1e-6) << c.type;
  } else {
    EXPECT_LT(kl, 2e-3) << c.type;
    EXPECT_GE(top1, 0.9) << c.type;
  }
  // --quantization none decodes the blocks: the twin's logits exactly.
  const Tensor none = logits_of(q, DType::F32, prompt, "none");
  EXPECT_EQ(max_diff(none, dense), 0.0) << c.type;
  const Tensor fast = logits_of(q, DType::BF16, prompt);
  const auto [kl_fast, top1_fast] = test::kl_top1(dense, fast);
  std::printf("[ %s %s ] default path KL %.3g, top-1 %.3f\n", c.model.c_str(), c.type.c_str(), kl_fast, top1_fast);
  // On the sharp random MoE models a token whose router scores tie closely goes to other
  // experts once the experts' inputs are rounded to int8 (KL 0.04-0.4 over 13 rows, one of
  // them off); the exact path above is what checks the experts' blocks there.
  if (c.model.find("moe") == std::string::npos) {
    EXPECT_LT(kl_fast, 0.02) << c.type;
  }
  EXPECT_GE(top1_fast, 0.8) << c.type;
}

INSTANTIATE_TEST_SUITE_P(
    Types, GgufTwins,
    ::testing::Values(TwinCase{"models/tiny-qwen2-demo", "q4_0", true}, TwinCase{"models/tiny-qwen2-demo", "q4_1", true},
                      TwinCase{"models/tiny-qwen2-demo", "q5_0", true}, TwinCase{"models/tiny-qwen2-demo", "q5_1", true},
                      TwinCase{"models/tiny-qwen2-demo", "q8_0", true}, TwinCase{"models/tiny-qwen2-demo", "q4_K", true},
                      TwinCase{"models/tiny-qwen2-demo", "q5_K", true},
                      // 8-bit codes that give the blocks' values exactly: q3_K's 3-bit value
                      // times its scale per 16, iq4_nl's and iq4_xs's table values.
                      TwinCase{"models/tiny-qwen2-demo", "q3_K", true},
                      TwinCase{"models/tiny-qwen2-demo", "iq4_nl", true},
                      TwinCase{"models/tiny-qwen2-demo", "iq4_xs", true},
                      TwinCase{"models/tiny-qwen2-demo", "mixed3", true},
                      TwinCase{"models/tiny-qwen2-demo", "q6_K", false},
                      TwinCase{"models/tiny-qwen2-demo", "mixed", false},
                      // Llama's q / k rows in llama.cpp's rotary order (undone row by row);
                      // 128-wide rows: the K-quants fall back to q5_0 / q5_1 / q8_0.
                      TwinCase{"tests/data/models/llama_bias_hd64", "q4_0", true},
                      TwinCase{"tests/data/models/llama_bias_hd64", "q4_K", true},
                      TwinCase{"tests/data/models/llama_bias_hd64", "q3_K", true},  // iq4_nl rows
                      TwinCase{"tests/data/models/qwen3_hd128", "q5_K", true},
                      // Mixtures of experts: each expert a slice of the layer's stacked
                      // [E, rows, cols] blocks (qwen2_moe's 48-wide expert down stays f32).
                      TwinCase{"tests/data/models/qwen3_moe_hd64", "q4_0", true},
                      TwinCase{"tests/data/models/qwen3_moe_hd64", "q8_0", true},
                      TwinCase{"tests/data/models/qwen2_moe", "q4_1", true}),
    [](const auto& info) {
      std::string name = fs::path(info.param.model).filename().string() + "_" + info.param.type;
      for (char& ch : name)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return name;
    });

// What --quantization does with a GGUF folder: the blocks by default (or "gguf"), decoded
// floats with "none", the decoded weights quantized again with int8 / int4, and a method the
// file does not use refused by name. A float GGUF has nothing to run as stored.
TEST_F(GgufQuant, QuantizationOptionOnGgufFolders) {
  const fs::path q = folder("models/tiny-qwen2-demo", "mixed", "--type mixed");
  const QuantSpec s = QuantSpec::resolve(q.string(), "", 64);
  EXPECT_EQ(s.format, QuantFormat::Gguf);
  EXPECT_EQ(s.describe(), "gguf blocks as stored: q4_K (31), q6_K (12); codes in groups of 32")
      << "(the demo model: 6 layers of q, k, o, gate, up in q4_K, v and down in q6_K, the tied embedding in q4_K)";
  // Decoder layers: q|k|v fused with a q6_K part run at 8 bits, o and gate|up at 4; f32 scales.
  EXPECT_GT(s.gguf_layer_bpw, 0.5);
  EXPECT_LT(s.gguf_layer_bpw, 1.25);
  EXPECT_DOUBLE_EQ(s.gguf_head_bpw, 0.75);
  EXPECT_EQ(QuantSpec::resolve(q.string(), "gguf", 64).format, QuantFormat::Gguf);
  EXPECT_EQ(QuantSpec::resolve(q.string(), "none", 64).format, QuantFormat::None);
  const QuantSpec i4 = QuantSpec::resolve(q.string(), "int4", 32);
  EXPECT_EQ(i4.format, QuantFormat::OnLoad);
  EXPECT_EQ(i4.bits, 4);
  EXPECT_EQ(i4.group_size, 32);
  EXPECT_EQ(QuantSpec::resolve(q.string(), "int8", 64).bits, 8);
  try {
    QuantSpec::resolve(q.string(), "awq", 64);
    ADD_FAILURE() << "awq accepted for a GGUF folder";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("a checkpoint quantized with gguf"), std::string::npos) << e.what();
  }
  const fs::path f16 = folder("models/tiny-qwen2-demo", "f16", "--type f16");
  EXPECT_EQ(QuantSpec::resolve(f16.string(), "", 64).format, QuantFormat::None);
  try {
    QuantSpec::resolve(f16.string(), "gguf", 64);
    ADD_FAILURE() << "gguf accepted for a float GGUF";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("an unquantized checkpoint"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tllm
