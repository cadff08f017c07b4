#include "server/logging_handler.h"

#include <spdlog/spdlog.h>

namespace gm::server {

void LoggingConnectionHandler::on_open(std::shared_ptr<PeerConnection> peer) {
  spdlog::info("conn {}: open for group {} (no repo layer yet: messages are dropped)", peer->id(), peer->group());
}

void LoggingConnectionHandler::on_message(PeerConnection& peer, ByteView frame) {
  spdlog::debug("conn {}: dropped a {} byte message", peer.id(), frame.size());
}

void LoggingConnectionHandler::on_close(PeerConnection& peer) { spdlog::debug("conn {}: handler saw close", peer.id()); }

void LoggingConnectionHandler::flush() { spdlog::debug("nothing to flush"); }

}  // namespace gm::server
