// base64url without padding (RFC 4648 §5), as used in URLs and JWTs.
//
// Usage: std::string s = gm::base64url_encode(bytes);
//        GM_ASSIGN_OR_RETURN(gm::Bytes b, gm::base64url_decode(s));
#pragma once

#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/result.h"

namespace gm {

std::string base64url_encode(ByteView bytes);
// Strict: alphabet A–Z a–z 0–9 - _, no padding, no whitespace, unused trailing bits zero
// (so every byte string has exactly one encoding).
Result<Bytes> base64url_decode(std::string_view text);

}  // namespace gm
