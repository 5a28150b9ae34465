// GPT-2's byte <-> printable-character table used by byte-level BPE: bytes that are printable
// Latin-1 ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) map to themselves, the other 68 map in order to
// U+0100, U+0101, ... so that every byte is one visible character.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace tllm::tok {

struct ByteLevelTable {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_utf8{};  // UTF-8 of byte_to_cp
  std::array<int16_t, 324> cp_to_byte{};        // -1 where a code point < 324 is not in the table
  ByteLevelTable();
  // Byte for code point c, or -1.
  int byte_of(char32_t c) const { return c < cp_to_byte.size() ? cp_to_byte[c] : -1; }
};

const ByteLevelTable& byte_level_table();

}  // namespace tllm::tok
