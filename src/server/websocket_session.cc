#include "server/websocket_session.h"

#include <array>

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl.hpp>
#include <algorithm>
#include <exception>

namespace gm::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Bookkeeping cost of one queued message beyond its payload, so that a flood of empty
// messages also fills the queue.
constexpr size_t kPerMessageOverhead = 64;
// A socket whose outgoing queue is over --max-queue is cut off as a slow reader only
// if nothing was written to it for this long, or if the queue reaches kHardQueueFactor
// times the bound: replies to a few requests for large documents, made at once, pass
// the bound before the writer has sent anything, and a fast reader must not be cut.
constexpr auto kSlowReaderGrace = std::chrono::seconds(30);
// Read buffer capacity kept between messages.
constexpr size_t kKeptReadBuffer = size_t{1} << 20;
constexpr size_t kHardQueueFactor = 4;
// RFC 6455 §5.5: a control frame payload is at most 125 bytes, 2 of which are the code.
constexpr size_t kMaxCloseReason = 123;

}  // namespace

template <class Stream>
WebSocketSession<Stream>::WebSocketSession(ServerContext& ctx, uint64_t id, Stream stream, PeerIdentity identity,
                                           std::string remote, std::shared_ptr<asio::ssl::context> tls)
    : ctx_(ctx),
      id_(id),
      tls_(std::move(tls)),
      ws_(std::move(stream)),
      identity_(std::move(identity)),
      remote_(std::move(remote)),
      metrics_(ctx.metrics.group(identity_.group)),
      writer_wake_(ws_.get_executor()),
      token_expiry_(ws_.get_executor()),
      resume_(ws_.get_executor()) {}

template <class Stream>
asio::awaitable<void> serve_websocket(std::shared_ptr<WebSocketSession<Stream>> session, HttpRequest upgrade) {
  co_await session->run(std::move(upgrade));
}

template <class Stream>
void spawn_websocket(std::shared_ptr<WebSocketSession<Stream>> session, HttpRequest upgrade, std::string who) {
  auto executor = session->executor();
  asio::co_spawn(executor, serve_websocket(std::move(session), std::move(upgrade)),
                 [who = std::move(who)](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& x) {
                     spdlog::error("{}: websocket: {}", who, x.what());
                   } catch (...) {
                     spdlog::error("{}: websocket: unknown exception", who);
                   }
                 });
}

