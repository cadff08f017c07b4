// A stand-in ConnectionHandler until the repo layer plugs in: logs each connection and
// drops every message (at debug level, one line per message). It lets `serve` run and
// the network layer be tested end to end without automerge-repo semantics.
#pragma once

#include "server/connection.h"

namespace gm::server {

class LoggingConnectionHandler final : public ConnectionHandler {
 public:
  void on_open(std::shared_ptr<PeerConnection> peer) override;
  void on_message(PeerConnection& peer, ByteView frame) override;
  void on_close(PeerConnection& peer) override;
  void flush() override;
};

}  // namespace gm::server
