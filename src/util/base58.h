// base58 with the Bitcoin alphabet (`123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz`):
// automerge-repo document ids and change hashes (spec/automerge.md §3.5) and atproto's
// multibase `z` keys (base58btc). Each leading zero byte is a leading '1'.
//
// Decoding is quadratic in the length: callers cap what they pass (document ids at 128
// characters, keys at a few hundred).
#pragma once

#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/result.h"

namespace gm {

std::string base58_encode(ByteView bytes);
// Errors name the first character outside the alphabet.
Result<Bytes> base58_decode(std::string_view text);

}  // namespace gm