template <class Stream>
asio::awaitable<void> WebSocketSession<Stream>::run(HttpRequest upgrade) {
  // The WebSocket layer has its own timers; the TCP stream's would cut idle sockets.
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = ctx_.config.request_timeout;  // also bounds the close handshake
  timeouts.idle_timeout = 2 * ctx_.config.ping_interval;     // ping at half, close at full
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "groundmist-sync"); }));
  ws_.read_message_max(ctx_.config.max_frame_bytes);
  ws_.binary(true);
  // One frame per message: Beast would cut a message into write-buffer-sized (4 KiB)
  // frames, and the `ws` package node clients use refuses a message of more than
  // 16,384 frames, so a document over 64 MiB could never be fetched.
  ws_.auto_fragment(false);

  // Listed from here on (before the first wait, so right after the upgrade was checked
  // against the socket limits): shutdown closes it, revoking its session closes it,
  // and it counts against its session's and group's limits.
  LiveRegistration live(
      ctx_, id_,
      [this](bool force) {
        if (force) {
          cut("server shutting down");
        } else {
          begin_close(websocket::close_code::going_away, "server shutting down");
        }
      },
      static_cast<PeerConnection*>(this));

  auto [accept_ec] = co_await ws_.async_accept(upgrade, kTuple);
  if (accept_ec) {
    spdlog::info("conn {} {}: websocket handshake failed: {}", id_, remote_, accept_ec.message());
    co_return;
  }
  // The upgrade request's headers are not needed past the handshake (they would stay
  // in this coroutine's frame for the socket's lifetime).
  upgrade = HttpRequest{};
  if (state_ == State::accepting) state_ = State::open;  // a shutdown may have begun meanwhile
  metrics_.connections.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("conn {} {}: websocket open, group {}", id_, remote_, identity_.group);

  asio::co_spawn(ws_.get_executor(), write_loop(shared_from_this()), asio::detached);
  asio::co_spawn(ws_.get_executor(), close_at_token_expiry(shared_from_this()), asio::detached);

  bool handler_open = false;
  try {
    ctx_.handler.on_open(shared_from_this());
    handler_open = true;
  } catch (const std::exception& e) {
    spdlog::error("conn {}: connection handler on_open failed: {}", id_, e.what());
    cut("connection handler failed");
  }

  beast::flat_buffer buffer;
  for (;;) {
    while (paused_ && state_ == State::open) {
      resume_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await resume_.async_wait(kTuple);
    }
    auto [ec, n] = co_await ws_.async_read(buffer, kTuple);
    if (ec) {
      log_read_end(ec);
      break;
    }
    if (!ws_.got_binary()) {
      ctx_.metrics.frames_rejected_text.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("conn {} {}: text frame ({} bytes) received; automerge-repo speaks binary CBOR only, closing",
                   id_, remote_, n);
      begin_close(websocket::close_code::unknown_data, "binary frames only");
    } else if (state_ == State::open && handler_open && !ctx_.stopping) {
      metrics_.messages_in.fetch_add(1, std::memory_order_relaxed);
      metrics_.bytes_in.fetch_add(n, std::memory_order_relaxed);
      const auto data = buffer.cdata();
      try {
        ctx_.handler.on_message(*this, ByteView(static_cast<const uint8_t*>(data.data()), data.size()));
      } catch (const std::exception& e) {
        spdlog::error("conn {}: connection handler on_message failed: {}", id_, e.what());
        cut("connection handler failed");
      }
    }
    // Messages arriving after we asked to close are read (to see the peer's close
    // reply) but not delivered.
    buffer.consume(buffer.size());
    // The buffer grows to the largest message: give that back (a client that uploaded
    // a large document and stays connected for days).
    if (buffer.capacity() > kKeptReadBuffer) buffer.shrink_to_fit();
  }

  state_ = State::closed;
  token_expiry_.cancel();
  queue_.clear();
  ctx_.queued_bytes -= std::min(ctx_.queued_bytes, queued_bytes_);
  queued_bytes_ = 0;
  wake_writer();
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  metrics_.connections.fetch_sub(1, std::memory_order_relaxed);
  if (handler_open) {
    try {
      ctx_.handler.on_close(*this);
    } catch (const std::exception& e) {
      spdlog::error("conn {}: connection handler on_close failed: {}", id_, e.what());
    }
  }
}

template <class Stream>
void WebSocketSession<Stream>::log_read_end(const boost::system::error_code& ec) {
  if (!cut_reason_.empty()) {
    spdlog::info("conn {} {}: closed: {}", id_, remote_, cut_reason_);
  } else if (close_sent_ && ec != websocket::error::message_too_big) {
    spdlog::info("conn {} {}: closed by the server (code {}{}{})", id_, remote_,
                 static_cast<unsigned>(close_reason_.code), close_reason_.reason.empty() ? "" : ", ",
                 std::string(close_reason_.reason.data(), close_reason_.reason.size()));
  } else if (ec == websocket::error::closed) {
    const auto& reason = ws_.reason();
    spdlog::info("conn {} {}: closed (code {}{}{})", id_, remote_, static_cast<unsigned>(reason.code),
                 reason.reason.empty() ? "" : ", ", std::string(reason.reason.data(), reason.reason.size()));
  } else if (ec == websocket::error::message_too_big) {
    ctx_.metrics.frames_rejected_size.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("conn {} {}: message larger than the {} byte limit (--max-frame), closing", id_, remote_,
                 ctx_.config.max_frame_bytes);
  } else if (ec == beast::error::timeout) {
    spdlog::warn("conn {} {}: no data or pong within {} ms of a ping, closing", id_, remote_,
                 ctx_.config.ping_interval.count());
  } else {
    spdlog::info("conn {} {}: connection ended: {}", id_, remote_, ec.message());
  }
}

