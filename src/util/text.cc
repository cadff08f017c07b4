#include "util/text.h"

#include <algorithm>
#include <cstdint>

namespace gm {
namespace {

// Length of the valid UTF-8 sequence at the start of `s` (1–4), or 0 if it is not one
// (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
size_t utf8_length(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if ((b0 & 0xe0) == 0xc0) {
    n = 2;
    cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    n = 3;
    cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

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
    size_t n = utf8_length(text);
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

}  // namespace gm
