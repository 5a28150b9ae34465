// A copy of a model folder whose final norm is NaN: every logit and pooled vector it gives is
// NaN, as a checkpoint whose weights or activations overflow gives (tests of what the engine
// does when no value is finite).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace tllm::testing {

inline std::filesystem::path write_nan_norm_model(const std::filesystem::path& src, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const auto& f : fs::directory_iterator(src))
    if (f.path().filename() != "model.safetensors")
      fs::copy_file(f.path(), dir / f.path().filename(), fs::copy_options::overwrite_existing);
  const Checkpoint ck = Checkpoint::open(src.string());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : ck.names()) {
    Tensor t = ck.get(n);
    if (n == "model.norm.weight") {
      Tensor f = Tensor::empty(t.shape(), DType::F32);
      for (int64_t i = 0; i < f.numel(); ++i) f.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
      t = f;
    }
    tensors.emplace_back(n, t);
  }
  write_safetensors((dir / "model.safetensors").string(), tensors, {{"format", "pt"}});
  return dir;
}

}  // namespace tllm::testing
