// Plain HTTP routes (everything that is not a WebSocket upgrade).
//
// Routes match the request path (the query string is ignored) and method. A path is
// exact, or a pattern whose `{name}` segments each match one non-empty segment of the
// request's path (`/api/v1/documents/{id}`); the segment, as sent (not percent-decoded:
// the names this server uses need no escapes, and a handler validates what it gets), is
// RequestInfo::params["name"]. An exact path wins over a pattern, and patterns are
// tried in the order they were added. Other parts add their routes before the server
// starts (auth: POST /authenticate, GET /.well-known/did.json; api: /api/v1/...). Handlers are coroutines so that a route needing slow work
// (an HTTP call to a PDS) can await it without blocking the io thread; a handler that
// does CPU-only work simply co_returns.
//
// The router answers by itself: HEAD like GET without a body; OPTIONS on a known path
// (CORS preflight) with 204 and `Allow`; 405 for a known path and other method; 404
// otherwise. Answers on paths added as cross-origin carry CORS headers
// (Access-Control-Allow-Origin echoing the request's Origin, -Methods: the path's
// methods and OPTIONS, -Headers "Content-Type, Authorization, DPoP, If-Match",
// -Expose-Headers "WWW-Authenticate, Retry-After, ETag", -Max-Age 86400), because
// browser apps call /authenticate (and the JSON API) from their own origin. Unlike the prototype, never
// Access-Control-Allow-Credentials: the credential is a header the app sets, never a
// cookie, so no other origin gets to read an answer that a browser's cookies earned.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gm::server {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
class EventStream;

// What the connection knows beyond the request itself.
struct RequestInfo {
  std::string remote_address;  // the client's IP address
  bool tls = false;            // whether the connection is TLS (native; a proxy's is in its headers)
  std::map<std::string, std::string, std::less<>> params;  // a pattern route's {name} segments
  // Where a handler that answers with an event stream (server/event_stream.h) puts it;
  // its response then carries only the status and headers. Null where the caller
  // cannot stream (the handler answers 501 then).
  std::shared_ptr<EventStream>* event_stream = nullptr;
};
using RouteHandler = std::function<boost::asio::awaitable<HttpResponse>(const HttpRequest&, const RequestInfo&)>;

// A response with `status`, a body and its content type (version 1.1, Server header set).
HttpResponse make_response(http::status status, std::string body, std::string_view content_type);

class HttpRouter {
 public:
  // Adds or replaces the route for (method, path). `path` starts with '/' and may hold
  // `{name}` segments (a pattern, see above). With
  // `cross_origin`, answers on that path (and its preflight) carry CORS headers, so
  // that browser apps on any origin may call it; other paths carry none, so no other
  // origin's page can read them.
  void add(http::verb method, std::string path, RouteHandler handler, bool cross_origin = false);

  // Runs `decorate` on every answer for a path that is `prefix` or below it ("/console":
  // "/console", "/console/…"), the router's own 404, 405 and OPTIONS answers included
  // (e.g. the console's security headers).
  void decorate(std::string prefix, std::function<void(HttpResponse&)> decorate);

  // The answer for `req` (handlers' exceptions become 500 with a log line). The caller
  // sets keep-alive and writes it.
  boost::asio::awaitable<HttpResponse> route(const HttpRequest& req, const RequestInfo& info) const;

  // Every (path or pattern, method) routed, in order (e.g. to check an API's description).
  std::vector<std::pair<std::string, http::verb>> routes() const;

 private:
  // The route key (exact path or pattern) for a request path, filling `params`; empty
  // if none.
  std::string match(const std::string& path, RequestInfo& info) const;

  std::map<std::pair<std::string, http::verb>, RouteHandler> routes_;
  std::vector<std::string> patterns_;  // in the order added
  std::set<std::string, std::less<>> cross_origin_;
  std::vector<std::pair<std::string, std::function<void(HttpResponse&)>>> decorators_;
};

// Requests under way, server-wide and per client, for routes that hand work to other
// threads: admit() counts a request in only below both bounds, and the Ticket it gives
// counts it out when destroyed. Used on the io thread only.
class RequestLimiter {
  struct State {
    size_t max_total = 0;
    size_t total = 0;
    std::map<std::string, size_t, std::less<>> per_key;
  };

 public:
  explicit RequestLimiter(size_t max_total) : state_(std::make_shared<State>()) { state_->max_total = max_total; }

  class Ticket {
   public:
    Ticket(Ticket&& other) noexcept = default;
    Ticket& operator=(Ticket&&) = delete;
    Ticket(const Ticket&) = delete;
    ~Ticket();

   private:
    friend class RequestLimiter;
    Ticket(std::shared_ptr<State> state, std::string key) : state_(std::move(state)), key_(std::move(key)) {}
    std::shared_ptr<State> state_;
    std::string key_;
  };
  // A ticket, or none if `max_total` requests are under way, or `max_for_key` of `key`.
  std::optional<Ticket> admit(const std::string& key, size_t max_for_key);
  size_t under_way() const { return state_->total; }

 private:
  std::shared_ptr<State> state_;
};

// 503 with Retry-After: 1, for a request over a RequestLimiter's bounds.
HttpResponse busy_response(std::string body = "busy, try again in a second\n",
                           std::string_view content_type = "text/plain; charset=utf-8");

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

// Adds the CORS headers to `res` for a request from `origin` (may be empty); `methods`
// is the Access-Control-Allow-Methods list.
void add_cors_headers(HttpResponse& res, std::string_view origin, std::string_view methods = "GET, POST, OPTIONS");

}  // namespace gm::server
