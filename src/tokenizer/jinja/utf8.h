// UTF-8 helpers for Python str semantics: Python indexes, slices, strips and case-maps by code
// point, so the interpreter decodes where those operations need it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tllm::jinja::utf8 {

// Decodes one code point at s[i] and advances i past it; an invalid byte decodes as U+FFFD and
// advances by one (inputs come from JSON, so they are valid UTF-8 in practice).
char32_t decode(std::string_view s, size_t& i);
void append(std::string& out, char32_t cp);
std::vector<char32_t> to_code_points(std::string_view s);
std::string from_code_points(const std::vector<char32_t>& cps, size_t begin, size_t end);
size_t length(std::string_view s);  // number of code points
// Byte offset of the code point with the given index (s.size() when index == length).
size_t byte_offset(std::string_view s, size_t cp_index);
// Code point index of a byte offset that starts a code point.
size_t cp_index(std::string_view s, size_t byte_offset);

bool is_space(char32_t c);  // Python str.isspace()
bool is_printable(char32_t c);  // Python str.isprintable() for one character
bool is_alpha(char32_t c);
bool is_digit(char32_t c);  // Python str.isdigit() (Nd plus superscripts etc. approximated by Nd/No)
bool is_decimal(char32_t c);
bool is_alnum(char32_t c);
bool is_lower(char32_t c);
bool is_upper(char32_t c);
bool is_cased(char32_t c);
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
char32_t to_title(char32_t c);
// Line boundaries of str.splitlines(): \n \r \v \f \x1c \x1d \x1e \x85 \u2028 \u2029 (\r\n is one).
bool is_line_break(char32_t c);

std::string upper(std::string_view s);
std::string lower(std::string_view s);

}  // namespace tllm::jinja::utf8
