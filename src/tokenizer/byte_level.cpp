#include "tokenizer/byte_level.h"

#include "tokenizer/unicode.h"

namespace tllm::tok {

ByteLevelTable::ByteLevelTable() {
  cp_to_byte.fill(-1);
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    byte_to_cp[b] = printable ? char32_t(b) : next++;
  }
  for (int b = 0; b < 256; ++b) {
    cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    append_utf8(byte_to_utf8[b], byte_to_cp[b]);
  }
}

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table;
  return table;
}

}  // namespace tllm::tok
