#include "server/server.h"

#include "server/client_address.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <csignal>
#include <exception>
#include <nlohmann/json.hpp>
#include <vector>

#include "server/client_address.h"
#include "server/http_session.h"
#include "server/server_context.h"
#include "server/tls.h"

namespace gm::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// What the prototype answers on GET / (express `res.send(string)`: 200, text/html).
constexpr const char* kRootBody = "\xF0\x9F\x91\x8D Groundmist personal sync server is running";

void add_builtin_routes(ServerContext& ctx) {
  ctx.router.add(http::verb::get, "/", [](const HttpRequest&, const RequestInfo&) -> asio::awaitable<HttpResponse> {
    co_return make_response(http::status::ok, kRootBody, "text/html; charset=utf-8");
  });
  // Public: anyone may ask whether the server is up, but the owner's group names (which
  // apps they use) are not anyone's business.
  ctx.router.add(http::verb::get, "/healthz", [&ctx](const HttpRequest&, const RequestInfo&) -> asio::awaitable<HttpResponse> {
    nlohmann::json body = {
        {"status", ctx.stopping ? "stopping" : "ok"},
        {"version", ctx.config.version},
        {"uptime", static_cast<int64_t>(std::floor(ctx.metrics.uptime_seconds()))},
    };
    co_return make_response(http::status::ok, body.dump() + "\n", "application/json");
  });
  // For the owner's own machine only: its labels name the groups (the owner's apps).
  // A request through a proxy (it carries X-Forwarded-For) is not local, whatever its
  // TCP peer; to scrape from elsewhere, tunnel to the server's loopback.
  ctx.router.add(http::verb::get, "/metrics", [&ctx](const HttpRequest& req, const RequestInfo& info) -> asio::awaitable<HttpResponse> {
    if (!is_local_request(req, info)) {
      co_return make_response(http::status::forbidden, "/metrics is served to this machine only\n", "text/plain");
    }
    co_return make_response(http::status::ok, ctx.metrics.render_prometheus(), "text/plain; version=0.0.4");
  });
}

// Logs an exception that escaped a detached coroutine instead of losing it.
void log_escaped(const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    spdlog::error("{}: {}", what, x.what());
  } catch (...) {
    spdlog::error("{}: unknown exception", what);
  }
}

}  // namespace

struct Server::Impl {
  Impl(ServerConfig config, ConnectionHandler& handler, TokenVerifier verifier, MetricsRegistry& metrics)
      : ctx(std::move(config), handler, std::move(verifier), metrics) {
    ctx.io = &io;
    add_builtin_routes(ctx);
  }

  // Declaration order matters: coroutine frames still pending when io is destroyed
  // refer to ctx, and the I/O objects below must go before io.
  ServerContext ctx;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::signal_set signals{io};
  bool flushed = false;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> wait_for_signal();
  asio::awaitable<void> drain();
  void begin_shutdown(const char* why);
  Status load_tls(const std::string& why);
  void reload_tls(const char* why);
};

asio::awaitable<void> Server::Impl::accept_loop() {
  asio::steady_timer backoff(io);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ctx.stopping || ec == asio::error::operation_aborted) break;
      // E.g. out of file descriptors: wait a little rather than spin.
      spdlog::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    const bool full = ctx.live.size() >= ctx.config.max_connections;
    if (!ctx.plain_http.empty() && (full || ctx.plain_http.size() >= ctx.config.max_plain_http)) {
      const uint64_t oldest = *ctx.plain_http.begin();
      spdlog::info("conn {}: closed to make room: {} connections open, {} not yet WebSockets", oldest,
                   ctx.live.size(), ctx.plain_http.size());
      ctx.plain_http.erase(ctx.plain_http.begin());
      if (auto it = ctx.live.find(oldest); it != ctx.live.end()) it->second(true);
    } else if (full) {
      spdlog::warn("refusing a connection: {} connections open (the limit)", ctx.live.size());
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    // Each message is written whole, at once: Nagle's algorithm would only hold a small
    // reply back until the peer acknowledges the one before.
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(io, serve_http(ctx, std::move(socket)),
                   [](std::exception_ptr e) { log_escaped("connection", e); });
  }
}

