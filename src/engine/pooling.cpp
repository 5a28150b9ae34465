#include "engine/pooling.h"

#include <cmath>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "io/json.h"

namespace tllm {

const char* pooling_type_name(PoolingType t) {
  switch (t) {
    case PoolingType::Last: return "last";
    case PoolingType::Mean: return "mean";
    case PoolingType::Cls: return "cls";
  }
  return "";
}

PoolingConfig PoolingConfig::resolve(const std::string& model_dir, const std::string& requested,
                                     std::optional<bool> normalize) {
  namespace fs = std::filesystem;
  PoolingConfig c;
  // modules.json: the sentence-transformers pipeline after the transformer. Its Pooling module
  // names the folder of its config (1_Pooling as a rule; vLLM reads the path from here too), a
  // Normalize module turns the normalisation on, and a Dense module (a projection of the pooled
  // vector) is refused: its weights are not applied here, so the vectors would be another
  // model's, of another size, with no sign of it.
  const fs::path modules = fs::path(model_dir) / "modules.json";
  fs::path pooling = fs::path(model_dir) / "1_Pooling" / "config.json";
  if (fs::exists(modules)) {
    const nlohmann::json j = read_json_file(modules.string());
    bool found = false;
    if (j.is_array())
      for (const auto& m : j) {
        if (!m.is_object()) continue;
        const auto text = [&](const char* key) {
          const auto it = m.find(key);
          return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        const std::string type = text("type"), path = text("path");
        if (type == "sentence_transformers.models.Normalize") found = true;
        if (type == "sentence_transformers.models.Pooling" && !path.empty())
          pooling = fs::path(model_dir) / path / "config.json";
        TLLM_CHECK_ARG(type != "sentence_transformers.models.Dense", modules.string(), ": the module ",
                       path.empty() ? text("name") : path,
                       " (sentence_transformers.models.Dense) projects the pooled vector, which this engine does not "
                       "do: its vectors would not be the model's (take the module out of modules.json to serve the "
                       "unprojected ones)");
      }
    c.normalize = found;
  }
  if (fs::exists(pooling) && requested == "auto") {
    // sentence-transformers' modes. It concatenates the vectors of every mode that is on, and
    // pools max / mean_sqrt_len / weightedmean, which this engine does not: those are refused
    // rather than served as another pooling. None on: the last token (as vLLM, the decoder's own).
    const nlohmann::json j = read_json_file(pooling.string());
    const JsonFields f(j, pooling.string());
    struct Mode {
      const char* key;
      std::optional<PoolingType> type;
    };
    const Mode modes[] = {{"pooling_mode_lasttoken", PoolingType::Last},
                          {"pooling_mode_mean_tokens", PoolingType::Mean},
                          {"pooling_mode_cls_token", PoolingType::Cls},
                          {"pooling_mode_max_tokens", std::nullopt},
                          {"pooling_mode_mean_sqrt_len_tokens", std::nullopt},
                          {"pooling_mode_weightedmean_tokens", std::nullopt}};
    std::string on;
    for (const Mode& m : modes) {
      if (!f.get_bool(m.key).value_or(false)) continue;
      TLLM_CHECK_ARG(on.empty(), pooling.string(), " turns on both ", on, " and ", m.key,
                     " (sentence-transformers concatenates them); this engine pools one way: pass --pooling-type");
      TLLM_CHECK_ARG(m.type.has_value(), pooling.string(), ": ", m.key,
                     " is not supported (last token, mean and cls are); pass --pooling-type to pool another way");
      on = m.key;
      c.type = *m.type;
    }
  }
  if (requested == "last") c.type = PoolingType::Last;
  else if (requested == "mean") c.type = PoolingType::Mean;
  else if (requested == "cls") c.type = PoolingType::Cls;
  else TLLM_CHECK_ARG(requested == "auto", "pooling type must be auto, last, mean or cls, got \"", requested, "\"");
  if (normalize) c.normalize = *normalize;
  return c;
}

void l2_normalize(std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  n = std::sqrt(n);
  if (n > 0)
    for (float& x : v) x = static_cast<float>(x / n);
}

double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    dot += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0.0;
}

void Pooler::add(const std::string& id, int first, const float* rows, int count) {
  Acc& a = acc_[id];
  if (a.sum.empty()) a.sum.assign(static_cast<size_t>(hidden_), 0.0);
  for (int r = 0; r < count; ++r) {
    const float* x = rows + static_cast<int64_t>(r) * hidden_;
    const int pos = first + r;
    if (cfg_.type == PoolingType::Mean) {
      for (int64_t i = 0; i < hidden_; ++i) a.sum[i] += x[i];
    } else if (cfg_.type == PoolingType::Cls ? pos == 0 : true) {
      a.last.assign(x, x + hidden_);  // Last: the latest row seen is the last token's at the end
    }
    ++a.count;
  }
}

std::vector<float> Pooler::finish(const std::string& id, int num_tokens, std::optional<bool> normalize) {
  auto it = acc_.find(id);
  TLLM_CHECK(it != acc_.end(), "pooling: no rows for request ", id);
  Acc a = std::move(it->second);
  acc_.erase(it);
  std::vector<float> v(static_cast<size_t>(hidden_));
  if (cfg_.type == PoolingType::Mean) {
    TLLM_CHECK(a.count == num_tokens, "pooling: ", a.count, " rows for a prompt of ", num_tokens, " tokens");
    for (int64_t i = 0; i < hidden_; ++i) v[i] = static_cast<float>(a.sum[i] / num_tokens);
  } else {
    TLLM_CHECK(!a.last.empty(), "pooling: the ", pooling_type_name(cfg_.type), " row of request ", id, " is missing");
    v = std::move(a.last);
  }
  if (normalize.value_or(cfg_.normalize)) l2_normalize(v);
  return v;
}

}  // namespace tllm
