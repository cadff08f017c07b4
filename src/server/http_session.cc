#include "server/http_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <array>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <variant>

#include "server/event_stream.h"
#include "server/url_query.h"
#include "server/websocket_session.h"

namespace gm::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

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

constexpr std::string_view kHeartbeat = ": heartbeat\n\n";

// Part of an event stream's body: false if it could not be written in time.
template <class Stream>
asio::awaitable<bool> write_body(ServerContext& ctx, Stream& stream, bool chunked, std::string_view text) {
  beast::get_lowest_layer(stream).expires_after(ctx.config.request_timeout);  // a client that stops reading is cut here
  beast::error_code ec;
  if (chunked) {
    std::tie(ec, std::ignore) = co_await asio::async_write(stream, http::make_chunk(asio::buffer(text)), kTuple);
  } else {
    std::tie(ec, std::ignore) = co_await asio::async_write(stream, asio::buffer(text), kTuple);
  }
  co_return !ec;
}

// Writes `head` (a route's answer, its body ignored) and then `events` until the stream
// ends (event_stream.h says when). The connection is not reused afterwards.
template <class Stream>
asio::awaitable<void> serve_event_stream(ServerContext& ctx, Stream& stream, HttpResponse& head,
                                         unsigned request_version, const std::shared_ptr<EventStream>& events,
                                         const std::string& who) {
  // HTTP/1.1 chunks the body, so a client tells an ended stream from a cut one;
  // HTTP/1.0 has no chunks: the body ends with the connection.
  const bool chunked = request_version >= 11;
  head.body().clear();
  head.erase(http::field::content_length);
  head.keep_alive(false);
  if (chunked) head.chunked(true);
  http::response_serializer<http::string_body> serializer(head);
  beast::get_lowest_layer(stream).expires_after(ctx.config.request_timeout);
  if (auto [ec, n] = co_await http::async_write_header(stream, serializer, kTuple); ec) co_return;

  asio::steady_timer wake(stream.get_executor());
  events->attach([&wake, &stream, &events] {
    wake.cancel();
    // A cut stream stops now, even in the middle of a write its client does not read.
    beast::error_code ignored;
    if (events->is_cut()) beast::get_lowest_layer(stream).socket().cancel(ignored);
  });
  // Nobody reads the socket while the stream runs but this: a client that closes its
  // side (or sends anything: nothing is expected) ends the stream now, not at the next
  // failed write. `alive` keeps a late completion from touching the socket once this
  // frame is gone. Under TLS this reads the TCP socket beneath it: whatever arrives
  // (a close_notify, a FIN) ends the stream just the same, and nothing is read later.
  auto alive = std::make_shared<bool>(true);
  auto sink = std::make_shared<std::array<char, 512>>();
  beast::get_lowest_layer(stream).socket().async_read_some(asio::buffer(*sink), [alive, sink, events](beast::error_code, size_t) {
    if (*alive) events->cut("the client closed the stream");
  });

  auto next_beat = EventStream::Clock::now() + events->heartbeat();
  bool open = true;
  while (open) {
    if (!events->drained() && !events->is_cut()) {
      const std::string text = events->take();
      open = co_await write_body(ctx, stream, chunked, text);
      events->sent(text.size());
      continue;
    }
    if (events->ended()) {
      if (!events->is_cut() && chunked) {
        beast::get_lowest_layer(stream).expires_after(ctx.config.request_timeout);
        co_await asio::async_write(stream, http::make_chunk_last(), kTuple);
      }
      break;
    }
    const auto now = EventStream::Clock::now();
    if (now >= events->deadline()) {
      events->cut("expired");
    } else if (now >= next_beat) {
      if (events->check && !events->check()) {
        events->cut("no longer authorized");
      } else {
        open = co_await write_body(ctx, stream, chunked, kHeartbeat);
        next_beat = EventStream::Clock::now() + events->heartbeat();
      }
    } else {
      // Single-threaded: nothing can be sent between the checks above and this wait.
      wake.expires_at(std::min(next_beat, events->deadline()));
      co_await wake.async_wait(kTuple);
    }
  }
  spdlog::debug("{}: event stream over: {}", who, events->ended() ? events->why() : "the connection failed");
  *alive = false;
  events->detach();
}

