#include "tokenizer/token_bytes.h"

#include <span>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tllm {

std::string token_bytes(const Tokenizer& tokenizer, int32_t id) {
  const int32_t one[1] = {id};
  std::string text = tokenizer.decode(std::span<const int32_t>(one, 1), /*skip_special_tokens=*/false);
  if (text.find("\xEF\xBF\xBD") == std::string::npos) return text;
  std::string piece;
  try {
    piece = tokenizer.id_to_piece(id);
  } catch (const Error&) {
    return text;
  }
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
