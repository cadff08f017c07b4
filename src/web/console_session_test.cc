#include "web/console_session.h"

#include <gtest/gtest.h>

namespace gm::web {
namespace {

namespace http = boost::beast::http;

server::HttpRequest post(std::initializer_list<std::pair<std::string, std::string>> headers) {
  server::HttpRequest req{http::verb::post, "/console/api/logout", 11};
  req.set(http::field::host, "127.0.0.1:3031");
  for (const auto& [name, value] : headers) req.set(name, value);
  return req;
}

TEST(ConsoleSession, LinkCodesAreLongRandomAndOnlyTheirHashIsKept) {
  auto a = new_link_code();
  auto b = new_link_code();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 43u);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(plausible_link_code(*a));
  EXPECT_FALSE(plausible_link_code(a->substr(1)));
  EXPECT_FALSE(plausible_link_code(a->substr(1) + "/"));
  EXPECT_EQ(link_code_hash(*a).size(), 64u);
  EXPECT_EQ(link_code_hash(*a), link_code_hash(*a));
  EXPECT_EQ(link_code_hash(*a).find(*a), std::string::npos);
}

TEST(ConsoleSession, CookieValuesFindsTheNamedCookieOnly) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(cookie_values("gm_console=abc", "gm_console"), V{"abc"});
  EXPECT_EQ(cookie_values("a=1; gm_console=abc; b=2", "gm_console"), V{"abc"});
  EXPECT_EQ(cookie_values("a=1;gm_console=\"abc\"", "gm_console"), V{"abc"});
  EXPECT_EQ(cookie_values("xgm_console=abc; gm_consolex=1", "gm_console"), V{});
  EXPECT_EQ(cookie_values("", "gm_console"), V{});
  EXPECT_EQ(cookie_values(";;; =; gm_console", "gm_console"), V{});
  EXPECT_EQ(cookie_values("gm_console=", "gm_console"), V{""});
  EXPECT_EQ(cookie_values("gm_console=planted; gm_console=real", "gm_console"), (V{"planted", "real"}));
}

TEST(ConsoleSession, CookieIsHttpOnlyStrictAndSecureOverTls) {
  const std::string plain = session_cookie("T", 60, false);
  EXPECT_NE(plain.find("HttpOnly"), std::string::npos);
  EXPECT_NE(plain.find("SameSite=Strict"), std::string::npos);
  EXPECT_NE(plain.find("Path=/console"), std::string::npos);
  EXPECT_EQ(plain.find("Secure"), std::string::npos);
  EXPECT_NE(session_cookie("T", 60, true).find("; Secure"), std::string::npos);
}

TEST(ConsoleSession, SecureOverNativeTlsOrATrustedProxySayingSo) {
  server::HttpRequest req = post({{"X-Forwarded-Proto", "https"}});
  server::RequestInfo info;
  EXPECT_FALSE(request_is_secure(req, info, false));  // anyone may send the header
  EXPECT_TRUE(request_is_secure(req, info, true));
  req.set("X-Forwarded-Proto", "https, http");        // the proxy's own value is the last
  EXPECT_FALSE(request_is_secure(req, info, true));
  info.tls = true;
  EXPECT_TRUE(request_is_secure(req, info, false));
}

