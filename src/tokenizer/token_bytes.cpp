#include "tokenizer/token_bytes.h"

#include <optional>
#include <span>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tllm {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

std::string decode_ids(const Tokenizer& tokenizer, std::initializer_list<int32_t> ids) {
  return tokenizer.decode(std::span<const int32_t>(ids.begin(), ids.size()), /*skip_special_tokens=*/false);
}

// A plain one-letter token to decode in front of the token, and its own text.
std::optional<std::pair<int32_t, std::string>> anchor(const Tokenizer& tokenizer) {
  for (const char* piece : {"a", "e", "x", "A", "0", "."}) {
    const std::optional<int32_t> id = tokenizer.piece_to_id(piece);
    if (!id || tokenizer.is_special(*id)) continue;
    std::string text = decode_ids(tokenizer, {*id});
    if (!text.empty() && text.find(kReplacement) == std::string::npos) return std::make_pair(*id, std::move(text));
  }
  return std::nullopt;
}

// The byte of a byte-fallback piece "<0xHH>", or -1.
int fallback_byte(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

TokenBytes::TokenBytes(const Tokenizer& tokenizer) : tokenizer_(tokenizer), anchor_(anchor(tokenizer)) {}

std::string token_bytes(const Tokenizer& tokenizer, int32_t id) { return TokenBytes(tokenizer)(id); }

std::string TokenBytes::operator()(int32_t id) const {
  const Tokenizer& tokenizer = tokenizer_;
  std::string text;
  if (anchor_) {
    text = decode_ids(tokenizer, {anchor_->first, id});
    text = text.compare(0, anchor_->second.size(), anchor_->second) == 0 ? text.substr(anchor_->second.size())
                                                                         : decode_ids(tokenizer, {id});
  } else {
    text = decode_ids(tokenizer, {id});
  }
  if (text.find(kReplacement) == std::string::npos) return text;
  std::string piece;
  try {
    piece = tokenizer.id_to_piece(id);
  } catch (const Error&) {
    return text;
  }
  // ByteFallback decodes a lone byte that is not a whole character to U+FFFD.
  const int byte = fallback_byte(piece);
  if (byte >= 0 && text == kReplacement) return std::string(1, static_cast<char>(byte));
  if (piece.empty() || tok::valid_utf8_prefix(piece) != piece.size()) return text;
  const auto& table = tok::byte_level_table();
  std::string bytes;
  for (size_t i = 0; i < piece.size();) {
    const int b = table.byte_of(tok::next_cp(piece, i));
    if (b < 0) return text;
    bytes.push_back(static_cast<char>(b));
  }
  return bytes;
}

}  // namespace tllm