template <class Stream>
bool WebSocketSession<Stream>::send(Frame frame) {
  if (!ctx_.on_io_thread()) {
    asio::post(ws_.get_executor(),
               [self = shared_from_this(), frame = std::move(frame)]() mutable { self->send(std::move(frame)); });
    return true;  // the verdict comes on the io thread; a refused message is logged there
  }
  if (state_ != State::open) return false;
  const size_t cost = frame.size() + kPerMessageOverhead;
  const auto now = std::chrono::steady_clock::now();
  if (queue_.empty() && !writing_) last_progress_ = now;
  // The message being written is not counted: one large reply on a slow link takes a
  // while, and what queues up behind it meanwhile is what has to fit.
  const size_t bound = ctx_.config.max_queue_bytes;
  if (!queue_.empty() && queued_bytes_ + cost > bound) {
    const bool stalled = now - last_progress_ > kSlowReaderGrace;
    const size_t hard = bound > SIZE_MAX / kHardQueueFactor ? SIZE_MAX : bound * kHardQueueFactor;
    if (stalled || queued_bytes_ + cost > hard) {
      ctx_.metrics.slow_readers_closed.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("conn {} {}: outgoing queue over {} bytes ({} messages waiting{}); peer reads too slowly, closing",
                   id_, remote_, stalled ? bound : hard, queue_.size(),
                   stalled ? ", none written for " + std::to_string(kSlowReaderGrace.count()) + " s" : "");
      cut("slow reader: outgoing queue full");
      return false;
    }
  }
  queued_bytes_ += cost;
  ctx_.queued_bytes += cost;
  queue_.push_back(std::move(frame));
  wake_writer();
  return true;
}

template <class Stream>
void WebSocketSession<Stream>::close(std::string reason) {
  close_with(websocket::close_code::normal, std::move(reason));
}

template <class Stream>
void WebSocketSession<Stream>::refuse(std::string reason) {
  close_with(websocket::close_code::policy_error, std::move(reason));
}

template <class Stream>
void WebSocketSession<Stream>::close_with(websocket::close_code code, std::string reason) {
  if (!ctx_.on_io_thread()) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
      self->close_with(code, std::move(reason));
    });
    return;
  }
  begin_close(code, std::move(reason));
}

template <class Stream>
void WebSocketSession<Stream>::begin_close(websocket::close_code code, std::string reason) {
  if (state_ == State::closing || state_ == State::closed) return;
  if (reason.size() > kMaxCloseReason) reason.resize(kMaxCloseReason);
  close_reason_ = websocket::close_reason(code, reason);
  if (state_ == State::accepting) {
    // Shutdown during the handshake: nothing to say politely yet.
    cut(reason.c_str());
    return;
  }
  state_ = State::closing;
  wake_writer();
  resume_.cancel();
}

template <class Stream>
bool WebSocketSession<Stream>::has_room(size_t bytes) const {
  const size_t cost = bytes + kPerMessageOverhead;
  return state_ == State::open && queued_bytes_ + cost <= ctx_.config.max_queue_bytes / 4 &&
         ctx_.queued_bytes + cost <= ctx_.config.droppable_queue_budget;
}

template <class Stream>
void WebSocketSession<Stream>::pause(bool paused) {
  if (paused == paused_) return;
  paused_ = paused;
  // Nothing is read while paused, so a pong could not be seen: no idle timeout then
  // (the next read after the pause re-arms it).
  websocket::stream_base::timeout t{};
  t.handshake_timeout = ctx_.config.request_timeout;
  t.idle_timeout = paused ? websocket::stream_base::none() : 2 * ctx_.config.ping_interval;
  t.keep_alive_pings = !paused;
  ws_.set_option(t);
  if (!paused) resume_.cancel();
}

