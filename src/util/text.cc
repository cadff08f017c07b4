#include "util/text.h"

#include <algorithm>
#include <cstdint>

#include "util/utf8.h"

namespace gm {
namespace {

bool is_control(std::string_view ch) {
  const auto b0 = static_cast<uint8_t>(ch[0]);
  if (ch.size() == 1) return b0 < 0x20 || b0 == 0x7f;
  // C1 controls U+0080–U+009F are 0xc2 0x80–0x9f.
  return ch.size() == 2 && b0 == 0xc2 && static_cast<uint8_t>(ch[1]) < 0xa0;
}

}  // namespace

std::string printable(std::string_view text, size_t max_bytes) {
  static constexpr std::string_view kEllipsis = "…";
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + kEllipsis.size());
  while (!text.empty()) {
    size_t n = utf8_sequence_length(text);
    std::string_view ch = n == 0 ? std::string_view("?") : text.substr(0, n);
    if (n != 0 && is_control(ch)) ch = "?";
    if (out.size() + ch.size() > max_bytes) {
      out += kEllipsis;
      break;
    }
    out += ch;
    text.remove_prefix(n == 0 ? 1 : n);
  }
  return out;
}

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

}  // namespace gm
