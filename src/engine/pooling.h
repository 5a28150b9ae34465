// Pooling (embedding) models, vLLM's pooling runner: a request is its prompt's prefill only,
// and its output is one vector made from the final-normed hidden states of its tokens: the
// last token's (LAST: decoder embedding models such as Qwen3-Embedding), their mean (MEAN) or
// the first token's (CLS), L2-normalised unless the model says otherwise. The type and the
// normalisation come from the sentence-transformers files beside the checkpoint
// (modules.json and the Pooling module's folder it names, 1_Pooling as a rule) as vLLM reads
// them, else LAST and normalised; a Dense module in modules.json (a projection this engine does
// not apply) is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tllm {

enum class PoolingType { Last, Mean, Cls };
const char* pooling_type_name(PoolingType t);  // "last", "mean", "cls"

struct PoolingConfig {
  PoolingType type = PoolingType::Last;
  bool normalize = true;
  // "auto": from the model's files; else "last", "mean" or "cls" (InvalidArgument otherwise);
  // `normalize`, when set, overrides the files.
  static PoolingConfig resolve(const std::string& model_dir, const std::string& requested,
                               std::optional<bool> normalize = std::nullopt);
  // Whether every token's hidden state is needed (so cached prefixes cannot be skipped).
  bool needs_every_token() const { return type != PoolingType::Last; }
};

// Scales v to unit L2 norm (a zero vector stays zero).
void l2_normalize(std::vector<float>& v);
// The cosine of the angle between a and b (equal sizes; 0 when either is zero), in f64.
double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b);

// Gathers the rows each sequence's pooling needs across its prefill chunks.
class Pooler {
 public:
  Pooler(PoolingConfig config, int64_t hidden) : cfg_(config), hidden_(hidden) {}
  // Rows [first, first + count) of sequence `id`'s prompt, row r at rows + r * hidden
  // (position first + r).
  void add(const std::string& id, int first, const float* rows, int count);
  // The pooled vector of `id` once its whole prompt (`num_tokens`) has been added, normalised
  // as `normalize` says (unset: as the config); forgets the sequence.
  std::vector<float> finish(const std::string& id, int num_tokens, std::optional<bool> normalize = std::nullopt);
  void drop(const std::string& id) { acc_.erase(id); }
  const PoolingConfig& config() const { return cfg_; }

 private:
  struct Acc {
    std::vector<double> sum;
    std::vector<float> last;
    int count = 0;
  };
  PoolingConfig cfg_;
  int64_t hidden_;
  std::unordered_map<std::string, Acc> acc_;
};

}  // namespace tllm
