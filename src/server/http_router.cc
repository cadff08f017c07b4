#include "server/http_router.h"

#include <spdlog/spdlog.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <map>
#include <exception>
#include <memory>

#include "server/url_query.h"

namespace gm::server {

HttpResponse make_response(http::status status, std::string body, std::string_view content_type) {
  HttpResponse res{status, 11};
  res.set(http::field::server, "groundmist-sync");
  if (!content_type.empty()) res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

void add_cors_headers(HttpResponse& res, std::string_view origin, std::string_view methods) {
  if (!origin.empty()) {
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::vary, "Origin");
  }
  res.set(http::field::access_control_allow_methods, methods);
  res.set(http::field::access_control_allow_headers, "Content-Type, Authorization, DPoP, If-Match");
  res.set(http::field::access_control_expose_headers, "WWW-Authenticate, Retry-After, ETag, Location, Groundmist-Group");
  res.set(http::field::access_control_max_age, "86400");
}

RequestLimiter::Ticket::~Ticket() {
  if (!state_) return;  // moved from
  --state_->total;
  if (auto c = state_->per_key.find(key_); c != state_->per_key.end() && --c->second == 0) state_->per_key.erase(c);
}

std::optional<RequestLimiter::Ticket> RequestLimiter::admit(const std::string& key, size_t max_for_key) {
  auto it = state_->per_key.find(key);
  const size_t mine = it == state_->per_key.end() ? 0 : it->second;
  if (state_->total >= state_->max_total || mine >= max_for_key) return std::nullopt;
  ++state_->total;
  ++state_->per_key[key];
  return Ticket(state_, key);
}

HttpResponse busy_response(std::string body, std::string_view content_type) {
  HttpResponse busy = make_response(http::status::service_unavailable, std::move(body), content_type);
  busy.set(http::field::retry_after, "1");
  return busy;
}

RouteHandler blocking_route(boost::asio::thread_pool& pool, BlockingWork work, BlockingLimits limits) {
  struct State {
    BlockingWork work;
    BlockingLimits limits;
    RequestLimiter limiter;  // touched only on the io thread (admission, and the answer's way back)
  };
  const size_t max_queued = limits.max_queued;
  auto state = std::make_shared<State>(State{std::move(work), std::move(limits), RequestLimiter(max_queued)});
  return [&pool, state](const HttpRequest& req, const RequestInfo& info) -> boost::asio::awaitable<HttpResponse> {
    const BlockingLimits& limits = state->limits;
    if (req.body().size() > limits.max_body) {
      co_return make_response(http::status::payload_too_large,
                              "request body over " + std::to_string(limits.max_body) + " bytes\n",
                              "text/plain; charset=utf-8");
    }
    const std::string key = limits.client_key ? limits.client_key(req, info) : info.remote_address;
    std::optional<RequestLimiter::Ticket> ticket =
        state->limiter.admit(key, limits.max_per_client ? limits.max_per_client(key) : SIZE_MAX);
    if (!ticket) co_return busy_response();
    // Plain handlers, not a coroutine lambda with captures (g++ 12 destroys those twice
    // when co_spawn runs them). The worker owns its copy of the request: this coroutine
    // may be destroyed meanwhile (at shutdown) while the worker still runs.
    auto initiate = [&pool, state, req = HttpRequest(req), info](auto handler) mutable {
      boost::asio::post(pool, [state, req = std::move(req), info = std::move(info),
                               handler = std::move(handler)]() mutable {
        HttpResponse res;
        try {
          res = state->work(req, info);
        } catch (const std::exception& e) {
          spdlog::error("http {}: handler failed: {}", std::string(req.target()), e.what());
          res = make_response(http::status::internal_server_error, "internal error\n", "text/plain");
        }
        auto executor = boost::asio::get_associated_executor(handler);
        boost::asio::post(executor, [handler = std::move(handler), res = std::move(res)]() mutable {
          std::move(handler)(std::move(res));
        });
      });
    };
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(HttpResponse)>(
        std::move(initiate), boost::asio::use_awaitable);
  };
}

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t start = 1;  // after the leading '/'
  for (;;) {
    const size_t slash = path.find('/', start);
    segments.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) return segments;
    start = slash + 1;
  }
}

