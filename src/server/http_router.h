// Plain HTTP routes (everything that is not a WebSocket upgrade).
//
// Routes match the request path exactly (the query string is ignored) and method. Other
// parts add their routes before the server starts (auth: POST /authenticate,
// GET /.well-known/did.json). Handlers are coroutines so that a route needing slow work
// (an HTTP call to a PDS) can await it without blocking the io thread; a handler that
// does CPU-only work simply co_returns.
//
// The router answers by itself: HEAD like GET without a body; OPTIONS on a known path
// (CORS preflight) with 204 and `Allow`; 405 for a known path and other method; 404
// otherwise. Answers on paths added as cross-origin carry CORS headers
// (Access-Control-Allow-Origin echoing the request's Origin, -Methods "GET, POST,
// OPTIONS", -Headers "Content-Type, Authorization, DPoP", -Max-Age 86400), because
// browser apps call /authenticate from their own origin. Unlike the prototype, never
// Access-Control-Allow-Credentials: the credential is a header the app sets, never a
// cookie, so no other origin gets to read an answer that a browser's cookies earned.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace gm::server {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
// What the connection knows beyond the request itself.
struct RequestInfo {
  std::string remote_address;  // the client's IP address
};
using RouteHandler = std::function<boost::asio::awaitable<HttpResponse>(const HttpRequest&, const RequestInfo&)>;

// A response with `status`, a body and its content type (version 1.1, Server header set).
HttpResponse make_response(http::status status, std::string body, std::string_view content_type);

class HttpRouter {
 public:
  // Adds or replaces the route for (method, path). `path` starts with '/'. With
  // `cross_origin`, answers on that path (and its preflight) carry CORS headers, so
  // that browser apps on any origin may call it; other paths carry none, so no other
  // origin's page can read them.
  void add(http::verb method, std::string path, RouteHandler handler, bool cross_origin = false);

  // The answer for `req` (handlers' exceptions become 500 with a log line). The caller
  // sets keep-alive and writes it.
  boost::asio::awaitable<HttpResponse> route(const HttpRequest& req, const RequestInfo& info) const;

 private:
  std::map<std::pair<std::string, http::verb>, RouteHandler> routes_;
  std::set<std::string, std::less<>> cross_origin_;
};

// A route whose work blocks (network calls, the state database): `work` runs on `pool`
// while the io thread serves everyone else, and the answer is written from the io
// thread. The worker gets its own copy of the request. Bounds, checked on the io thread
// before anything is copied: a body over `max_body` bytes is answered 413; past
// `max_queued` requests of the route waiting or running, or past `max_per_client(key)`
// of one client (`client_key` of the request), 503 with Retry-After. `pool` must be
// joined before the server's io_context goes (declare it after the Server).
using BlockingWork = std::function<HttpResponse(const HttpRequest&, const RequestInfo&)>;
struct BlockingLimits {
  size_t max_queued = 64;
  size_t max_body = 8192;
  std::function<std::string(const HttpRequest&, const RequestInfo&)> client_key;  // unset: the address
  std::function<size_t(const std::string& key)> max_per_client;                   // unset: no per-client bound
};
RouteHandler blocking_route(boost::asio::thread_pool& pool, BlockingWork work, BlockingLimits limits = {});

// Adds the CORS headers to `res` for a request from `origin` (may be empty).
void add_cors_headers(HttpResponse& res, std::string_view origin);

}  // namespace gm::server
