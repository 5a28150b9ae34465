#include "engine/speculative.h"

#include <algorithm>
#include <iterator>

#include "core/error.h"
#include "io/json.h"

namespace tllm {

SpeculativeConfig parse_speculative_config(const std::string& text) {
  const nlohmann::json j = parse_json(text, "--speculative-config");
  TLLM_CHECK_ARG(j.is_object(), "--speculative-config must be a JSON object, e.g. "
                                "{\"model\": \"DIR\", \"num_speculative_tokens\": 4}");
  static const char* const kFields[] = {"model", "method", "num_speculative_tokens", "prompt_lookup_max",
                                        "prompt_lookup_min", "disable_by_batch_size"};
  for (const auto& [key, v] : j.items())
    TLLM_CHECK_ARG(std::find(std::begin(kFields), std::end(kFields), key) != std::end(kFields),
                   "--speculative-config: unknown field \"", key,
                   "\" (supported: model, method, num_speculative_tokens, prompt_lookup_max, prompt_lookup_min, "
                   "disable_by_batch_size)");
  const JsonFields f(j, "--speculative-config");
  SpeculativeConfig c;
  c.method = f.get_string("method").value_or(f.has("model") ? "draft_model" : "");
  TLLM_CHECK_ARG(!c.method.empty(), "--speculative-config needs \"model\" (a draft model's directory) or "
                                    "\"method\": \"ngram\"");
  TLLM_CHECK_ARG(c.method == "draft_model" || c.method == "ngram", "--speculative-config: method \"", c.method,
                 "\" is not supported (supported: draft_model, ngram)");
  if (c.method == "draft_model") {
    c.model_dir = f.require_string("model");
    TLLM_CHECK_ARG(!c.model_dir.empty(), "--speculative-config: \"model\" (the draft model's directory) is empty");
  } else {
    TLLM_CHECK_ARG(!f.has("model"), "--speculative-config: method ngram takes no \"model\"");
  }
  c.num_tokens = f.get_int_in("num_speculative_tokens", 1, kMaxSpeculativeTokens).value_or(0);
  c.prompt_lookup_max = f.get_int_in("prompt_lookup_max", 1, kMaxPromptLookup).value_or(0);
  c.prompt_lookup_min = f.get_int_in("prompt_lookup_min", 1, kMaxPromptLookup).value_or(0);
  c.disable_by_batch_size = f.get_int_in("disable_by_batch_size", 1, 1 << 20).value_or(0);
  return c;
}

void check_speculative_config(SpeculativeConfig& c) {
  if (c.method.empty()) c.method = c.model_dir == "[ngram]" ? "ngram" : "draft_model";  // vLLM's old spelling
  if (c.ngram() && c.model_dir == "[ngram]") c.model_dir.clear();
  TLLM_CHECK_ARG(c.method == "draft_model" || c.method == "ngram", "speculative method \"", c.method,
                 "\" is not supported (supported: draft_model, ngram)");
  TLLM_CHECK_ARG(c.ngram() || !c.model_dir.empty(), "speculative decoding with a draft model needs its directory");
  TLLM_CHECK_ARG(!c.ngram() || c.model_dir.empty(), "speculative method ngram takes no draft model");
  TLLM_CHECK_ARG(c.num_tokens >= 0 && c.num_tokens <= kMaxSpeculativeTokens, "num_speculative_tokens must be in [1, ",
                 kMaxSpeculativeTokens, "], got ", c.num_tokens);
  if (c.num_tokens == 0) c.num_tokens = kDefaultSpeculativeTokens;
  TLLM_CHECK_ARG(c.ngram() || (c.prompt_lookup_min == 0 && c.prompt_lookup_max == 0),
                 "prompt_lookup_min / prompt_lookup_max belong to method ngram");
  if (c.ngram()) {
    // As vLLM: one of the two given sets the other.
    if (c.prompt_lookup_max == 0) c.prompt_lookup_max = c.prompt_lookup_min > 0 ? c.prompt_lookup_min : 4;
    if (c.prompt_lookup_min == 0) c.prompt_lookup_min = std::min(1, c.prompt_lookup_max);
    TLLM_CHECK_ARG(c.prompt_lookup_min >= 1 && c.prompt_lookup_max <= kMaxPromptLookup &&
                       c.prompt_lookup_min <= c.prompt_lookup_max,
                   "prompt_lookup_min (", c.prompt_lookup_min, ") and prompt_lookup_max (", c.prompt_lookup_max,
                   ") must satisfy 1 <= min <= max <= ", kMaxPromptLookup);
  }
  TLLM_CHECK_ARG(c.disable_by_batch_size >= 0, "disable_by_batch_size must be >= 0, got ", c.disable_by_batch_size);
}

DraftModelProposer::DraftModelProposer(std::unique_ptr<CausalLM> model, KVCache kv, int num_tokens,
                                       int max_batched_tokens)
    : Proposer(num_tokens), model_(std::move(model)), kv_(std::move(kv)), max_batched_(max_batched_tokens) {}

namespace {

// A ForwardBatch of the draft: sequences added one by one, each with its new tokens.
class DraftBatch {
 public:
  DraftBatch(int block_size, int max_blocks, int vocab) : bs_(block_size), vocab_(vocab) {
    fb_.max_blocks_per_seq = std::max(1, max_blocks);
    fb_.cu_seqlens_q.push_back(0);
  }
  // tokens[i] at position first + i; the row of the last one gives logits when `logits`.
  void add(const Sequence& q, int first, const int32_t* tokens, int count, bool logits) {
    for (int i = 0; i < count; ++i) {
      const int t = first + i;
      // An id the target drew beyond a smaller draft vocabulary (Qwen2.5's 0.5B has 151,936
      // ids, its 7B 152,064) has no embedding row in the draft: the draft reads id 0 there.
      // That only makes its drafts worse; verification keeps the output the target's. (It
      // stopped the engine mid-request with "token id outside the vocabulary".)
      fb_.tokens.push_back(tokens[i] < vocab_ ? tokens[i] : 0);
      fb_.positions.push_back(t);
      fb_.slot_mapping.push_back(q.slot(t, bs_));
    }
    fb_.cu_seqlens_q.push_back(static_cast<int32_t>(fb_.tokens.size()));
    fb_.seq_lens_k.push_back(first + count);
    for (int i = 0; i < fb_.max_blocks_per_seq; ++i)
      fb_.block_tables.push_back(i < static_cast<int>(q.block_table.size()) ? q.block_table[i] : 0);
    if (logits) fb_.logits_indices.push_back(static_cast<int32_t>(fb_.tokens.size()) - 1);
  }
  bool empty() const { return fb_.tokens.empty(); }
  void request_row(int32_t token_row) { fb_.logits_indices.push_back(token_row); }
  const ForwardBatch& get() const { return fb_; }