asio::awaitable<void> Server::Impl::wait_for_signal() {
  for (;;) {
    auto [ec, signo] = co_await signals.async_wait(kTuple);
    if (ec) co_return;  // cancelled by a shutdown that began elsewhere
    if (signo == SIGHUP) {
      reload_tls("SIGHUP");
      continue;
    }
    begin_shutdown(signo == SIGTERM ? "SIGTERM" : signo == SIGINT ? "SIGINT" : "signal");
    co_return;
  }
}

// Builds a TLS context from the configured files and puts it in place for new
// connections. Files of a few KiB, read on the io thread: a reload is rare.
Status Server::Impl::load_tls(const std::string& why) {
  auto loaded = load_tls_context(ctx.config.tls_cert_file, ctx.config.tls_key_file);
  if (!loaded.ok()) return loaded.error();
  ctx.tls = std::move(loaded->context);
  const TlsCertificateInfo& cert = loaded->certificate;
  ctx.metrics.tls_certificate_expiry.store(cert.not_after_unix, std::memory_order_relaxed);
  spdlog::info("TLS certificate {}: {}", why, describe(cert));
  constexpr int64_t kDay = 24 * 3600;
  if (cert.seconds_left <= 0) {
    spdlog::error("TLS certificate {} has expired ({}): clients will refuse to connect; renew it, then SIGHUP",
                  ctx.config.tls_cert_file, cert.not_after);
  } else if (cert.seconds_left < 14 * kDay) {
    spdlog::warn("TLS certificate {} expires in {} day(s) ({}); renew it, then SIGHUP", ctx.config.tls_cert_file,
                 cert.seconds_left / kDay, cert.not_after);
  }
  return Status::Ok();
}

void Server::Impl::reload_tls(const char* why) {
  if (ctx.config.tls_cert_file.empty()) {
    spdlog::info("{}: no TLS certificate to reload (no --tls-cert); nothing else is reloaded", why);
    return;
  }
  if (Status s = load_tls(std::string("reloaded (") + why + ")"); !s.ok()) {
    spdlog::error("{}: TLS reload failed, still serving the previous certificate: {}", why, s.error().message);
  }
}

// How long a shutdown waits, handling no more messages, before it closes the sockets.
constexpr std::chrono::milliseconds kShutdownQuiet{300};

void Server::Impl::begin_shutdown(const char* why) {
  if (ctx.stopping) return;
  ctx.stopping = true;
  spdlog::info("shutting down ({}): closing {} connection(s)", why, ctx.live.size());
  boost::system::error_code ignored;
  acceptor.close(ignored);
  signals.cancel(ignored);
  asio::co_spawn(io, drain(), [](std::exception_ptr e) { log_escaped("shutdown", e); });
}

asio::awaitable<void> Server::Impl::drain() {
  asio::steady_timer tick(io);
  // Quiet period: messages arriving now are no longer handled, so nothing new is sent,
  // while what was already sent reaches the clients and their replies can go out on an
  // open socket (a client that must answer on a closing socket breaks its document
  // handle). Then the close frames. First let the handlers already queued run: a group
  // commit among them releases replies (after a disk flush that may take a while), and
  // the quiet period must follow those replies, not start before them.
  co_await asio::post(io, asio::use_awaitable);
  tick.expires_after(kShutdownQuiet);
  co_await tick.async_wait(kTuple);
  {
    // Copy: closers may unregister themselves while we iterate.
    std::vector<std::function<void(bool)>> closers;
    for (auto& [id, closer] : ctx.live) closers.push_back(closer);
    for (auto& closer : closers) closer(false);
  }
  const auto poll = std::chrono::milliseconds(20);
  auto deadline = std::chrono::steady_clock::now() + ctx.config.shutdown_grace;
  while (!ctx.live.empty() && std::chrono::steady_clock::now() < deadline) {
    tick.expires_after(poll);
    co_await tick.async_wait(kTuple);
  }
  if (!ctx.live.empty()) {
    spdlog::warn("shutdown: {} connection(s) still open after {} ms, cutting them", ctx.live.size(),
                 ctx.config.shutdown_grace.count());
    std::vector<std::function<void(bool)>> closers;
    for (auto& [id, closer] : ctx.live) closers.push_back(closer);
    for (auto& closer : closers) closer(true);
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!ctx.live.empty() && std::chrono::steady_clock::now() < deadline) {
      tick.expires_after(poll);
      co_await tick.async_wait(kTuple);
    }
  }
  flushed = true;
  try {
    ctx.handler.flush();
  } catch (const std::exception& e) {
    spdlog::error("shutdown: connection handler flush failed: {}", e.what());
  }
  spdlog::info("shutdown complete");
  // The handler may own timers on this io_context; nothing more is served.
  io.stop();
}

