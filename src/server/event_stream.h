// A response whose body is written as things happen: Server-Sent Events
// (text/event-stream, https://html.spec.whatwg.org/multipage/server-sent-events.html).
//
// A route handler that answers with a stream makes an EventStream, puts it where
// RequestInfo::event_stream points, and returns the response's status and headers (no
// body). The connection then writes the headers (the body chunked for HTTP/1.1, ended
// by the close for HTTP/1.0) and, until the stream ends, whatever the producer send()s,
// plus a comment line (": heartbeat") every heartbeat() with nothing else to say, so
// that proxies keep the connection and a client that is gone is noticed. It also
// watches the socket: a client that closes its side ends the stream at once.
//
// The producer (e.g. the API's document watcher) talks to the stream on the io thread
// only. What it may make the server hold for a client is bounded: a stream whose
// unsent bytes would pass max_unsent_bytes (not counting an oldest event that was over
// it alone, e.g. a large snapshot) is cut (the client, slower than the events,
// reconnects and starts afresh). A stream ends:
//   end()        by the producer: what is queued is sent, then the body ends;
//   cut()        by the producer, or a slow reader: at once, unsent events dropped;
//   its deadline (e.g. the token's expiry), or check() saying no at a heartbeat;
//   the client closing, a write failing or timing out, the server shutting down.
// Each way, on_close runs once, when the connection lets go of the stream.
#pragma once

#include <chrono>
#include <cstddef>
#include <algorithm>
#include <deque>
#include <functional>
#include <string>

namespace gm::server {

// How often an idle stream sends a comment line.
inline constexpr std::chrono::seconds kEventStreamHeartbeat{15};
// Unsent bytes a stream may hold for its client before it is cut as a slow reader.
inline constexpr size_t kEventStreamMaxUnsentBytes = size_t{4} << 20;

class EventStream {
 public:
  using Clock = std::chrono::steady_clock;

  explicit EventStream(size_t max_unsent_bytes = kEventStreamMaxUnsentBytes,
                       std::chrono::milliseconds heartbeat = kEventStreamHeartbeat)
      : max_unsent_bytes_(max_unsent_bytes), heartbeat_(heartbeat) {}
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // ---- The producer's side.

  // Queues `event` (whole event text, ending in a blank line). False if the stream has
  // ended, or if this would pass max_unsent_bytes with other bytes still unsent (the
  // stream is then cut; an event alone goes whatever its size).
  bool send(std::string event);
  // Ends after what is queued.
  void end(std::string why);
  // Ends now; what is queued is dropped.
  void cut(std::string why);
  bool ended() const { return ended_; }
  // Why it ended (empty while open).
  const std::string& why() const { return why_; }

  // When the stream ends by itself (cut with "expired").
  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; wake(); }
  // Asked at every heartbeat; false cuts the stream ("no longer authorized").
  std::function<bool()> check;
  // Runs once, when the connection is done with the stream (on the io thread).
  std::function<void()> on_close;

  // ---- The connection's side (http_session.cc).

  // Everything queued, joined; its bytes count as unsent until sent() says otherwise.
  std::string take();
  void sent(size_t bytes) {
    unsent_bytes_ -= std::min(unsent_bytes_, bytes);
    alone_left_ -= std::min(alone_left_, bytes);  // the oldest bytes are written first
  }
  bool drained() const { return queue_.empty(); }
  // Whether what is queued is to be dropped (cut) rather than sent (end).
  bool is_cut() const { return cut_; }
  Clock::time_point deadline() const { return deadline_; }
  std::chrono::milliseconds heartbeat() const { return heartbeat_; }
  // `wake` runs whenever there is something new to look at (an event, the end, a new
  // deadline); the connection's wait ends there.
  void attach(std::function<void()> wake) { wake_ = std::move(wake); }
  // The connection is done: on_close runs (once), and nothing is woken any more.
  void detach();

 private:
  void wake() {
    if (wake_) wake_();
  }

  const size_t max_unsent_bytes_;
  const std::chrono::milliseconds heartbeat_;
  std::deque<std::string> queue_;
  size_t unsent_bytes_ = 0;  // queued, and taken but not yet written
  size_t alone_left_ = 0;    // of those, an oldest event over the bound that went alone
  bool ended_ = false;
  bool cut_ = false;
  bool detached_ = false;
  std::string why_;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::function<void()> wake_;
};

}  // namespace gm::server