TEST(ConsoleSession, StateChangesMustComeFromTheConsolesOwnOrigin) {
  const server::RequestInfo info;
  auto refusal = [&](const server::HttpRequest& req) {
    return cross_site_refusal(req, console_origins(req, info, "", false));
  };
  EXPECT_EQ(refusal(post({{"Content-Type", "application/json"}})), std::nullopt);
  EXPECT_EQ(refusal(post({{"Content-Type", "application/json; charset=utf-8"},
                          {"Origin", "http://127.0.0.1:3031"},
                          {"Sec-Fetch-Site", "same-origin"}})),
            std::nullopt);
  EXPECT_NE(refusal(post({{"Content-Type", "application/json"}, {"Origin", "http://evil.example"}})), std::nullopt);
  // The scheme counts: an https page is not the plain-HTTP console's origin.
  EXPECT_NE(refusal(post({{"Content-Type", "application/json"}, {"Origin", "https://127.0.0.1:3031"}})), std::nullopt);
  EXPECT_NE(refusal(post({{"Content-Type", "application/json"}, {"Origin", "null"}})), std::nullopt);
  EXPECT_NE(refusal(post({{"Content-Type", "application/json"}, {"Sec-Fetch-Site", "cross-site"}})), std::nullopt);
  EXPECT_NE(refusal(post({{"Content-Type", "application/json"}, {"Sec-Fetch-Site", "same-site"}})), std::nullopt);
  // A form any page may post without asking first.
  EXPECT_NE(refusal(post({{"Content-Type", "application/x-www-form-urlencoded"}})), std::nullopt);
  EXPECT_NE(refusal(post({{"Content-Type", "text/plain"}})), std::nullopt);
  EXPECT_NE(refusal(post({})), std::nullopt);
}

TEST(ConsoleSession, BehindAProxyThePublicHostAndTheForwardedHostAreTheConsolesOrigins) {
  // nginx's default: Host rewritten to the upstream's address.
  server::HttpRequest req = post({{"Content-Type", "application/json"}, {"Origin", "https://sync.example.com"},
                                  {"X-Forwarded-Proto", "https"}});
  const server::RequestInfo info;
  EXPECT_EQ(cross_site_refusal(req, console_origins(req, info, "sync.example.com", true)), std::nullopt);
  EXPECT_NE(cross_site_refusal(req, console_origins(req, info, "", false)), std::nullopt);
  req.set("X-Forwarded-Host", "sync.example.com");
  EXPECT_EQ(cross_site_refusal(req, console_origins(req, info, "", true)), std::nullopt);
  EXPECT_NE(cross_site_refusal(req, console_origins(req, info, "", false)), std::nullopt);  // anyone's header
}

TEST(ConsoleSession, OnlyAConsoleKeysUnrevokedTokenInTheCookieLogsIn) {
  const auth::TokenKey app = auth::TokenKey::from_secret("secret");
  const auth::TokenKey console = app.derive(kConsoleKeyPurpose);
  auth::RevocationState revocations;
  const int64_t now = 1'800'000'000;
  auth::SessionClaims claims = auth::new_session_claims("console", kConsoleSessionSeconds, now);
  const std::string token = auth::mint_session_token(console, claims);
  revocations.console_sessions.insert(claims.token_id);
  auto with_cookie = [](const std::string& value) {
    server::HttpRequest req{http::verb::get, "/console/api/session", 11};
    req.set(http::field::cookie, "other=1; gm_console=" + value);
    return req;
  };
  auto ok = console_claims(with_cookie(token), console, revocations, now);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  // A cookie planted before it (a longer Path) does not hide it.
  EXPECT_TRUE(console_claims(with_cookie("planted; gm_console=" + token), console, revocations, now).ok());
  // An allow-list: a session the database does not hold (a restored backup) is no session.
  auth::RevocationState restored;
  EXPECT_FALSE(console_claims(with_cookie(token), console, restored, now).ok());
  EXPECT_FALSE(console_claims(with_cookie(auth::mint_session_token(app, claims)), console, revocations, now).ok());
  EXPECT_FALSE(console_claims(with_cookie(token), app, revocations, now).ok());
  EXPECT_FALSE(console_claims(with_cookie(token), console, revocations, now + kConsoleSessionSeconds + 1).ok());
  EXPECT_FALSE(console_claims(server::HttpRequest{}, console, revocations, now).ok());
  revocations.revoked_sessions.insert(ok->token_id);
  EXPECT_FALSE(console_claims(with_cookie(token), console, revocations, now).ok());
  EXPECT_NE(csrf_token(console, "a"), csrf_token(console, "b"));
  EXPECT_NE(csrf_token(console, "a"), csrf_token(app, "a"));
}

}  // namespace
}  // namespace gm::web
