// The network server: one TCP listener, HTTP routes, and authenticated WebSockets handed
// to a ConnectionHandler (see connection.h for the contract with the repo layer).
//
// Everything runs on one io_context driven by the thread that calls run(). Lifecycle:
//
//   Server server(config, handler, verifier, metrics);
//   server.router().add(...);               // optional extra routes (auth part)
//   auto port = server.listen();            // binds; port 0 picks a free one
//   server.run();                           // until SIGTERM/SIGINT or stop()
//
// With config().tls_cert_file and tls_key_file the port speaks HTTPS and WSS only
// (server/tls.h). listen() loads them (an error names the file and what is wrong);
// SIGHUP, or reload_tls(), loads them again for the connections that follow, while
// open connections keep the certificate they began with. A reload that fails is logged
// and the certificate in use stays.
//
// Shutdown (signal or stop()): the listener closes, every WebSocket gets a close frame
// ("server shutting down", 1001), HTTP connections are closed; sockets still open after
// `shutdown_grace` are cut. Once every on_close has been delivered, handler.flush() runs
// and run() returns.
//
// WebSocket upgrades are accepted only on path "/" with `?token=<session token>` that
// the TokenVerifier accepts; anything else gets `401 Unauthorized` with an empty body
// and the connection is closed (404 for another path, 503 while shutting down).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "server/config.h"
#include "server/connection.h"
#include "server/http_router.h"
#include "server/metrics.h"
#include "util/result.h"

namespace gm::server {

// Checks a session token (signature, expiry, revocation) and says whom it names. Called on
// the io thread for every upgrade, so it must be quick (no network I/O).
using TokenVerifier = std::function<Result<PeerIdentity>(std::string_view token)>;

class Server {
 public:
  // `handler` and `metrics` must outlive the Server.
  Server(ServerConfig config, ConnectionHandler& handler, TokenVerifier verifier, MetricsRegistry& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes beyond the built-in GET /, /healthz and /metrics. Add before run().
  HttpRouter& router();
  const ServerConfig& config() const;

  // Loads the TLS certificate if configured, binds config().host:config().port and
  // starts listening. Returns the bound port.
  Result<uint16_t> listen();

  // Serves until shutdown completes (see above). With `handle_signals`, SIGTERM and
  // SIGINT start the shutdown and SIGHUP reloads the TLS certificate.
  void run(bool handle_signals = true);

  // Starts the shutdown; safe from any thread and more than once.
  void stop();

  // Reads the TLS certificate and key again (what SIGHUP does), on the io thread; the
  // outcome is logged. Safe from any thread.
  void reload_tls();

  // Closes (code 1008, `reason`) every open WebSocket whose identity `match` accepts:
  // a revoked session, device or grant. Safe from any thread; `match` runs on the io
  // thread.
  void close_peers(std::function<bool(const PeerIdentity&)> match, std::string reason);

  // The identities of the open WebSockets. On the io thread only.
  std::vector<PeerIdentity> open_websockets() const;

  // The io thread's executor, for the repo layer's own timers and for posting work
  // from other threads.
  boost::asio::any_io_executor executor();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gm::server
