#include "atproto/http_client.h"

#include <gtest/gtest.h>

#include "atproto/http_test_server.h"

namespace gm::atproto {
namespace {

using testing::TestHttpServer;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(HttpClient, Get200) {
  TestHttpServer server([](const TestHttpServer::Request& req) -> std::optional<std::string> {
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.target, "/hello?x=1");
    EXPECT_EQ(req.headers.at("x-test"), "yes");
    return TestHttpServer::response(200, "{\"ok\":true}");
  });
  HttpOptions options;
  options.headers.push_back("X-Test: yes");
  auto r = http_get(server.url("/hello?x=1"), options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"ok\":true}");
  EXPECT_EQ(r->content_type, "application/json");
}

TEST(HttpClient, StatusIsAResultNotAnError) {
  TestHttpServer server([](const TestHttpServer::Request&) -> std::optional<std::string> {
    return TestHttpServer::response(404, "not here", "text/plain");
  });
  auto r = http_get(server.url("/missing"), {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "not here");
}

TEST(HttpClient, PostJson) {
  TestHttpServer server([](const TestHttpServer::Request& req) -> std::optional<std::string> {
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.headers.at("content-type"), "application/json");
    EXPECT_EQ(req.headers.at("authorization"), "Bearer abc");
    return TestHttpServer::response(200, "echo:" + req.body);
  });
  HttpOptions options;
  options.headers.push_back("Authorization: Bearer abc");
  auto r = http_post_json(server.url("/x"), "{\"a\":1}", options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "echo:{\"a\":1}");
}

TEST(HttpClient, PostFormAndResponseHeaders) {
  TestHttpServer server([](const TestHttpServer::Request& req) -> std::optional<std::string> {
    EXPECT_EQ(req.headers.at("content-type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(req.body, "a=1&redirect_uri=http%3A%2F%2F127.0.0.1%3A3031%2Fcb%3Fx%3Dy&sp=a%20b%2B~");
    return std::string(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nDPoP-Nonce: n-1\r\n"
        "Cache-Control: no-store\r\nCache-Control: private\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
  });
  auto r = http_post_form(server.url("/par"),
                          {{"a", "1"}, {"redirect_uri", "http://127.0.0.1:3031/cb?x=y"}, {"sp", "a b+~"}}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->headers.at("dpop-nonce"), "n-1");
  EXPECT_EQ(r->headers.at("cache-control"), "no-store, private");
  EXPECT_EQ(r->headers.count("DPoP-Nonce"), 0u);  // names are lower-cased
}

TEST(HttpClient, TooManyResponseHeadersAreRefused) {
  TestHttpServer server([](const TestHttpServer::Request&) -> std::optional<std::string> {
    std::string res = "HTTP/1.1 200 OK\r\n";
    for (size_t i = 0; i <= kMaxResponseHeaders; ++i) res += "X-" + std::to_string(i) + ": y\r\n";
    return res + "Content-Length: 0\r\nConnection: close\r\n\r\n";
  });
  auto r = http_get(server.url("/"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverLimit);
  EXPECT_TRUE(contains(r.error().message, "header")) << r.error().message;
}

TEST(HttpClient, PercentEncoding) {
  EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(percent_encode("a b/?#&=+%\xff"), "a%20b%2F%3F%23%26%3D%2B%25%FF");
  EXPECT_EQ(form_encode({}), "");
  EXPECT_EQ(form_encode({{"k y", "v&w"}, {"e", ""}}), "k%20y=v%26w&e=");
}

TEST(HttpClient, BodyOverTheCapIsRefused) {
  const std::string big(1 << 20, 'x');
  // With a Content-Length (refused up front) and without one (aborted while reading).
  TestHttpServer server([&big](const TestHttpServer::Request& req) -> std::optional<std::string> {
    if (req.target == "/sized") return TestHttpServer::response(200, big, "text/plain");
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + big;
  });
  HttpOptions options;
  options.max_response_bytes = 64 << 10;
  for (const char* path : {"/sized", "/streamed"}) {
    auto r = http_get(server.url(path), options);
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_TRUE(contains(r.error().message, "larger than 65536 bytes")) << r.error().message;
    EXPECT_TRUE(r.error().code == ErrorCode::kOverLimit);
  }
  // Exactly the cap is fine.
  options.max_response_bytes = big.size();
  auto r = http_get(server.url("/streamed"), options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body.size(), big.size());
}

TEST(HttpClient, TimesOut) {
  TestHttpServer server([](const TestHttpServer::Request&) -> std::optional<std::string> { return std::nullopt; });
  HttpOptions options;
  options.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  auto r = http_get(server.url("/slow"), options);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "no answer within 300 ms")) << r.error().message;
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(HttpClient, ConnectionRefusedIsAnError) {
  uint16_t port;
  {
    TestHttpServer server([](const TestHttpServer::Request&) -> std::optional<std::string> { return ""; });
    port = server.port();
  }
  auto r = http_get("http://127.0.0.1:" + std::to_string(port) + "/", {});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "GET http://127.0.0.1:")) << r.error().message;
}

TEST(HttpClient, UrlPolicy) {
  EXPECT_TRUE(check_url("https://example.com/x").ok());
  EXPECT_TRUE(check_url("HTTPS://Example.COM:8443/x?y=1").ok());
  EXPECT_TRUE(check_url("http://localhost:2583/xrpc").ok());
  EXPECT_TRUE(check_url("http://127.0.0.1/").ok());
  EXPECT_TRUE(check_url("http://[::1]:80/").ok());

  auto refused = [](const std::string& url, const std::string& why) {
    Status s = check_url(url);
    ASSERT_FALSE(s.ok()) << url;
    EXPECT_TRUE(contains(s.error().message, why)) << url << ": " << s.error().message;
  };
  refused("http://example.com/", "plain http:// is only allowed to localhost");
  refused("http://127.0.0.2/", "plain http:// is only allowed to localhost");
  refused("http://localhost.example.com/", "plain http:// is only allowed to localhost");
  refused("ftp://example.com/", "only https:// URLs are allowed");
  refused("file:///etc/passwd", "only https:// URLs are allowed");
  refused("gopher://localhost/", "only https:// URLs are allowed");
  refused("example.com/path", "has no scheme");
  refused("https://user:pw@example.com/", "user:password@");
  refused("https://user@example.com/", "user:password@");
  refused("https://exa mple.com/", "spaces or control characters");
  refused("https://example.com/\r\nX: y", "spaces or control characters");
  refused("https://", "");
  refused("https://:443/", "");
  refused("", "has no scheme");
}

TEST(HttpClient, RefusedUrlsMakeNoConnection) {
  TestHttpServer server(
      [](const TestHttpServer::Request&) -> std::optional<std::string> { return TestHttpServer::response(200, ""); });
  // The test server listens on 127.0.0.1 only; 'user@' and the scheme are refused first.
  auto r = http_get("http://user@127.0.0.1:" + std::to_string(server.port()) + "/", {});
  ASSERT_FALSE(r.ok());
  auto s = http_get("ftp://127.0.0.1:" + std::to_string(server.port()) + "/", {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(server.requests(), 0);
}

TEST(HttpClient, RedirectsOnlyWhenAskedAndUnderThePolicy) {
  std::string self;
  TestHttpServer server([&self](const TestHttpServer::Request& req) -> std::optional<std::string> {
    if (req.target == "/a") return TestHttpServer::response(302, "", "text/plain", "Location: /b\r\n");
    if (req.target == "/b") {
      // Credentials are kept on the same origin.
      EXPECT_EQ(req.headers.count("authorization"), 1u);
      return TestHttpServer::response(200, "landed", "text/plain");
    }
    if (req.target == "/away") {
      return TestHttpServer::response(302, "", "text/plain", "Location: http://example.com/\r\n");
    }
    if (req.target == "/loop") return TestHttpServer::response(302, "", "text/plain", "Location: /loop\r\n");
    return TestHttpServer::response(404, "");
  });
  HttpOptions options;
  options.headers.push_back("Authorization: Bearer t");
  auto not_followed = http_get(server.url("/a"), options);
  ASSERT_TRUE(not_followed.ok());
  EXPECT_EQ(not_followed->status, 302);

  options.follow_redirects = true;
  auto followed = http_get(server.url("/a"), options);
  ASSERT_TRUE(followed.ok()) << followed.error().message;
  EXPECT_EQ(followed->status, 200);
  EXPECT_EQ(followed->body, "landed");

  auto away = http_get(server.url("/away"), options);
  ASSERT_FALSE(away.ok());
  EXPECT_TRUE(contains(away.error().message, "plain http:// is only allowed")) << away.error().message;

  auto loop = http_get(server.url("/loop"), options);
  ASSERT_FALSE(loop.ok());
  EXPECT_TRUE(contains(loop.error().message, "more than 5 redirects")) << loop.error().message;
}

TEST(HttpClient, HeadersWithLineBreaksAreRefused) {
  HttpOptions options;
  options.headers.push_back("X-A: b\r\nX-Injected: c");
  auto r = http_get("http://127.0.0.1:1/", options);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "line break")) << r.error().message;
}

}  // namespace
}  // namespace gm::atproto
