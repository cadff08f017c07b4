#include "repo/document_id.h"

#include <openssl/rand.h>

#include <array>
#include <cstring>

#include "util/sha256.h"

namespace gm::repo {
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

std::array<uint8_t, 4> checksum(ByteView payload) {
  Sha256Digest once = sha256(payload);
  Sha256Digest twice = sha256(ByteView(once.data(), once.size()));
  return {twice[0], twice[1], twice[2], twice[3]};
}

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

std::string bs58check_encode(ByteView payload) {
  Bytes data(payload.begin(), payload.end());
  auto sum = checksum(payload);
  data.insert(data.end(), sum.begin(), sum.end());
  return base58_encode(data);
}

Result<Bytes> bs58check_decode(std::string_view text) {
  GM_ASSIGN_OR_RETURN(Bytes data, base58_decode(text));
  if (data.size() < 4) return error("bs58check string decodes to " + std::to_string(data.size()) + " bytes, too short for its 4-byte checksum");
  Bytes payload(data.begin(), data.end() - 4);
  auto sum = checksum(payload);
  if (std::memcmp(sum.data(), data.data() + payload.size(), 4) != 0) return error("bs58check checksum mismatch");
  return payload;
}

Result<Bytes> decode_document_id(std::string_view document_id) {
  if (document_id.empty()) return error("documentId is empty");
  if (document_id.size() > kMaxDocumentIdLength) {
    return error("documentId is " + std::to_string(document_id.size()) + " characters long (at most " +
                 std::to_string(kMaxDocumentIdLength) + " accepted)");
  }
  auto payload = bs58check_decode(document_id);
  if (!payload.ok()) return context("documentId \"" + std::string(document_id) + "\"", payload.error());
  if (payload->empty()) return error("documentId \"" + std::string(document_id) + "\" encodes an empty id");
  return payload;
}

Status validate_document_id(std::string_view document_id) {
  auto decoded = decode_document_id(document_id);
  if (!decoded.ok()) return decoded.error();
  return Status::Ok();
}

std::string encode_document_id(ByteView binary_id) { return bs58check_encode(binary_id); }

std::string new_document_id() {
  std::array<uint8_t, 16> id{};
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) std::abort();  // no entropy: nothing sane to do
  id[6] = static_cast<uint8_t>((id[6] & 0x0f) | 0x40);  // version 4
  id[8] = static_cast<uint8_t>((id[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return encode_document_id(ByteView(id.data(), id.size()));
}

}  // namespace gm::repo
