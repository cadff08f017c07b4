// One accepted TCP connection, from its first HTTP request on (after the TLS handshake
// when the server has a certificate: then the port speaks TLS only, and a plain-HTTP
// request gets a 400 saying so).
//
// Reads requests (each within config.request_timeout, headers within max_header_bytes,
// bodies within max_body_bytes), answers plain requests through the router with
// keep-alive, and turns a WebSocket upgrade into a WebSocketSession once the session
// token checks out:
//
//   upgrade on a path other than "/"        -> 404, close
//   server shutting down                    -> 503, close
//   no `token` query parameter / bad token  -> 401 with an empty body, close
//   token names a group                     -> WebSocketSession::run (101 Switching Protocols)
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "server/server_context.h"

namespace gm::server {

boost::asio::awaitable<void> serve_http(ServerContext& ctx, boost::asio::ip::tcp::socket socket);

}  // namespace gm::server
