// The owner's console session (docs/console.md "Logging in", "Safety"): one-time link
// codes, the cookie, the CSRF token and the same-origin checks. No I/O here.
//
// A console session is a session token (auth/session_token.h) made with a key derived
// for the console alone (TokenKey::derive("console-session v1")), so it cannot pass for
// an app's token nor an app's token for it; its id is a row of kind "console" in the
// sessions table, revoked like any other. The browser holds it in an HttpOnly cookie:
// no script of the page ever sees it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/revocation_watcher.h"
#include "auth/session_token.h"
#include "server/http_router.h"
#include "util/result.h"

namespace gm::web {

inline constexpr std::string_view kSessionCookie = "gm_console";
inline constexpr std::string_view kConsoleKeyPurpose = "console-session v1";
inline constexpr std::string_view kConsoleGroupClaim = "console";  // a token's `grp` must be set
inline constexpr std::string_view kConsoleSessionKind = "console";
inline constexpr int64_t kConsoleSessionSeconds = 12 * 3600;
inline constexpr int64_t kConsoleLinkSeconds = 10 * 60;
inline constexpr std::string_view kCsrfHeader = "X-CSRF-Token";

// A fresh link code: 32 random bytes, base64url (43 characters).
Result<std::string> new_link_code();
// What the database keeps of a code: its SHA-256, hex.
std::string link_code_hash(std::string_view code);
// Whether `code` looks like one new_link_code makes (checked before any database work).
bool plausible_link_code(std::string_view code);

// The values of cookie `name` in a Cookie header ("a=1; gm_console=…"), in order. There
// may be several: a page of the same site (another port, a sibling host) can plant one
// with a longer Path, which browsers send first.
std::vector<std::string_view> cookie_values(std::string_view header, std::string_view name);
// The Set-Cookie value for a session token (`max_age` 0 with an empty token clears it).
std::string session_cookie(std::string_view token, int64_t max_age, bool secure);

// The CSRF token of a console session: HMAC of its id under the console key, so the
// server needs to keep nothing; a page reads it from /console/api/session (same-origin
// only) and sends it back in X-CSRF-Token.
std::string csrf_token(const auth::TokenKey& console_key, std::string_view session_id);

// Whether the request came over TLS: natively, or through a trusted proxy that says so.
bool request_is_secure(const server::HttpRequest& req, const server::RequestInfo& info, bool trust_proxy);

// The origins the console's pages may be served from, for this request: its own (the
// connection's scheme and the Host header), the public host's, and, behind a trusted
// proxy, the one the proxy names (X-Forwarded-Proto and -Host), since a proxy may
// rewrite Host.
std::vector<std::string> console_origins(const server::HttpRequest& req, const server::RequestInfo& info,
                                         std::string_view public_host, bool trust_proxy);

// Why a browser request that changes something must be refused, or nothing: a
// cross-site fetch (Sec-Fetch-Site), an Origin (scheme, host and port) not among
// `origins`, or a body that is not JSON (a form another site could post without a
// preflight).
std::optional<std::string> cross_site_refusal(const server::HttpRequest& req, const std::vector<std::string>& origins);

// The console session a request's cookie carries: checked (signature, expiry, the
// console key), recorded and not revoked (RevocationState::console_sessions); or why
// not. Of several cookies of that name, the first that passes.
Result<auth::SessionClaims> console_claims(const server::HttpRequest& req, const auth::TokenKey& console_key,
                                           const auth::RevocationState& revocations, int64_t now = auth::unix_now());

}  // namespace gm::web
