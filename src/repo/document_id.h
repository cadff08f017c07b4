// Document ids and bs58check (spec/automerge.md §3.5).
//
// Usage:
//   if (auto st = gm::repo::validate_document_id(id); !st.ok()) reject(st.error());
//   std::string id = gm::repo::new_document_id();          // random UUID v4, encoded
//   Result<Bytes> raw = gm::repo::decode_document_id(id);   // the binary id
//
// Layout: documentId = base58(id ‖ SHA-256(SHA-256(id))[0..4]) with the Bitcoin
// alphabet `123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz`; each leading
// zero byte becomes a leading '1'. The binary id is normally 16 bytes (a UUID v4),
// but the JS client accepts any length, so only the checksum is enforced here. The
// same bs58check encoding names change hashes in remote-heads messages and URLs.
//
// A valid documentId uses only base58 characters, so it is also safe as a folder
// name (no '/', '.', NUL) — storage relies on that.
#pragma once

#include <string>
#include <string_view>

#include "util/base58.h"
#include "util/bytes.h"
#include "util/result.h"

namespace gm::repo {

// Longest documentId accepted (characters). Base58 decoding is quadratic; real ids
// are 22–28 characters (16–20 bytes).
inline constexpr size_t kMaxDocumentIdLength = 128;

// bs58check: base58 of payload ‖ first 4 bytes of double SHA-256 of payload.
std::string bs58check_encode(ByteView payload);
// Returns the payload; errors say whether a character or the checksum was wrong.
Result<Bytes> bs58check_decode(std::string_view text);

// documentId = bs58check(binary id); the length limit above applies.
Result<Bytes> decode_document_id(std::string_view document_id);
Status validate_document_id(std::string_view document_id);
std::string encode_document_id(ByteView binary_id);
// A fresh random id: 16 bytes with UUID v4 version and variant bits.
std::string new_document_id();

}  // namespace gm::repo