Server::Server(ServerConfig config, ConnectionHandler& handler, TokenVerifier verifier, MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), handler, std::move(verifier), metrics)) {}

Server::~Server() = default;

HttpRouter& Server::router() { return impl_->ctx.router; }
const ServerConfig& Server::config() const { return impl_->ctx.config; }
asio::any_io_executor Server::executor() { return impl_->io.get_executor(); }

Result<uint16_t> Server::listen() {
  const ServerConfig& config = impl_->ctx.config;
  if (!config.tls_cert_file.empty() || !config.tls_key_file.empty()) {
    GM_TRY(check_tls_files(config));
    GM_TRY(impl_->load_tls("loaded"));
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(config.host == "localhost" ? "127.0.0.1" : config.host, ec);
  if (ec) return error("listen address \"" + config.host + "\" is not an IP address: " + ec.message());
  const tcp::endpoint endpoint(address, config.port);
  const std::string where = config.host + ":" + std::to_string(config.port);
  tcp::acceptor& acceptor = impl_->acceptor;
  if (acceptor.open(endpoint.protocol(), ec); ec) return error("cannot open a socket for " + where + ": " + ec.message());
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return error("cannot set SO_REUSEADDR on " + where + ": " + ec.message());
  }
  if (acceptor.bind(endpoint, ec); ec) return error("cannot bind " + where + ": " + ec.message());
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return error("cannot listen on " + where + ": " + ec.message());
  }
  return acceptor.local_endpoint().port();
}

void Server::run(bool handle_signals) {
  Impl& impl = *impl_;
  if (handle_signals) {
    impl.signals.add(SIGTERM);
    impl.signals.add(SIGINT);
    // Also without TLS: `systemctl reload` must not end a server that has nothing to
    // reload (SIGHUP's default action would).
    impl.signals.add(SIGHUP);
    asio::co_spawn(impl.io, impl.wait_for_signal(), [](std::exception_ptr e) { log_escaped("signals", e); });
  }
  asio::co_spawn(impl.io, impl.accept_loop(), [](std::exception_ptr e) { log_escaped("listener", e); });
  impl.io.run();
  if (!impl.flushed) {
    // Only reachable if run() ended without a shutdown (io stopped from outside).
    impl.flushed = true;
    impl.ctx.handler.flush();
  }
}

void Server::close_peers(std::function<bool(const PeerIdentity&)> match, std::string reason) {
  asio::post(impl_->io, [impl = impl_.get(), match = std::move(match), reason = std::move(reason)] {
    std::vector<PeerConnection*> doomed;
    for (auto& [id, peer] : impl->ctx.websockets) {
      if (match(peer->identity())) doomed.push_back(peer);
    }
    for (PeerConnection* peer : doomed) {
      spdlog::info("conn {} {}: closing: {}", peer->id(), peer->remote_endpoint(), reason);
      peer->refuse(reason);
    }
  });
}

std::vector<PeerIdentity> Server::open_websockets() const {
  std::vector<PeerIdentity> open;
  open.reserve(impl_->ctx.websockets.size());
  for (const auto& [id, peer] : impl_->ctx.websockets) open.push_back(peer->identity());
  return open;
}

void Server::reload_tls() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->reload_tls("reload requested"); });
}

void Server::stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->begin_shutdown("stop requested"); });
}

}  // namespace gm::server
