// ModelConfig::matrix_elements, the count a load checks against the GPU's free memory (or the
// host's) before it loads anything (qwen2.cpp check_weights_fit): against the bytes the loader actually
// uploads for every test checkpoint. In bf16 those bytes are exactly 2 per matrix element
// plus 4 per vector element (norms, biases, the shared expert's gate, kept in f32), the
// vectors counted here from the config by hand; quantized, at least half a byte per element.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "../quant/quant_model_util.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/model.h"

namespace tllm {
namespace {

const std::filesystem::path kModels = std::filesystem::path(TLLM_SOURCE_DIR) / "tests/data/models";

// Elements of every vector the loader keeps in f32.
int64_t vector_elements(const ModelConfig& c) {
  int64_t n = c.hidden_size;  // the final norm
  for (int l = 0; l < c.num_layers; ++l) {
    n += 2 * int64_t{c.hidden_size};  // input and post-attention norms
    if (c.qk_norm) n += 2 * int64_t{c.head_dim};
    if (c.qkv_bias) n += c.q_size() + 2 * int64_t{c.kv_size()};
    if (c.o_bias) n += c.hidden_size;
    if (c.layer_is_moe(l) && c.shared_expert_intermediate_size > 0) n += c.hidden_size;
  }
  return n;
}

std::unique_ptr<CausalLM> load(Backend& be, const std::string& name, const std::string& quantization = "",
                               bool pooling = false) {
  return test::load_test_model(be, kModels / name, DType::BF16, quantization, 64, pooling);
}

TEST(WeightBytes, Bf16WeightsAreTwoBytesPerMatrixElementPlusTheVectors) {
  auto be = make_cpu_backend({1});
  // Dense (tied and not), Qwen3 with q/k norms, Llama with o biases, both MoE kinds, sharded.
  for (const char* name : {"qwen2_tied", "qwen2_untied", "qwen3_hd128", "llama_bias_hd64", "qwen2_moe",
                           "qwen3_moe", "qwen2_sharded"}) {
    SCOPED_TRACE(name);
    auto m = load(*be, name);
    const ModelConfig& c = m->config();
    EXPECT_EQ(m->weight_bytes(), static_cast<size_t>(2 * c.matrix_elements(true) + 4 * vector_elements(c)));
  }
}

TEST(WeightBytes, APoolingModelKeepsNoLmHead) {
  auto be = make_cpu_backend({1});
  auto m = load(*be, "qwen2_untied", "", /*pooling=*/true);
  const ModelConfig& c = m->config();
  ASSERT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(m->weight_bytes(), static_cast<size_t>(2 * c.matrix_elements(false) + 4 * vector_elements(c)));
  EXPECT_EQ(c.matrix_elements(true) - c.matrix_elements(false), int64_t{c.vocab_size} * c.hidden_size);
}

TEST(WeightBytes, QuantizedWeightsKeepAtLeastHalfAByteAnElement) {
  auto be = make_cpu_backend({1});
  struct Case {
    const char* model;
    const char* quantization;
  };
  for (const Case& k : {Case{"qwen2_untied", "int4"}, Case{"qwen2_moe", "int4"}, Case{"qwen3_hd128", "int8"},
                        Case{"qwen3_w4a16_ct", ""}, Case{"qwen3_fp8", ""}}) {
    SCOPED_TRACE(std::string(k.model) + " " + k.quantization);
    auto m = load(*be, k.model, k.quantization);
    const double per_element = static_cast<double>(m->weight_bytes()) / static_cast<double>(m->config().matrix_elements(true));
    EXPECT_GE(per_element, 0.5);
    EXPECT_LT(per_element, 2.5);  // and the count is the model's (not, say, a layer's)
  }
}

}  // namespace
}  // namespace tllm
