// Session tokens: what /authenticate and `groundmist-sync token` hand out, and what a
// WebSocket presents as `?token=` (DESIGN.md "How apps use it").
//
// Usage:
//   GM_ASSIGN_OR_RETURN(gm::auth::TokenKey key, gm::auth::load_token_key_from_env(data_dir));
//   std::string token = gm::auth::mint_session_token(key, gm::auth::new_session_claims("xyz.groundmist.library", 24 * 3600));
//   gm::Result<gm::auth::SessionClaims> c = gm::auth::verify_session_token(key, token);
//   if (!c.ok()) http_401(c.error().message);   // says: malformed / version / signature / expired
//   else route_socket_to(c->group);
//
// Format (version 1), URL-safe so it can sit in a query string unescaped:
//   gms1.<claims>.<signature>
//   claims    = base64url (no padding) of compact JSON:
//               {"v":1,"grp":<group>,"iat":<unix s>,"exp":<unix s>,"jti":<token id>,
//                "sub"?:<owner DID>,"gid"?:<grant id>, …other string claims}
//   signature = base64url of HMAC-SHA256(key, "gms1." + claims)   (43 characters)
// The signature is checked (constant time) before the claims are parsed; then the
// version in the claims must match the prefix, `exp` must be in the future and `iat`
// not more than kClockSkewSeconds ahead. Unknown claims are kept, not rejected, so
// later versions can add claims that older servers still verify.
//
// Key: HKDF-SHA256(salt "groundmist-sync", info "session-token v1") of either
// GROUNDMIST_SYNC_SECRET_KEY (any non-empty string; an empty value counts as unset)
// or of 32 random bytes generated once in `<data>/.groundmist/secret.key` (mode 0600,
// created atomically: the first process to create it wins, later ones read it). A key
// file readable by group/others, or of the wrong size, is an error, never replaced:
// replacing it would silently invalidate every token.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/result.h"

namespace gm::auth {

inline constexpr int kSessionTokenVersion = 1;
inline constexpr int64_t kClockSkewSeconds = 300;
// Longer tokens are rejected before any work is done.
inline constexpr size_t kMaxSessionTokenLength = 4096;

struct SessionClaims {
  std::string group;        // the one lexicon group this token opens
  int64_t issued_at = 0;    // unix seconds
  int64_t expires_at = 0;   // unix seconds
  std::string token_id;     // random; mint fills it when empty (for revocation lists later)
  std::optional<std::string> owner_did;  // "sub": who authenticated (atproto login)
  std::optional<std::string> grant_id;   // "gid": the grant it was issued under
  std::map<std::string, std::string> extra;  // other string claims, round-tripped
  bool operator==(const SessionClaims&) const = default;
};

class TokenKey {
 public:
  // Derives the key from a configured secret string.
  static TokenKey from_secret(std::string_view secret);
  // Derives the key from raw key-file bytes; `source` names the file.
  static TokenKey from_key_file_bytes(ByteView bytes, std::string source);

  // Another key, for another kind of token (the console's: purpose "console-session
  // v1"): HMAC-SHA256(this key, purpose). A token made with it verifies only with it,
  // so it cannot pass for an app's session token, nor one of those for it.
  TokenKey derive(std::string_view purpose) const;

  ByteView bytes() const { return {key_.data(), key_.size()}; }
  // Where the key came from, for the start-up log: "GROUNDMIST_SYNC_SECRET_KEY" or a path.
  const std::string& source() const { return source_; }

 private:
  std::array<uint8_t, 32> key_{};
  std::string source_;
};

// The key from `secret` if it is set and non-empty, else from (or into)
// `<data_dir>/.groundmist/secret.key`.
Result<TokenKey> load_token_key(const std::filesystem::path& data_dir, std::optional<std::string_view> secret);
// Same, reading GROUNDMIST_SYNC_SECRET_KEY from the process environment.
Result<TokenKey> load_token_key_from_env(const std::filesystem::path& data_dir);
// `<data_dir>/.groundmist/secret.key`
std::filesystem::path secret_key_path(const std::filesystem::path& data_dir);

int64_t unix_now();
// "2026-12-06T21:39:54Z": unix seconds as ISO-8601 UTC (expiresAt, listings).
std::string iso8601_utc(int64_t unix_seconds);
// Claims for `group` valid from now for `ttl_seconds`, with a fresh token id.
SessionClaims new_session_claims(std::string group, int64_t ttl_seconds, int64_t now = unix_now());
std::string mint_session_token(const TokenKey& key, SessionClaims claims);
Result<SessionClaims> verify_session_token(const TokenKey& key, std::string_view token, int64_t now = unix_now());

// A stable 16-byte id for `subject`, unguessable without the key: the first 16 bytes of
// HMAC-SHA256(key, "<purpose>\n<subject>"). The JSON API names the Automerge actor of
// the changes it authors for a token or grant so (purpose "api-actor v1"): the same
// subject always writes as the same actor, and history shows who wrote what.
Bytes keyed_id(const TokenKey& key, std::string_view purpose, std::string_view subject);

// "90s", "15m", "12h", "30d", "2w" or plain seconds → seconds (> 0), for --ttl.
Result<int64_t> parse_duration(std::string_view text);

}  // namespace gm::auth
