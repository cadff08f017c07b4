// One authenticated WebSocket: the PeerConnection the repo layer talks to.
//
// Two coroutines per socket, both on the io thread:
//   run()        accepts the upgrade, then reads messages and hands binary ones to the
//                handler; when the read side ends (close, error, ping timeout) it tells
//                the handler and unregisters.
//   write_loop() drains the outgoing queue one message at a time, then sends the close
//                frame when a close was asked for. It is the only writer, so writes and
//                the close frame never overlap.
//
// Limits: Beast's read_message_max rejects messages over config.max_frame_bytes (close
// code 1009); a text message closes the socket with 1003; the outgoing queue holds at
// most config.max_queue_bytes (counting 64 bytes of overhead per message) and a peer
// that lets it fill is cut off. Liveness: Beast's idle timeout with keep-alive pings
// sends a ping after ping_interval without incoming data and closes the socket if
// nothing (not even a pong) arrives within another ping_interval.
//
// The session is a template on the stream under the WebSocket: PlainStream (TCP) or
// TlsStream (TLS over TCP, server/tls.h); both are instantiated in the .cc. A TLS
// session keeps the TLS context it began with, whatever a reload puts in place later.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "server/connection.h"
#include "server/http_router.h"
#include "server/server_context.h"

namespace gm::server {

using PlainStream = boost::beast::tcp_stream;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

template <class Stream>
class WebSocketSession final : public PeerConnection, public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  // `tls` (null for a PlainStream) is the context `stream` was made with.
  WebSocketSession(ServerContext& ctx, uint64_t id, Stream stream, PeerIdentity identity, std::string remote,
                   std::shared_ptr<boost::asio::ssl::context> tls);

  // Accepts `upgrade` and serves the socket until it is closed. Keep a shared_ptr to
  // the session alive while awaiting (see serve_websocket()).
  boost::asio::awaitable<void> run(HttpRequest upgrade);

  bool send(Frame frame) override;
  void close(std::string reason) override;
  void refuse(std::string reason) override;
  void pause(bool paused) override;
  bool has_room(size_t bytes) const override;
  const std::string& group() const override { return identity_.group; }
  const PeerIdentity& identity() const override { return identity_; }
  uint64_t id() const override { return id_; }
  const std::string& remote_endpoint() const override { return remote_; }
  bool is_open() const override { return state_ == State::open; }
  boost::asio::any_io_executor executor() { return ws_.get_executor(); }

 private:
  enum class State { accepting, open, closing, closed };

  using std::enable_shared_from_this<WebSocketSession<Stream>>::shared_from_this;
  static boost::asio::awaitable<void> write_loop(std::shared_ptr<WebSocketSession> self);
  void close_with(boost::beast::websocket::close_code code, std::string reason);  // from any thread
  void begin_close(boost::beast::websocket::close_code code, std::string reason);
  void cut(const char* why);  // closes the TCP socket at once
  void wake_writer();
  void log_read_end(const boost::system::error_code& ec);
  static boost::asio::awaitable<void> close_at_token_expiry(std::shared_ptr<WebSocketSession> self);

  ServerContext& ctx_;
  const uint64_t id_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // declared first: goes after ws_
  boost::beast::websocket::stream<Stream> ws_;
  const PeerIdentity identity_;
  const std::string remote_;
  GroupMetrics& metrics_;

  State state_ = State::accepting;
  std::deque<Frame> queue_;
  size_t queued_bytes_ = 0;  // of the queued messages, not the one being written
  bool writing_ = false;     // a message is being written
  // When the writer last finished a message, or the queue last began to fill.
  std::chrono::steady_clock::time_point last_progress_{};
  boost::asio::steady_timer writer_wake_;
  boost::asio::steady_timer token_expiry_;  // closes the socket when its session token expires
  boost::asio::steady_timer resume_;        // the reader waits on it while paused
  bool paused_ = false;
  bool close_sent_ = false;  // our close frame went out (we began the closing handshake)
  boost::beast::websocket::close_reason close_reason_;
  std::string cut_reason_;  // set when we cut the socket ourselves, for the log line
};

// Runs `session` to completion, keeping it alive meanwhile.
template <class Stream>
boost::asio::awaitable<void> serve_websocket(std::shared_ptr<WebSocketSession<Stream>> session, HttpRequest upgrade);

// serve_websocket() in a coroutine of its own on the session's executor (an exception
// that escapes it is logged with `who`), so that the HTTP session that upgraded the
// socket can end: awaited there, its frame, read buffer and moved-from stream would
// stay for the socket's lifetime (2.7 KiB of the 16.7 an idle socket took at 46713b9;
// scripts/bench-scale.sh).
template <class Stream>
void spawn_websocket(std::shared_ptr<WebSocketSession<Stream>> session, HttpRequest upgrade, std::string who);

}  // namespace gm::server
