#include "repo/document_id.h"

#include <openssl/rand.h>

#include <array>
#include <cstring>

#include "util/base58.h"
#include "util/sha256.h"

namespace gm::repo {
namespace {

std::array<uint8_t, 4> checksum(ByteView payload) {
  Sha256Digest once = sha256(payload);
  Sha256Digest twice = sha256(ByteView(once.data(), once.size()));
  return {twice[0], twice[1], twice[2], twice[3]};
}

}  // namespace

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
