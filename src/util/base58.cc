#include "util/base58.h"

#include <array>
#include <cstdint>
#include <vector>

namespace gm {
namespace {

constexpr char kAlphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

// Digit value of each ASCII character, -1 when it is not in the alphabet (0, O, I, l
// and everything non-alphanumeric).
constexpr std::array<int8_t, 128> make_digit_table() {
  std::array<int8_t, 128> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 58; ++i) table[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}
constexpr auto kDigits = make_digit_table();

}  // namespace

std::string base58_encode(ByteView bytes) {
  size_t zeros = 0;
  while (zeros < bytes.size() && bytes[zeros] == 0) ++zeros;
  // Base-58 digits, least significant first; log(256)/log(58) < 1.37.
  std::vector<uint8_t> digits;
  digits.reserve((bytes.size() - zeros) * 138 / 100 + 1);
  for (size_t i = zeros; i < bytes.size(); ++i) {
    uint32_t carry = bytes[i];
    for (auto& d : digits) {
      carry += static_cast<uint32_t>(d) << 8;
      d = static_cast<uint8_t>(carry % 58);
      carry /= 58;
    }
    while (carry > 0) {
      digits.push_back(static_cast<uint8_t>(carry % 58));
      carry /= 58;
    }
  }
  std::string out(zeros, '1');
  out.reserve(zeros + digits.size());
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(kAlphabet[*it]);
  return out;
}

Result<Bytes> base58_decode(std::string_view text) {
  size_t ones = 0;
  while (ones < text.size() && text[ones] == '1') ++ones;
  // Bytes, least significant first; log(58)/log(256) < 0.74.
  Bytes value;
  value.reserve((text.size() - ones) * 74 / 100 + 1);
  for (size_t i = ones; i < text.size(); ++i) {
    auto c = static_cast<uint8_t>(text[i]);
    int digit = c < 128 ? kDigits[c] : -1;
    if (digit < 0) {
      return error("character " + std::to_string(i) + " ('" + std::string(1, text[i]) +
                   "') is not in the base58 alphabet");
    }
    uint32_t carry = static_cast<uint32_t>(digit);
    for (auto& b : value) {
      carry += static_cast<uint32_t>(b) * 58;
      b = static_cast<uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry > 0) {
      value.push_back(static_cast<uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  Bytes out(ones, 0);
  out.insert(out.end(), value.rbegin(), value.rend());
  return out;
}

}  // namespace gm