// A plain-HTTP request on the TLS port gets this, in plain HTTP, and the connection
// closes: an answer a person trying http:// or ws:// can act on.
constexpr std::string_view kPlainOnTlsPort =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 58\r\n"
    "Connection: close\r\n"
    "\r\n"
    "This port speaks TLS only: use https:// or wss:// for it.\n";

// The TLS handshake, within config.request_timeout of the accept (as a request would
// be): true once done, with `buffer` empty. A failure is counted and logged at debug
// (scanners and clients that distrust the certificate are routine on a public port),
// and a plain-HTTP request is answered kPlainOnTlsPort.
asio::awaitable<bool> tls_handshake(ServerContext& ctx, TlsStream& stream, beast::flat_buffer& buffer,
                                    const std::string& who) {
  beast::tcp_stream& raw = stream.next_layer();
  raw.expires_after(ctx.config.request_timeout);
  auto [detect_ec, is_tls] = co_await beast::async_detect_ssl(raw, buffer, kTuple);
  if (!detect_ec && !is_tls) {
    ctx.metrics.tls_handshakes_failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("{}: plain text on the TLS port, answering 400", who);
    co_await asio::async_write(raw, asio::buffer(kPlainOnTlsPort), kTuple);
    co_return false;
  }
  beast::error_code ec = detect_ec;
  size_t used = 0;
  if (!ec) std::tie(ec, used) = co_await stream.async_handshake(asio::ssl::stream_base::server, buffer.data(), kTuple);
  if (ec) {
    ctx.metrics.tls_handshakes_failed.fetch_add(1, std::memory_order_relaxed);
    if (ec == beast::error::timeout) {
      spdlog::debug("{}: no TLS handshake within {} ms, closing", who, ctx.config.request_timeout.count());
    } else {
      spdlog::debug("{}: TLS handshake failed: {}", who, ec.message());
    }
    co_return false;
  }
  buffer.consume(used);
  co_return true;
}

template <class Stream>
Stream open_stream(tcp::socket socket, asio::ssl::context* tls) {
  if constexpr (kIsTls<Stream>) {
    return Stream(std::move(socket), *tls);
  } else {
    return Stream(std::move(socket));
  }
}

