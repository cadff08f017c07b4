// State shared by the listener and every session of one Server (internal to gm_server).
// Touched only on the io thread, hence no locks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <set>

#include "server/config.h"
#include "server/connection.h"
#include "server/http_router.h"
#include "server/metrics.h"
#include "server/server.h"

namespace gm::server {

struct ServerContext {
  ServerContext(ServerConfig c, ConnectionHandler& h, TokenVerifier v, MetricsRegistry& m)
      : config(std::move(c)), handler(h), verifier(std::move(v)), metrics(m) {}

  ServerConfig config;
  ConnectionHandler& handler;
  TokenVerifier verifier;
  MetricsRegistry& metrics;
  HttpRouter router;
  boost::asio::io_context* io = nullptr;
  // With native TLS, the context new connections handshake with (server/tls.h); each
  // connection holds on to the one it began with. Null: plain HTTP and WebSocket.
  std::shared_ptr<boost::asio::ssl::context> tls;

  bool stopping = false;
  uint64_t next_id = 1;

  // Every open connection (HTTP or WebSocket) registers how to close it on shutdown:
  // closer(false) asks politely, closer(true) cuts the socket.
  std::map<uint64_t, std::function<void(bool force)>> live;
  // Those of them still speaking plain HTTP (not yet a WebSocket: unauthenticated), by
  // id, so oldest first.
  std::set<uint64_t> plain_http;
  // Open WebSockets by id (Server::close_peers looks through them).
  std::map<uint64_t, PeerConnection*> websockets;
  // Bytes in every WebSocket's outgoing queue together (PeerConnection::has_room).
  size_t queued_bytes = 0;

  bool on_io_thread() const { return io->get_executor().running_in_this_thread(); }

  // Why a WebSocket for `identity` may not open now (its session or group has as many
  // as the limits allow), or nothing. A WebSocket counts from its registration on, the
  // handshake included, so upgrades under way cannot all pass one check.
  std::optional<std::string> websocket_refusal(const PeerIdentity& identity) const {
    size_t of_session = 0, of_group = 0;
    for (const auto& [id, peer] : websockets) {
      of_session += !identity.session_id.empty() && peer->identity().session_id == identity.session_id;
      of_group += peer->identity().group == identity.group;
    }
    auto too_many = [](const std::string& whose, size_t open) {
      return whose + " already has " + std::to_string(open) + " sockets open (the limit)";
    };
    if (of_session >= config.max_sockets_per_session) return too_many("session " + identity.session_id, of_session);
    // One group's apps cannot take every connection from the others.
    if (of_group >= config.max_sockets_per_group) return too_many("group " + identity.group, of_group);
    return std::nullopt;
  }
};

// Lists a connection in ServerContext for the lifetime of this object: in `live`
// always, in `plain_http` while it speaks plain HTTP, in `websockets` once it is one.
class LiveRegistration {
 public:
  LiveRegistration(ServerContext& ctx, uint64_t id, std::function<void(bool)> closer, bool plain_http = false)
      : ctx_(&ctx), id_(id) {
    ctx.live[id] = std::move(closer);
    if (plain_http) ctx.plain_http.insert(id);
  }
  LiveRegistration(ServerContext& ctx, uint64_t id, std::function<void(bool)> closer, PeerConnection* websocket)
      : LiveRegistration(ctx, id, std::move(closer)) {
    ctx.websockets[id] = websocket;
  }
  ~LiveRegistration() { release(); }
  void release() {
    if (ctx_ != nullptr) {
      ctx_->live.erase(id_);
      ctx_->plain_http.erase(id_);
      ctx_->websockets.erase(id_);
    }
    ctx_ = nullptr;
  }
  LiveRegistration(const LiveRegistration&) = delete;
  LiveRegistration& operator=(const LiveRegistration&) = delete;

 private:
  ServerContext* ctx_;
  uint64_t id_;
};

}  // namespace gm::server
