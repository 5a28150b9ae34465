// Tokenizer: HuggingFace tokenizer.json (BPE model) read as the file declares it, with
// encode/decode identical to HF `tokenizers`.
//
// Pipeline (as HF): added tokens are cut out of the raw text first (leftmost-longest; tokens
// with "normalized": true are looked for in the normalized text instead); every other run is
// normalized, pre-tokenized into words, and each word is encoded by the BPE model; with
// add_special_tokens the post-processor adds its tokens (e.g. a BOS).
//
// Two ways to load, two reference behaviours for add_special_tokens=true:
//  - from_json_text(tokenizer_json, "") behaves as `tokenizers.Tokenizer.from_file`: only the
//    file's post_processor adds special tokens.
//  - load(dir) / from_json_text(json, config) also read tokenizer_config.json (bos/eos/pad
//    names) and behave as transformers' AutoTokenizer: for Llama-family tokenizer classes
//    (LlamaTokenizer[Fast], CodeLlamaTokenizer[Fast], GemmaTokenizer[Fast]) add_bos_token
//    (default true) / add_eos_token (default false) replace the post-processor, as
//    LlamaTokenizerFast.update_post_processor does.
//
// Text that is not valid UTF-8: encode() first replaces every maximal invalid byte sequence
// with U+FFFD, exactly as Python's bytes.decode("utf-8", errors="replace") (and Rust's
// String::from_utf8_lossy) would, then encodes the result. decode() always returns valid
// UTF-8: when the bytes of the tokens do not form valid UTF-8 (e.g. a cut-off multi-byte
// character) each maximal invalid sequence becomes U+FFFD, as HF's ByteLevel decoder does
// (ByteFallback instead gives one U+FFFD per byte of an invalid run, as HF does).
//
// BPE "dropout" is ignored (it is a training-time regularizer). Thread-safety: a loaded
// Tokenizer is immutable except for an internal word cache guarded per shard; encode() and
// decode() may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/token_bytes.h"

namespace tllm {

class Tokenizer {
 public:
  // dir holds tokenizer.json (+ optional tokenizer_config.json for bos/eos/pad names,
  // add_bos_token etc.). Throws tllm::InvalidArgument naming the file and field at fault.
  static std::unique_ptr<Tokenizer> load(const std::string& dir);
  static std::unique_ptr<Tokenizer> from_json_text(const std::string& tokenizer_json,
                                                   const std::string& tokenizer_config_json_or_empty);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Ids that are in neither the vocab nor the added tokens are skipped, as HF does.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  std::string id_to_piece(int32_t id) const;  // vocab string as stored (e.g. "Ġthe"); throws if unknown
  std::optional<int32_t> piece_to_id(std::string_view piece) const;
  int32_t vocab_size() const;  // max id + 1 over vocab and added tokens
  // An upper bound on the bytes of encode()'s input that one token stands for, or 0 where the
  // tokenizer allows none (a normalizer or pre-tokenizer that may drop text, an unknown-token
  // id fused over a run, an added token that strips the whitespace beside it). Byte-level BPE
  // (Qwen, Llama-3, DeepSeek-V3): the longest vocabulary entry (128 bytes), times 3 under NFC.
  // A text of n bytes encodes to at least n / bound tokens: the server refuses a prompt that
  // cannot fit the context before spending seconds tokenizing it.
  size_t max_input_bytes_per_token() const;
  bool is_special(int32_t id) const;
  std::optional<int32_t> bos_token_id() const;
  std::optional<int32_t> eos_token_id() const;
  std::optional<int32_t> pad_token_id() const;
  std::string bos_token() const;  // strings from tokenizer_config.json ("" if none)
  std::string eos_token() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer: push ids one at a time; returns the text that became final
// (complete UTF-8 characters only). The concatenation of all pushes + flush() equals
// decode(all ids) whenever decoding is monotonic (decoding more ids only appends text), which
// byte-level tokenizers always are. After flush() the detokenizer starts a new, empty stream.
//
// It decodes a short window of ids each time (the ids since the last emitted boundary plus
// the new one) and emits what the window's text gained, as vLLM's incremental detokenization
// does, holding text back while its bytes end in a character cut short (vLLM holds any text
// that ends in U+FFFD, which stalls a stream of real U+FFFD characters). Where decoding
// is not monotonic (ByteFallback replaces a whole run of byte tokens by U+FFFD once one byte
// is invalid, already emitted ones included), emitted text stays as it was and the stream
// goes on from the ids not yet emitted; no text is dropped.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens = false);
  // Starts the stream after `context` (the end of the prompt; never emitted), as vLLM's
  // detokenizer starts from the prompt's last tokens: a SentencePiece-style decoder (Metaspace,
  // Strip) drops the leading space of the first token it decodes, which is only right for the
  // first token of a text, not for the first one generated after a prompt. A context whose
  // text ends inside a character is not taken (the stream then starts empty, as before).
  void prime(std::span<const int32_t> context);
  std::string push(int32_t id);
  std::string flush();

 private:
  std::string decode_window(size_t begin, size_t end) const;
  std::string rewindow(std::string text);
  bool ends_incomplete() const;
  std::string advance(size_t end, const std::string& text);

  const Tokenizer& tok_;
  bool skip_special_;
  TokenBytes bytes_of_;  // raw bytes of an id, for ends_incomplete
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // window start
  size_t read_offset_ = 0;    // ids before this are already emitted
  std::string prefix_text_;   // decode(ids_[prefix_offset_, read_offset_))
};

}  // namespace tllm
