#include "server/http_router.h"

#include <spdlog/spdlog.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
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

void add_cors_headers(HttpResponse& res, std::string_view origin) {
  if (!origin.empty()) {
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::vary, "Origin");
  }
  res.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
  res.set(http::field::access_control_allow_headers, "Content-Type, Authorization, DPoP");
  res.set(http::field::access_control_expose_headers, "WWW-Authenticate, Retry-After");
  res.set(http::field::access_control_max_age, "86400");
}

RouteHandler blocking_route(boost::asio::thread_pool& pool, BlockingWork work, BlockingLimits limits) {
  // Counts, touched only on the io thread (admission, and the answer's way back).
  struct State {
    BlockingWork work;
    BlockingLimits limits;
    size_t queued = 0;
    std::map<std::string, size_t> per_client;
  };
  auto state = std::make_shared<State>(State{std::move(work), std::move(limits)});
  return [&pool, state](const HttpRequest& req, const RequestInfo& info) -> boost::asio::awaitable<HttpResponse> {
    const BlockingLimits& limits = state->limits;
    if (req.body().size() > limits.max_body) {
      co_return make_response(http::status::payload_too_large,
                              "request body over " + std::to_string(limits.max_body) + " bytes\n",
                              "text/plain; charset=utf-8");
    }
    const std::string key = limits.client_key ? limits.client_key(req, info) : info.remote_address;
    auto it = state->per_client.find(key);
    const size_t mine = it == state->per_client.end() ? 0 : it->second;
    if (state->queued >= limits.max_queued || (limits.max_per_client && mine >= limits.max_per_client(key))) {
      HttpResponse busy = make_response(http::status::service_unavailable, "busy, try again in a second\n",
                                        "text/plain; charset=utf-8");
      busy.set(http::field::retry_after, "1");
      co_return busy;
    }
    ++state->queued;
    ++state->per_client[key];
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
    HttpResponse res = co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(HttpResponse)>(
        std::move(initiate), boost::asio::use_awaitable);
    --state->queued;
    if (auto c = state->per_client.find(key); c != state->per_client.end() && --c->second == 0) {
      state->per_client.erase(c);
    }
    co_return res;
  };
}

void HttpRouter::add(http::verb method, std::string path, RouteHandler handler, bool cross_origin) {
  if (cross_origin) cross_origin_.insert(path);
  routes_[{std::move(path), method}] = std::move(handler);
}

boost::asio::awaitable<HttpResponse> HttpRouter::route(const HttpRequest& req, const RequestInfo& info) const {
  const std::string path(split_target(req.target()).path);
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
  if (cross_origin_.count(path)) add_cors_headers(res, origin);
  if (head) {
    res.prepare_payload();  // Content-Length of the GET body...
    res.body().clear();     // ...but no body (Beast writes none for an empty body)
  }
  co_return res;
}

}  // namespace gm::server