 private:
  int bs_;
  int vocab_;
  ForwardBatch fb_;
};

// The draft draws with the target's parameters (sample_rows keeps every id list within the
// draft's vocabulary), but returns no log-probs: nobody reads them.
void drop_logprobs(SampleBatch& sb) {
  for (SamplingRow& r : sb.rows) r.num_top_logprobs = 0;
}

}  // namespace

std::vector<std::vector<int32_t>> DraftModelProposer::propose(const std::vector<Item>& items, const SampleRowsFn& rows,
                                                   int target_vocab) {
  std::vector<std::vector<int32_t>> drafts(items.size());
  int max_blocks = 1;
  for (const Item& it : items) max_blocks = std::max<int>(max_blocks, static_cast<int>(it.seq->block_table.size()));
  const int vocab = model_->config().vocab_size;

  // First forward: every item's cache caught up to its last token, within the token budget;
  // the ones that got there draw their first draft.
  DraftBatch first(kv_.block_size, max_blocks, vocab);
  std::vector<size_t> drawing;  // items that draw, in the order of their logits rows
  int budget = max_batched_;
  for (size_t i = 0; i < items.size() && budget > 0; ++i) {
    Sequence& q = *items[i].seq;
    const int n = q.num_tokens();
    const int behind = n - q.num_draft_computed;
    TLLM_ASSERT(behind >= 1);
    const int count = std::min(behind, budget);
    const bool draws = count == behind && items[i].max_drafts > 0;
    first.add(q, q.num_draft_computed, q.tokens.data() + q.num_draft_computed, count, draws);
    budget -= count;
    q.num_draft_computed += count;
    if (draws) drawing.push_back(i);
  }
  if (first.empty()) return drafts;
  // Only catching up (nobody draws yet): one row of logits anyway, as every forward returns.
  if (drawing.empty()) first.request_row(0);
  Tensor logits = model_->forward(first.get(), kv_);
  std::vector<int> ahead;
  // Later forwards: one token per sequence still drafting (the draft drawn last), until each
  // has its max_drafts or drew an id outside the target's vocabulary.
  for (int step = 0; !drawing.empty(); ++step) {
    std::vector<const Sequence*> seqs;
    std::vector<const std::vector<int32_t>*> before;
    for (size_t i : drawing) seqs.push_back(items[i].seq), before.push_back(&drafts[i]);
    ahead.assign(drawing.size(), step);
    const int R = static_cast<int>(drawing.size());
    SampleBatch sb = rows(seqs, ahead, before, vocab);
    drop_logprobs(sb);
    SampleResult sr = model_->backend().sample(logits.slice_rows(0, R), sb);
    std::vector<size_t> still;
    for (int r = 0; r < R; ++r) {
      const size_t i = drawing[r];
      if (sr.tokens[r] >= target_vocab) continue;
      drafts[i].push_back(sr.tokens[r]);
      if (static_cast<int>(drafts[i].size()) < items[i].max_drafts) still.push_back(i);
    }
    drawing = std::move(still);
    if (drawing.empty()) break;
    DraftBatch next(kv_.block_size, max_blocks, vocab);
    for (size_t i : drawing) {
      const Sequence& q = *items[i].seq;
      next.add(q, q.num_tokens() + step, &drafts[i].back(), 1, true);
    }
    logits = model_->forward(next.get(), kv_);
  }
  return drafts;
}

void DraftModelProposer::accepted(Sequence& seq, int num_drafts, int accepted) {
  // The draft cache holds drafts 1 .. num_drafts - 1 (the last one was drawn, not computed);
  // those kept are now tokens of the sequence.
  seq.num_draft_computed += std::min(accepted, num_drafts - 1);
}

NgramProposer::NgramProposer(int num_tokens, int min_n, int max_n) : Proposer(num_tokens), min_n_(min_n), max_n_(max_n) {}

std::vector<int32_t> NgramProposer::lookup(const std::vector<int32_t>& t, int max) const {
  // One pass from the end over the earlier places of the last token: the longest match (up to
  // max_n_) ending there, the latest of the longest; a match of max_n_ cannot be beaten.
  const int n = static_cast<int>(t.size());
  int best_len = 0, best_end = -1;
  for (int e = n - 2; e >= 0 && best_len < max_n_; --e) {
    if (t[e] != t[n - 1]) continue;
    int len = 1;
    while (len < max_n_ && len <= e && t[e - len] == t[n - 1 - len]) ++len;
    if (len > best_len) best_len = len, best_end = e;
  }
  if (best_len < min_n_) return {};
  const int from = best_end + 1, to = std::min(n, from + max);
  return std::vector<int32_t>(t.begin() + from, t.begin() + to);
}

std::vector<std::vector<int32_t>> NgramProposer::propose(const std::vector<Item>& items, const SampleRowsFn&,
                                                         int target_vocab) {
  std::vector<std::vector<int32_t>> drafts;
  drafts.reserve(items.size());
  for (const Item& it : items) {
    drafts.push_back(lookup(it.seq->tokens, it.max_drafts));
    for (int32_t tok : drafts.back()) TLLM_ASSERT(tok >= 0 && tok < target_vocab);
  }
  return drafts;
}

}  // namespace tllm
