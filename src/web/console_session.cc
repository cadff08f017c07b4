#include "web/console_session.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <algorithm>
#include <cctype>

#include "auth/authenticator.h"
#include "util/base64url.h"
#include "util/hex.h"
#include "util/sha256.h"
#include "util/text.h"

namespace gm::web {

namespace http = boost::beast::http;

namespace {

std::string_view strip(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

Result<std::string> new_link_code() {
  std::array<uint8_t, 32> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) return error("no randomness for a link code");
  std::string code = base64url_encode(ByteView(random.data(), random.size()));
  OPENSSL_cleanse(random.data(), random.size());
  return code;
}

std::string link_code_hash(std::string_view code) { return to_hex(sha256(as_bytes(code))); }

bool plausible_link_code(std::string_view code) {
  if (code.size() != 43) return false;
  for (char c : code) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

std::vector<std::string_view> cookie_values(std::string_view header, std::string_view name) {
  std::vector<std::string_view> values;
  while (!header.empty()) {
    const size_t end = header.find(';');
    std::string_view pair = strip(header.substr(0, end));
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
    std::string_view value = pair.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    values.push_back(value);
  }
  return values;
}

std::string session_cookie(std::string_view token, int64_t max_age, bool secure) {
  std::string cookie = std::string(kSessionCookie) + "=" + std::string(token) + "; Path=/console; Max-Age=" +
                       std::to_string(max_age) + "; HttpOnly; SameSite=Strict";
  if (secure) cookie += "; Secure";
  return cookie;
}

std::string csrf_token(const auth::TokenKey& console_key, std::string_view session_id) {
  return base64url_encode(auth::keyed_id(console_key, "console-csrf v1", session_id));
}

bool request_is_secure(const server::HttpRequest& req, const server::RequestInfo& info, bool trust_proxy) {
  if (info.tls) return true;
  if (!trust_proxy) return false;
  // The proxy's own value is the last one (as for X-Forwarded-For).
  std::string_view proto = req["X-Forwarded-Proto"];
  if (const size_t comma = proto.rfind(','); comma != std::string_view::npos) proto.remove_prefix(comma + 1);
  return ascii_lower(strip(proto)) == "https";
}

std::vector<std::string> console_origins(const server::HttpRequest& req, const server::RequestInfo& info,
                                         std::string_view public_host, bool trust_proxy) {
  const std::string scheme = request_is_secure(req, info, trust_proxy) ? "https://" : "http://";
  std::vector<std::string> origins{scheme + ascii_lower(strip(req[http::field::host]))};
  if (!public_host.empty()) origins.push_back(ascii_lower(auth::public_origin(public_host)));
  if (trust_proxy) {
    std::string_view forwarded = req["X-Forwarded-Host"];
    if (const size_t comma = forwarded.rfind(','); comma != std::string_view::npos) forwarded.remove_prefix(comma + 1);
    if (!strip(forwarded).empty()) origins.push_back(scheme + ascii_lower(strip(forwarded)));
  }
  return origins;
}

std::optional<std::string> cross_site_refusal(const server::HttpRequest& req, const std::vector<std::string>& origins) {
  // Browsers since 2020 say where a request comes from; "same-origin" is the console's
  // own page, "none" a user typing the address (never a POST with a JSON body).
  const std::string_view site = req["Sec-Fetch-Site"];
  if (!site.empty() && site != "same-origin" && site != "none") {
    return "a request from another site (Sec-Fetch-Site: " + std::string(site.substr(0, 40)) + ")";
  }
  const std::string_view origin = req[http::field::origin];
  if (!origin.empty() && std::find(origins.begin(), origins.end(), ascii_lower(origin)) == origins.end()) {
    return "a request from another origin (" + std::string(origin.substr(0, 100)) + ")";
  }
  std::string_view type = req[http::field::content_type];
  type = strip(type.substr(0, type.find(';')));
  if (ascii_lower(type) != "application/json") return "the body must be application/json";
  return std::nullopt;
}

Result<auth::SessionClaims> console_claims(const server::HttpRequest& req, const auth::TokenKey& console_key,
                                           const auth::RevocationState& revocations, int64_t now) {
  const std::vector<std::string_view> tokens = cookie_values(req[http::field::cookie], kSessionCookie);
  if (tokens.empty()) return error("not logged in to the console (run `groundmist-sync console-link`)");
  std::optional<Error> first_error;
  for (std::string_view token : tokens) {
    Result<auth::SessionClaims> claims = auth::verify_session_token(console_key, token, now);
    if (claims && (revocations.revoked(claims->token_id, claims->issued_at) ||
                   !revocations.console_sessions.count(claims->token_id))) {
      claims = error("this console session was revoked");
    }
    if (claims) return claims;
    if (!first_error) first_error = claims.error();
  }
  return *first_error;
}

}  // namespace gm::web
