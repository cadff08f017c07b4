#include "server/http_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <array>
#include <memory>
#include <optional>
#include <variant>

#include "server/url_query.h"
#include "server/websocket_session.h"

namespace gm::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string endpoint_string(const tcp::socket& socket) {
  beast::error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// An answer after which the connection closes (refused upgrades, request errors).
HttpResponse final_response(http::status status, std::string body) {
  const char* type = body.empty() ? "" : "text/plain; charset=utf-8";
  HttpResponse res = make_response(status, std::move(body), type);
  res.keep_alive(false);
  return res;
}

// Checks an upgrade request; the identity its token names, or the refusal to send.
std::variant<PeerIdentity, HttpResponse> check_upgrade(ServerContext& ctx, const HttpRequest& req,
                                                       const std::string& who) {
  const Target target = split_target(req.target());
  if (target.path != "/") {
    spdlog::info("{}: websocket upgrade on {} refused: only / upgrades", who, std::string(target.path));
    return final_response(http::status::not_found, "");
  }
  if (ctx.stopping) return final_response(http::status::service_unavailable, "");

  auto refuse = [&](const std::string& why) -> HttpResponse {
    ctx.metrics.upgrades_rejected.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("{}: websocket upgrade refused (401): {}", who, why);
    return final_response(http::status::unauthorized, "");
  };
  auto token = query_param(target.query, "token");
  if (!token.ok()) return refuse(token.error().message);
  if (!token->has_value() || (*token)->empty()) return refuse("no ?token= in the URL");
  Result<PeerIdentity> identity = ctx.verifier(**token);
  if (!identity.ok()) return refuse("session token: " + identity.error().message);
  if (identity->group.empty()) return refuse("session token names no group");
  if (auto refusal = ctx.websocket_refusal(*identity)) {
    ctx.metrics.upgrades_rejected.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("{}: websocket upgrade refused (429): {}", who, *refusal);
    return final_response(http::status::too_many_requests, "");
  }
  return std::move(identity).value();
}

}  // namespace

asio::awaitable<void> serve_http(ServerContext& ctx, tcp::socket socket) {
  const uint64_t id = ctx.next_id++;
  const std::string remote = endpoint_string(socket);
  RequestInfo info;
  {
    beast::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    if (!ec) info.remote_address = ep.address().to_string();
  }
  const std::string who = "conn " + std::to_string(id) + " " + remote;
  beast::tcp_stream stream(std::move(socket));
  std::optional<LiveRegistration> live;
  live.emplace(ctx, id, [&stream](bool) { stream.close(); }, /*plain_http=*/true);

  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(ctx.config.max_header_bytes));
    parser.body_limit(ctx.config.max_body_bytes);
    stream.expires_after(ctx.config.request_timeout);
    auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, kTuple);
    if (read_ec) {
      std::optional<HttpResponse> answer;
      if (read_ec == http::error::body_limit) {
        answer = final_response(http::status::payload_too_large,
                                "request body over " + std::to_string(ctx.config.max_body_bytes) + " bytes\n");
      } else if (read_ec == http::error::header_limit) {
        answer = final_response(http::status::request_header_fields_too_large, "request headers too large\n");
      } else if (read_ec == beast::error::timeout) {
        spdlog::debug("{}: no complete request within {} ms, closing", who, ctx.config.request_timeout.count());
      } else if (read_ec != http::error::end_of_stream && read_ec != asio::error::operation_aborted &&
                 read_ec != asio::error::eof && read_ec != asio::error::connection_reset) {
        answer = final_response(http::status::bad_request, "bad request: " + read_ec.message() + "\n");
      }
      if (answer) {
        spdlog::info("{}: {} ({})", who, answer->result_int(), read_ec.message());
        stream.expires_after(ctx.config.request_timeout);
        co_await http::async_write(stream, *answer, kTuple);
      }
      break;
    }
    HttpRequest req = parser.release();

    if (beast::websocket::is_upgrade(req)) {
      auto checked = check_upgrade(ctx, req, who);
      if (auto* refusal = std::get_if<HttpResponse>(&checked)) {
        stream.expires_after(ctx.config.request_timeout);
        co_await http::async_write(stream, *refusal, kTuple);
        break;
      }
      // The WebSocket session takes over the socket and registers itself, in a
      // coroutine of its own; this one ends.
      live.reset();
      auto session = std::make_shared<WebSocketSession>(ctx, id, std::move(stream),
                                                        std::get<PeerIdentity>(std::move(checked)), remote);
      spawn_websocket(std::move(session), std::move(req), who);
      co_return;
    }

    ctx.metrics.http_requests.fetch_add(1, std::memory_order_relaxed);
    HttpResponse res = co_await ctx.router.route(req, info);
    res.keep_alive(req.keep_alive() && !ctx.stopping);
    stream.expires_after(ctx.config.request_timeout);
    auto [write_ec, write_n] = co_await http::async_write(stream, res, kTuple);
    if (write_ec || !res.keep_alive()) break;
  }
  // A lingering close: closing a socket with request bytes still unread (the rest of
  // a body over the limit) makes the kernel send a reset, and the client may lose the
  // response it has not read yet. So: no more sending, then read and drop what is
  // left, for a second or 8 MiB at most, before closing.
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (!ctx.stopping) {
    // On the heap: this coroutine's frame lives as long as the WebSocket it became.
    auto sink = std::make_unique<std::array<char, 16384>>();
    stream.expires_after(std::chrono::seconds(1));
    for (size_t drained = 0; drained < (size_t{8} << 20);) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(*sink), kTuple);
      if (ec) break;
      drained += n;
    }
  }
  stream.close();
}

}  // namespace gm::server
