// OpenAI request bodies parsed into structs, with validation that needs no model: types,
// ranges, unknown fields, malformed JSON, invalid UTF-8. Every failure is an ApiError 400
// naming the parameter. Checks that need the model (prompt length, vocabulary) happen in
// the handlers once the prompt is tokenized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampling_params.h"
#include "model/config.h"

namespace tllm {

// Request JSON is ordered: templates print tool schemas and arguments with tojson, and must
// see the keys in the order the client sent them (as Python dicts keep them).
using RequestJson = nlohmann::ordered_json;

// The largest logprobs / top_logprobs count accepted (vLLM's default max_logprobs).
inline constexpr int kMaxLogprobs = 20;
inline constexpr int kMaxChoices = 128;  // n (as OpenAI)

// Fields shared by /v1/completions and /v1/chat/completions (OpenAI + vLLM extensions).
struct GenerationRequest {
  std::optional<std::string> model;
  std::optional<int> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  std::optional<int64_t> seed;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, bias in [-100, 100])
  std::vector<int32_t> allowed_token_ids;  // vLLM: the only tokens that may be drawn (empty: any)
  std::vector<std::string> bad_words;      // vLLM: words never generated (bad_word_sequences)
  int n = 1;
  // OpenAI's best_of (completions): this many samples per prompt, of which the n with the
  // highest mean logprob per token are returned; n when absent.
  int best_of = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // vLLM's stream_options.continuous_usage_stats (with include_usage): every chunk carries its
  // choice's usage so far.
  bool continuous_usage = false;
  bool ignore_eos = false;
  // vLLM's cache_salt: only requests with the same salt share prefix-cache blocks ("" : none).
  std::string cache_salt;
  // vLLM's use_beam_search (server/beam_search.h): n is the beam width; the score divides the
  // cumulative logprob by the length to the power length_penalty.
  bool use_beam_search = false;
  double length_penalty = 1.0;
  int min_tokens = 0;
  bool skip_special_tokens = true;
  bool include_stop_str_in_output = false;
  bool return_tokens_as_token_ids = false;
  // vLLM's return_token_ids: the prompt's and each choice's generated token ids beside the
  // text (streamed: the prompt's in the first chunk, each chunk's new ids in it).
  bool return_token_ids = false;
  // Per-token logprobs: -1 off, else the number of top alternatives (0..kMaxLogprobs).
  int logprobs = -1;
  // vLLM's prompt_logprobs: -1 off, else each prompt token's logprob, rank and this many most
  // likely alternatives (0..kMaxLogprobs); not with stream.
  int prompt_logprobs = -1;
  // vLLM's truncate_prompt_tokens: keep the last k prompt tokens (-1: the context length).
  std::optional<int> truncate_prompt_tokens;
  // Structured output (response_format json_object / json_schema, guided_json, guided_choice,
  // structured_outputs) and the field that asked for it ("" when none did).
  std::vector<OutputPiece> output_format;
  std::string output_format_field;
};

// A completions prompt: text, or token ids.
using PromptInput = std::variant<std::string, std::vector<int32_t>>;

struct CompletionRequest : GenerationRequest {
  std::vector<PromptInput> prompts;  // one choice group per prompt
  bool echo = false;
  bool add_special_tokens = true;
};

struct ChatRequest : GenerationRequest {
  RequestJson messages;  // normalized: content is a string (text parts joined), roles checked
  RequestJson tools;     // null, or the request's tools array (shown to the template)
  bool tool_choice_none = false;  // tool_choice "none": tools shown, no call parsed (OpenAI's, vLLM's default)
  bool force_tool_call = false;   // tool_choice "required" or a named function
  std::string forced_tool;        // the named function ("" with "required")
  bool parses_tool_calls() const { return !tools.is_null() && !tool_choice_none; }
  bool parallel_tool_calls = true;  // false: at most one call per reply (OpenAI's)
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  RequestJson chat_template_kwargs = RequestJson::object();
  bool add_special_tokens = false;
};

// /tokenize: either a prompt or chat messages (vLLM's two request shapes).
struct TokenizeRequest {
  std::optional<std::string> model;
  std::optional<std::string> prompt;
  std::optional<ChatRequest> chat;  // set when "messages" is given
  bool add_special_tokens = true;
  bool return_token_strs = false;
};