// One connection, plain or TLS (`tls` is then the context to handshake with).
template <class Stream>
asio::awaitable<void> serve_connection(ServerContext& ctx, tcp::socket socket,
                                       std::shared_ptr<asio::ssl::context> tls) {
  const uint64_t id = ctx.next_id++;
  const std::string remote = endpoint_string(socket);
  RequestInfo info;
  {
    beast::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    if (!ec) info.remote_address = ep.address().to_string();
  }
  info.tls = kIsTls<Stream>;
  const std::string who = "conn " + std::to_string(id) + " " + remote;
  Stream stream = open_stream<Stream>(std::move(socket), tls.get());
  // A TLS connection counts as a plain HTTP one from the accept on, handshake included:
  // the same limits push it out (ServerContext::plain_http).
  std::optional<LiveRegistration> live;
  live.emplace(ctx, id, [&stream](bool) { beast::get_lowest_layer(stream).close(); }, /*plain_http=*/true);

  beast::flat_buffer buffer;
  bool serving = true;
  if constexpr (kIsTls<Stream>) serving = co_await tls_handshake(ctx, stream, buffer, who);
  while (serving) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(ctx.config.max_header_bytes));
    parser.body_limit(ctx.config.max_body_bytes);
    beast::get_lowest_layer(stream).expires_after(ctx.config.request_timeout);
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
                 read_ec != asio::error::eof && read_ec != asio::error::connection_reset &&
                 read_ec != asio::ssl::error::stream_truncated) {
        // (stream_truncated: a TLS client that closed without a close_notify, as many do.)
        answer = final_response(http::status::bad_request, "bad request: " + read_ec.message() + "\n");
      }
      if (answer) {
        spdlog::info("{}: {} ({})", who, answer->result_int(), read_ec.message());
        beast::get_lowest_layer(stream).expires_after(ctx.config.request_timeout);
        co_await http::async_write(stream, *answer, kTuple);
      }
      break;
    }
    HttpRequest req = parser.release();

    if (beast::websocket::is_upgrade(req)) {
      auto checked = check_upgrade(ctx, req, who);
      if (auto* refusal = std::get_if<HttpResponse>(&checked)) {
        beast::get_lowest_layer(stream).expires_after(ctx.config.request_timeout);
        co_await http::async_write(stream, *refusal, kTuple);
        break;
      }
      // The WebSocket session takes over the socket and registers itself, in a
      // coroutine of its own; this one ends.
      live.reset();
      auto session = std::make_shared<WebSocketSession<Stream>>(
          ctx, id, std::move(stream), std::get<PeerIdentity>(std::move(checked)), remote, std::move(tls));
      spawn_websocket(std::move(session), std::move(req), who);
      co_return;
    }

    ctx.metrics.http_requests.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<EventStream> events;
    info.event_stream = &events;
    HttpResponse res = co_await ctx.router.route(req, info);
    if (events) {
      // An authenticated, long-lived answer: no longer a plain connection that a new
      // one may push out (ServerContext::plain_http); ended at shutdown, cut if forced.
      live.reset();
      live.emplace(ctx, id, [&stream, events](bool force) {
        events->end("server shutting down");
        if (force) beast::get_lowest_layer(stream).close();
      });
      if (ctx.stopping) events->end("server shutting down");
      co_await serve_event_stream(ctx, stream, res, req.version(), events, who);
      events->detach();  // also when the header could not be written
      beast::get_lowest_layer(stream).close();
      co_return;
    }
    res.keep_alive(req.keep_alive() && !ctx.stopping);
    beast::get_lowest_layer(stream).expires_after(ctx.config.request_timeout);
    auto [write_ec, write_n] = co_await http::async_write(stream, res, kTuple);
    if (write_ec || !res.keep_alive()) break;
  }
  // A lingering close: closing a socket with request bytes still unread (the rest of
  // a body over the limit) makes the kernel send a reset, and the client may lose the
  // response it has not read yet. So: no more sending, then read and drop what is
  // left, for a second or 8 MiB at most, before closing. Under TLS this is done on the
  // TCP socket beneath, without a close_notify: every answer here says where it ends
  // (a length or a last chunk), so a client loses nothing by the missing alert.
  beast::tcp_stream& raw = beast::get_lowest_layer(stream);
  beast::error_code ignored;
  raw.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (!ctx.stopping) {
    // On the heap: this coroutine's frame lives as long as the WebSocket it became.
    auto sink = std::make_unique<std::array<char, 16384>>();
    raw.expires_after(std::chrono::seconds(1));
    for (size_t drained = 0; drained < (size_t{8} << 20);) {
      auto [ec, n] = co_await raw.async_read_some(asio::buffer(*sink), kTuple);
      if (ec) break;
      drained += n;
    }
  }
  raw.close();
}

}  // namespace

asio::awaitable<void> serve_http(ServerContext& ctx, tcp::socket socket) {
  // A connection keeps the TLS context it began with; a reload (SIGHUP) replaces
  // ctx.tls for the connections that follow.
  if (ctx.tls) return serve_connection<TlsStream>(ctx, std::move(socket), ctx.tls);
  return serve_connection<PlainStream>(ctx, std::move(socket), nullptr);
}

}  // namespace gm::server