template <class Stream>
void WebSocketSession<Stream>::cut(const char* why) {
  if (cut_reason_.empty()) cut_reason_ = why;
  if (state_ != State::closed) state_ = State::closing;
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  wake_writer();
  resume_.cancel();
}

template <class Stream>
void WebSocketSession<Stream>::wake_writer() { writer_wake_.cancel(); }

// A session token is checked at the upgrade, and a socket lives as long as its client
// wants: without this, a token that expired (or whose holder lost it) would keep a
// socket open for good. Real clients reconnect, and must bring a fresh token.
template <class Stream>
asio::awaitable<void> WebSocketSession<Stream>::close_at_token_expiry(std::shared_ptr<WebSocketSession> self) {
  if (self->identity_.expires_at <= 0) co_return;
  // In whole seconds, clamped: a token may live for centuries, past what a clock's
  // nanosecond count can hold. Sockets do not live a century.
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t kCentury = int64_t{100} * 366 * 24 * 3600;
  const int64_t left = std::clamp<int64_t>(self->identity_.expires_at - now, 0, kCentury);
  self->token_expiry_.expires_after(std::chrono::seconds(left));
  auto [ec] = co_await self->token_expiry_.async_wait(kTuple);
  if (ec || self->state_ != State::open) co_return;
  spdlog::info("conn {} {}: session token expired, closing", self->id_, self->remote_);
  self->begin_close(websocket::close_code::policy_error, "session token expired");
}

template <class Stream>
asio::awaitable<void> WebSocketSession<Stream>::write_loop(std::shared_ptr<WebSocketSession> self) {
  while (self->state_ != State::closed) {
    if (!self->queue_.empty() && !self->cut_reason_.empty()) break;
    if (!self->queue_.empty()) {
      Frame frame = std::move(self->queue_.front());
      self->queue_.pop_front();
      const size_t cost = frame.size() + kPerMessageOverhead;
      self->queued_bytes_ -= std::min(self->queued_bytes_, cost);
      self->ctx_.queued_bytes -= std::min(self->ctx_.queued_bytes, cost);
      self->writing_ = true;
      // One WebSocket message (auto_fragment is off) from its own bytes and the shared part.
      const ByteView own(frame.own);
      const std::array<asio::const_buffer, 3> parts{
          asio::buffer(own.first(frame.at).data(), frame.at),
          frame.shared ? asio::buffer(*frame.shared) : asio::const_buffer(),
          asio::buffer(own.subspan(frame.at).data(), own.size() - frame.at)};
      auto [ec, n] = co_await self->ws_.async_write(parts, kTuple);
      self->writing_ = false;
      self->last_progress_ = std::chrono::steady_clock::now();
      if (ec) {
        if (self->state_ != State::closed) self->cut("write failed");
        break;
      }
      self->metrics_.messages_out.fetch_add(1, std::memory_order_relaxed);
      self->metrics_.bytes_out.fetch_add(n, std::memory_order_relaxed);
      continue;
    }
    if (self->state_ == State::closing && self->cut_reason_.empty() && !self->close_sent_) {
      self->close_sent_ = true;
      auto [ec] = co_await self->ws_.async_close(self->close_reason_, kTuple);
      if (ec && self->state_ != State::closed) self->cut("close handshake failed");
      // The read loop sees the peer's close reply (or the timeout) and finishes.
      break;
    }
    if (self->close_sent_ || !self->cut_reason_.empty()) break;
    self->writer_wake_.expires_at(asio::steady_timer::time_point::max());
    co_await self->writer_wake_.async_wait(kTuple);
  }
}

template class WebSocketSession<PlainStream>;
template class WebSocketSession<TlsStream>;
template void spawn_websocket(std::shared_ptr<WebSocketSession<PlainStream>>, HttpRequest, std::string);
template void spawn_websocket(std::shared_ptr<WebSocketSession<TlsStream>>, HttpRequest, std::string);

}  // namespace gm::server
