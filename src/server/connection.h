// The seam between the network layer (server) and the automerge-repo layer (repo).
//
// The server accepts a WebSocket only after its session token is verified; from then
// on the socket is a PeerConnection bound to the one lexicon group the token names.
// The repo layer implements ConnectionHandler and never sees a socket:
//
//   server                                  repo layer (ConnectionHandler)
//   ------                                  ------------------------------
//   token verified, upgrade accepted  --->  on_open(peer)      keep the shared_ptr
//   each binary WebSocket message     --->  on_message(peer, frame)
//                                     <---  peer.send(frame)   one binary message
//                                     <---  peer.close(why)    after an `error` message
//   socket gone (either side, ping    --->  on_close(peer)     drop the shared_ptr
//     timeout, slow reader, shutdown)
//   SIGTERM / SIGINT, sockets closed  --->  flush()            persist everything, return
//
// Threads: every handler call happens on the server's single io_context thread, so the
// handler needs no locks for state it only touches from these calls. PeerConnection's
// send()/close() may be called from any thread (they hop to the io thread), but from the
// io thread they take effect at once, which is the cheap and ordered path.
//
// Frames: the server delivers only complete binary messages no larger than the
// configured maximum (text frames and oversized messages close the socket with a log
// line before the handler sees them). Decoding CBOR and answering malformed messages
// with an automerge-repo `error` message is the handler's job (spec/automerge.md §3).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/bytes.h"
#include "util/frame.h"

namespace gm::server {

// What the session token said about the socket, fixed for the socket's life.
struct PeerIdentity {
  std::string group;       // lexicon NSID group, e.g. "xyz.groundmist.library"
  std::string subject;     // the DID the token was issued to (may be empty for local tokens)
  std::string session_id;  // the token's session id (for revocation and logs)
  int64_t issued_at = 0;   // unix seconds
  int64_t expires_at = 0;  // unix seconds
  // Scopes beyond `group` (auth/scopes.h) that stood when the socket opened, as
  // "nsid:read" / "nsid:write", and the grants they came from: revoking one of those
  // closes the socket.
  std::vector<std::string> scopes;
  std::vector<std::string> grants;
};

class PeerConnection {
 public:
  virtual ~PeerConnection() = default;

  // Queues one binary WebSocket message. Returns false if the connection is closing or
  // closed, or if its bounded outgoing queue overflowed (past --max-queue with nothing
  // written for a while, or far past it: the connection is then closed as a slow
  // reader, with a log line, and on_close follows).
  virtual bool send(Frame frame) = 0;
  // Sends what is queued, then a close frame carrying `reason` (kept short: at most
  // 123 bytes go on the wire). on_close follows once the socket is gone.
  virtual void close(std::string reason) = 0;
  // The same with close code 1008 (policy violation): the socket asked for something
  // this server will not serve (e.g. a group that overlaps another).
  virtual void refuse(std::string reason) = 0;
  // Stops (true) or resumes (false) reading the socket's messages: the handler's
  // backpressure while it still works on what came before. No pings are sent and no
  // idle timeout runs while paused (a pong could not be read); a close still goes
  // through.
  virtual void pause(bool paused) = 0;
  // Whether a droppable message of `bytes` should be queued now: the socket is open and
  // neither its queue nor all sockets' queues together are filling up.
  virtual bool has_room(size_t bytes) const = 0;

  virtual const std::string& group() const = 0;
  virtual const PeerIdentity& identity() const = 0;
  // Unique for the server's run; handy as a map key and in logs ("conn 17").
  virtual uint64_t id() const = 0;
  // "ip:port" of the client.
  virtual const std::string& remote_endpoint() const = 0;
  virtual bool is_open() const = 0;
};

class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;

  // The socket is open and authenticated. The handler may keep `peer` until on_close.
  virtual void on_open(std::shared_ptr<PeerConnection> peer) = 0;
  // One complete binary message. `frame` is valid only during the call.
  virtual void on_message(PeerConnection& peer, ByteView frame) = 0;
  // Called exactly once per on_open, after the socket is gone; send() is a no-op now.
  virtual void on_close(PeerConnection& peer) = 0;
  // Shutdown: every socket is closed and its on_close delivered; persist everything
  // before returning. Called once, on the io thread, before the process exits.
  virtual void flush() {}
};

}  // namespace gm::server
