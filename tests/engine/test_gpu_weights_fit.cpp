// Weights larger than the GPU are refused before anything is uploaded (qwen2.cpp
// check_weights_fit), with the bytes they need at least and what to change, instead of an
// out-of-memory error after loading what fits. Qwen2.5-72B's widths at 100 layers in bf16
// (168 GiB of matrices) and at 400 layers quantized to int4 (164 GiB even at 4 bits) exceed
// an H100's 80 GB and an H200's 141. Skips without a GPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/error.h"
#include "engine/engine.h"
#include "kernels/backend.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;

// bench/configs/qwen2.5-7b with the 72B's widths and `layers` layers, in a folder of its own.
fs::path write_large_config(const std::string& name, int layers) {
  std::ifstream in(fs::path(TLLM_SOURCE_DIR) / "bench/configs/qwen2.5-7b/config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  j["hidden_size"] = 8192;
  j["intermediate_size"] = 29568;
  j["num_attention_heads"] = 64;
  j["num_key_value_heads"] = 8;
  j["num_hidden_layers"] = layers;
  j["max_window_layers"] = layers;
  const fs::path dir = fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << j.dump(2);
  return dir;
}

std::string load_error(const fs::path& dir, const std::string& quantization) {
  EngineConfig c;
  c.model_dir = dir.string();
  c.device = "cuda";
  c.load_format = "dummy";
  c.quantization = quantization;
  c.num_kv_blocks = 16;
  c.max_model_len = 64;
  try {
    LLMEngine engine(c);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(GpuWeightsFit, WeightsLargerThanTheGpuAreRefusedBeforeLoading) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  const fs::path wide = write_large_config("tinyllm_q100", 100);
  const std::string bf16 = load_error(wide, "");
  EXPECT_NE(bf16.find("do not fit on cuda:0"), std::string::npos) << bf16;
  EXPECT_NE(bf16.find("they need at least 168.1 GiB (90.26 billion"), std::string::npos) << bf16;
  EXPECT_NE(bf16.find("as bf16)"), std::string::npos) << bf16;
  EXPECT_NE(bf16.find("use --quantization int4"), std::string::npos) << bf16;

  const fs::path huge = write_large_config("tinyllm_q400", 400);
  const std::string int4 = load_error(huge, "int4");
  EXPECT_NE(int4.find("they need at least 164.6 GiB (353.55 billion"), std::string::npos) << int4;
  EXPECT_NE(int4.find("as 4-bit codes"), std::string::npos) << int4;
  EXPECT_EQ(int4.find("--quantization"), std::string::npos) << int4;  // already quantized
  fs::remove_all(wide);
  fs::remove_all(huge);
}

}  // namespace
}  // namespace tllm
