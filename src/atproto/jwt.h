// Compact JWS / JWT parsing (RFC 7515 §7.1), the framing shared by atproto service-auth
// tokens, DPoP proofs and OAuth access tokens:
//
//   base64url(header JSON) "." base64url(payload JSON) "." base64url(signature)
//
// Each segment is strict unpadded base64url and non-empty (so an unsigned "alg":"none"
// token, whose signature segment is empty, is malformed here); header and payload are JSON
// objects with no repeated member names (two parsers could pick different copies); the
// whole token is at most kMaxJwtLength characters. The signature is verified over the
// token's own first two segments, kept verbatim in `signing_input`: a parsed JSON value
// is never re-serialised for that.
//
// This file checks form only; what the claims must say is the caller's policy
// (service_auth.h, dpop.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/result.h"
#include "util/text.h"

namespace gm::atproto {

inline constexpr size_t kMaxJwtLength = 8 * 1024;

struct CompactJwt {
  std::string signing_input;  // "b64(header).b64(payload)", exactly as received
  nlohmann::json header;      // a JSON object
  nlohmann::json payload;     // a JSON object
  Bytes signature;            // decoded, not checked
};

// Errors start with "malformed JWT: ".
Result<CompactJwt> parse_compact_jwt(std::string_view token);

// Parses `text` as a JSON object whose top-level member names are unique; `what` names it
// in errors ("JWT header").
Result<nlohmann::json> parse_unique_json_object(std::string_view text, std::string_view what);

// Reading claims (header or payload members) for the policies built on this file.
// Unix seconds beyond the year 9999 are not a time; the bound also keeps exp + leeway
// and exp - iat far from overflow.
inline constexpr int64_t kMaxUnixTime = 253402300799;
// The member `name` if it is a string, else nullptr.
const std::string* string_claim(const nlohmann::json& object, const char* name);
// The member `name` if it is an integer in [0, kMaxUnixTime], else nullopt.
std::optional<int64_t> time_claim(const nlohmann::json& object, const char* name);
// A claim value for an error message: printable (util/text.h), at most 120 bytes.
std::string clip_claim(std::string_view s);

}  // namespace gm::atproto