// POST /v1/embeddings (OpenAI's embeddings API; a pooling model).
struct EmbeddingRequest {
  std::optional<std::string> model;
  std::vector<PromptInput> inputs;
  std::string encoding_format = "float";  // or "base64" (little-endian f32)
  std::optional<int> dimensions;           // keep the first n, renormalised (Matryoshka models)
  std::optional<int> truncate_prompt_tokens;
  bool add_special_tokens = true;
  std::optional<bool> normalize;  // vLLM's: L2-normalise (true) or not (false); unset: as the model
};

// POST /score, /v1/score (vLLM's score API on an embedding model: cosine similarity): text_1
// and text_2 as one text each, one against several, or two lists of one length (pairwise).
struct ScoreRequest {
  std::optional<std::string> model;
  std::vector<std::string> text_1, text_2;
  std::optional<int> truncate_prompt_tokens;
};

// POST /rerank, /v1/rerank, /v2/rerank (Jina / Cohere's shape, as vLLM serves it): the
// documents ordered by their score against the query.
struct RerankRequest {
  std::optional<std::string> model;
  std::string query;
  std::vector<std::string> documents;
  std::optional<int> top_n;
  bool return_documents = true;
  std::optional<int> truncate_prompt_tokens;
};

struct DetokenizeRequest {
  std::optional<std::string> model;
  std::vector<int32_t> tokens;
};

// Parses the HTTP body: malformed JSON, invalid UTF-8 or a non-object -> 400.
RequestJson parse_json_body(const std::string& body);

CompletionRequest parse_completion_request(const RequestJson& body);
ChatRequest parse_chat_request(const RequestJson& body);
TokenizeRequest parse_tokenize_request(const RequestJson& body);
DetokenizeRequest parse_detokenize_request(const RequestJson& body);
EmbeddingRequest parse_embedding_request(const RequestJson& body);
ScoreRequest parse_score_request(const RequestJson& body);
RerankRequest parse_rerank_request(const RequestJson& body);
// A prompt field: a string, a list of strings, a list of token ids or a list of such lists.
std::vector<PromptInput> parse_prompt_inputs(const RequestJson& v, const std::string& param);

// Engine sampling settings for one choice: the request's values, else generation_config's,
// else OpenAI's defaults. max_tokens: the request's (400 when prompt + max_tokens exceeds
// the context, naming both counts), else what the context leaves (capped by
// generation_config max_new_tokens). `prompt_param` names the prompt field in errors.
SamplingParams make_sampling_params(const GenerationRequest& r, const GenerationConfig& defaults,
                                    int prompt_len, int max_model_len,
                                    const std::string& prompt_param);

// truncate_prompt_tokens: drops all but the last k tokens of ids (400 when k exceeds the context).
void truncate_prompt(std::vector<int32_t>& ids, const GenerationRequest& r, int max_model_len);
// The same for the pooling routes: k = -1 keeps the context's length; no k keeps every token.
void keep_last_tokens(std::vector<int32_t>& ids, std::optional<int> k, int max_model_len);
// 400 unless every id is in [0, vocab_size); `param` names the field.
void check_token_ids(const std::vector<int32_t>& ids, int vocab_size, const std::string& param);
// 400 unless the prompt leaves room to generate (prompt_len < max_model_len).
void check_prompt_length(int prompt_len, int max_model_len, const std::string& param);
// The fewest tokens `text_bytes` of text can encode to, given Tokenizer::max_input_bytes_per_token
// (0: no bound known, and 0 returned).
size_t fewest_tokens(size_t text_bytes, size_t bytes_per_token);
// Before tokenizing `text_bytes` of prompt text: 400 when even its fewest_tokens exceed
// max_tokens (max_model_len - 1 for a generation, max_model_len for pooling). A 35 MB
// completion prompt was a 400 after 7.6 s (~6 s of it tokenizing; 2 cores, 2026-12-05);
// with this check after 1.1 s (receiving and parsing the JSON).
void check_text_fits(size_t text_bytes, size_t bytes_per_token, int max_tokens, int max_model_len,
                     const std::string& param);

}  // namespace tllm