bool is_parameter(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void HttpRouter::add(http::verb method, std::string path, RouteHandler handler, bool cross_origin) {
  if (cross_origin) cross_origin_.insert(path);
  if (path.find('{') != std::string::npos && std::find(patterns_.begin(), patterns_.end(), path) == patterns_.end()) {
    patterns_.push_back(path);
  }
  routes_[{std::move(path), method}] = std::move(handler);
}

void HttpRouter::decorate(std::string prefix, std::function<void(HttpResponse&)> decorate) {
  decorators_.emplace_back(std::move(prefix), std::move(decorate));
}

std::vector<std::pair<std::string, http::verb>> HttpRouter::routes() const {
  std::vector<std::pair<std::string, http::verb>> out;
  for (const auto& [key, handler] : routes_) out.push_back(key);
  return out;
}

std::string HttpRouter::match(const std::string& path, RequestInfo& info) const {
  auto exact = routes_.lower_bound({path, http::verb::unknown});
  if (exact != routes_.end() && exact->first.first == path) return path;
  if (path.empty() || path.front() != '/') return {};
  const std::vector<std::string_view> segments = split_path(path);
  for (const std::string& pattern : patterns_) {
    const std::vector<std::string_view> want = split_path(pattern);
    if (want.size() != segments.size()) continue;
    std::map<std::string, std::string, std::less<>> params;
    bool ok = true;
    for (size_t i = 0; ok && i < want.size(); ++i) {
      if (is_parameter(want[i])) {
        ok = !segments[i].empty();
        params[std::string(want[i].substr(1, want[i].size() - 2))] = std::string(segments[i]);
      } else {
        ok = want[i] == segments[i];
      }
    }
    if (!ok) continue;
    info.params = std::move(params);
    return pattern;
  }
  return {};
}

boost::asio::awaitable<HttpResponse> HttpRouter::route(const HttpRequest& req, const RequestInfo& request_info) const {
  RequestInfo info = request_info;
  const std::string path = match(std::string(split_target(req.target()).path), info);
  const std::string origin(req[http::field::origin]);
  const bool head = req.method() == http::verb::head;
  const http::verb method = head ? http::verb::get : req.method();

  std::string allowed;  // methods routed for this path, for 405 and OPTIONS
  for (auto it = routes_.lower_bound({path, http::verb::unknown}); it != routes_.end() && it->first.first == path;
       ++it) {
    if (!allowed.empty()) allowed += ", ";
    allowed += std::string(http::to_string(it->first.second));
    if (it->first.second == http::verb::get) allowed += ", HEAD";
  }

  HttpResponse res;
  auto route = routes_.find({path, method});
  if (route != routes_.end()) {
    std::exception_ptr failure;
    try {
      res = co_await route->second(req, info);
    } catch (const std::exception& e) {
      spdlog::error("http {} {}: handler failed: {}", std::string(req.method_string()), path, e.what());
      failure = std::current_exception();
    }
    if (failure) res = make_response(http::status::internal_server_error, "internal error\n", "text/plain");
  } else if (allowed.empty()) {
    res = make_response(http::status::not_found, "not found\n", "text/plain; charset=utf-8");
  } else if (req.method() == http::verb::options) {
    res = make_response(http::status::no_content, "", "");
    res.set(http::field::allow, allowed + ", OPTIONS");
  } else {
    res = make_response(http::status::method_not_allowed, "method not allowed\n", "text/plain; charset=utf-8");
    res.set(http::field::allow, allowed + ", OPTIONS");
  }
  if (cross_origin_.count(path)) add_cors_headers(res, origin, allowed + ", OPTIONS");
  const std::string_view request_path = split_target(req.target()).path;
  for (const auto& [prefix, decorate] : decorators_) {
    if (request_path == prefix || (request_path.starts_with(prefix) && request_path[prefix.size()] == '/')) decorate(res);
  }
  if (head) {
    res.prepare_payload();  // Content-Length of the GET body...
    res.body().clear();     // ...but no body (Beast writes none for an empty body)
  }
  co_return res;
}

}  // namespace gm::server
