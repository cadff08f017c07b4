#include "server/http_router.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace gm::server {
namespace {

namespace asio = boost::asio;

// A handler that answers with the route it is and the parameters it got.
RouteHandler echo(std::string name) {
  return [name](const HttpRequest&, const RequestInfo& info) -> asio::awaitable<HttpResponse> {
    std::string body = name;
    for (const auto& [k, v] : info.params) body += " " + k + "=" + v;
    co_return make_response(http::status::ok, body, "text/plain");
  };
}

HttpResponse call(const HttpRouter& router, http::verb method, std::string target, std::string origin = "") {
  asio::io_context io;
  HttpRequest req{method, target, 11};
  if (!origin.empty()) req.set(http::field::origin, origin);
  // Named: route() keeps a reference to it until the coroutine has run (a temporary
  // would be gone by io.run(); ASan caught it).
  const RequestInfo info{"127.0.0.1", {}};
  auto future = asio::co_spawn(io, router.route(req, info), asio::use_future);
  io.run();
  return future.get();
}

HttpRouter api_router() {
  HttpRouter r;
  r.add(http::verb::get, "/api/v1/groups", echo("groups"), true);
  r.add(http::verb::get, "/api/v1/groups/{group}/documents", echo("list"), true);
  r.add(http::verb::post, "/api/v1/groups/{group}/documents", echo("create"), true);
  r.add(http::verb::get, "/api/v1/documents/{id}", echo("read"), true);
  r.add(http::verb::patch, "/api/v1/documents/{id}", echo("patch"), true);
  r.add(http::verb::get, "/api/v1/documents/{id}/changes", echo("changes"), true);
  r.add(http::verb::get, "/api/v1/documents/special", echo("special"));
  return r;
}

TEST(HttpRouter, PatternsFillParameters) {
  HttpRouter r = api_router();
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/groups").body(), "groups");
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/groups/xyz.app/documents?limit=3").body(), "list group=xyz.app");
  EXPECT_EQ(call(r, http::verb::post, "/api/v1/groups/xyz.app/documents").body(), "create group=xyz.app");
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/documents/abc").body(), "read id=abc");
  EXPECT_EQ(call(r, http::verb::patch, "/api/v1/documents/abc").body(), "patch id=abc");
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/documents/abc/changes?since=x").body(), "changes id=abc");
}

TEST(HttpRouter, ExactPathWinsOverPattern) {
  HttpRouter r = api_router();
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/documents/special").body(), "special");
  // The exact path's methods only: no fall-through to the pattern.
  EXPECT_EQ(call(r, http::verb::patch, "/api/v1/documents/special").result(), http::status::method_not_allowed);
}

TEST(HttpRouter, ParametersNeverMatchEmptyOrSeveralSegments) {
  HttpRouter r = api_router();
  for (const char* target : {"/api/v1/documents/", "/api/v1/documents/a/b", "/api/v1/groups//documents",
                             "/api/v1/documents/a/changes/x", "/api/v1", "/api/v1/documents"}) {
    EXPECT_EQ(call(r, http::verb::get, target).result(), http::status::not_found) << target;
  }
}

TEST(HttpRouter, DecoratorsReachEveryAnswerBelowTheirPrefixOnly) {
  HttpRouter r = api_router();
  r.decorate("/api/v1/documents", [](HttpResponse& res) { res.set("X-Seen", "1"); });
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/documents/abc")["X-Seen"], "1");
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/documents/a/b")["X-Seen"], "1");   // the router's 404
  EXPECT_EQ(call(r, http::verb::delete_, "/api/v1/documents/abc")["X-Seen"], "1");  // its 405
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/documents")["X-Seen"], "1");
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/documentsx")["X-Seen"], "");
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/groups/g/documents")["X-Seen"], "");
}

TEST(HttpRouter, PatternMethodsAnd405AndPreflight) {
  HttpRouter r = api_router();
  auto wrong = call(r, http::verb::delete_, "/api/v1/documents/abc");
  EXPECT_EQ(wrong.result(), http::status::method_not_allowed);
  EXPECT_EQ(wrong[http::field::allow], "GET, HEAD, PATCH, OPTIONS");
  auto preflight = call(r, http::verb::options, "/api/v1/documents/abc", "https://app.example");
  EXPECT_EQ(preflight.result(), http::status::no_content);
  EXPECT_EQ(preflight[http::field::access_control_allow_origin], "https://app.example");
  EXPECT_EQ(preflight[http::field::access_control_allow_methods], "GET, HEAD, PATCH, OPTIONS");
  EXPECT_NE(preflight[http::field::access_control_allow_headers].find("If-Match"), std::string::npos);
  EXPECT_EQ(preflight[http::field::access_control_allow_credentials], "");
  // Not cross-origin: no CORS headers.
  EXPECT_EQ(call(r, http::verb::get, "/api/v1/documents/special", "https://app.example")
                [http::field::access_control_allow_origin],
            "");
  auto head = call(r, http::verb::head, "/api/v1/documents/abc");
  EXPECT_EQ(head.result(), http::status::ok);
  EXPECT_TRUE(head.body().empty());
}

}  // namespace
}  // namespace gm::server

namespace gm::server {
namespace {

TEST(RequestLimiter, BoundsPerKeyAndInAll) {
  RequestLimiter limiter(3);
  auto a1 = limiter.admit("a", 2);
  auto a2 = limiter.admit("a", 2);
  ASSERT_TRUE(a1 && a2);
  EXPECT_FALSE(limiter.admit("a", 2));  // a's own bound
  auto b1 = limiter.admit("b", 2);
  ASSERT_TRUE(b1);
  EXPECT_FALSE(limiter.admit("c", 2));  // the server's
  EXPECT_EQ(limiter.under_way(), 3u);
  a1.reset();
  EXPECT_EQ(limiter.under_way(), 2u);
  auto a3 = limiter.admit("a", 2);
  EXPECT_TRUE(a3);
  {
    std::optional<RequestLimiter::Ticket> moved(std::move(*a3));
    a3.reset();  // a moved-from ticket counts nothing out
    EXPECT_EQ(limiter.under_way(), 3u);
  }
  EXPECT_EQ(limiter.under_way(), 2u);
}

}  // namespace
}  // namespace gm::server
