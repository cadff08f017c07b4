#include "cli/serve_command.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cctype>
#include <nlohmann/json.hpp>

#include "api/access.h"
#include "api/routes.h"
#include "atproto/did.h"
#include "atproto/resolver.h"
#include "auth/authenticator.h"
#include "auth/revocation_watcher.h"
#include "auth/state_store.h"
#include "cli/atproto_commands.h"
#include "cli/token_command.h"
#include "server/repo_handler.h"
#include "server/metrics.h"
#include "server/client_address.h"
#include "server/server.h"
#include "web/console_oauth.h"
#include "web/console_routes.h"
#include "server/tls.h"
#include "server/url_query.h"
#include "storage/durable_file.h"
#include "util/text.h"

namespace gm::cli {

Result<server::ServerConfig> load_server_config(const CommonServerFlags& flags, const std::string& dotenv_path,
                                                bool read_port) {
  server::ServerConfig config;
  config.version = GM_VERSION;
  auto dotenv = server::read_dotenv_file(dotenv_path);
  if (!dotenv.ok()) return dotenv.error();
  GM_TRY(server::apply_environment(server::Environment(std::move(dotenv).value()), config, read_port));
  if (flags.data_dir) config.data_dir = *flags.data_dir;
  return config;
}

namespace {

// Every connection is a file descriptor, and loading a document opens its files. The
// usual soft limit (1024) runs out well below max_connections, and documents would then
// fail to load: raise it to the hard limit, and if that is still too low, accept fewer
// connections (more are closed at once) rather than fail loads.
void fit_open_file_limit(size_t& max_connections) {
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur != limit.rlim_max) {
    struct rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  constexpr uint64_t kStorageFiles = 256;  // documents being loaded, folders being flushed, listeners
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= max_connections + kStorageFiles) return;
  const uint64_t fit = limit.rlim_cur - std::min<uint64_t>(kStorageFiles, limit.rlim_cur / 2);
  spdlog::warn("at most {} open files (ulimit -n): accepting at most {} connections, not {}, so that documents "
               "can still be loaded; raise the limit for more",
               static_cast<uint64_t>(limit.rlim_cur), fit, max_connections);
  max_connections = fit;
}

}  // namespace

Status check_identity_config(const server::ServerConfig& config) {
  if (!config.owner_did.empty() && !atproto::is_atproto_did(config.owner_did)) {
    return error("owner \"" + config.owner_did + "\" (ATPROTO_DID or --owner) is not a did:plc or did:web DID");
  }
  if (Status u = atproto::check_url(config.plc_url); !u.ok()) return context("PLC directory (--plc-url, PLC_URL)", u.error());
  if (config.public_host.empty()) return Status::Ok();
  auto host = validate_sync_host(config.public_host);
  if (!host.ok()) return context("public host (--public-host, GROUNDMIST_SYNC_HOST)", host.error());
  const size_t colon = host->find(':');
  if (colon != std::string::npos && host->substr(0, colon) != "localhost" && host->substr(0, colon) != "127.0.0.1") {
    return error("public host \"" + *host + "\": atproto names a did:web server by its host name alone (a port only "
                 "for localhost), so PDSes refuse tokens for it; serve it on port 443 (behind TLS) and give the name "
                 "alone");
  }
  return Status::Ok();
}

namespace {

// Invalid UTF-8 a client sent (a claim quoted in a refusal) is replaced, never thrown.
server::HttpResponse json_response(boost::beast::http::status status, const nlohmann::json& body) {
  return server::make_response(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                               "application/json");
}

// POST /authenticate (and its XRPC name) on the login workers; GET /.well-known/did.json.
void add_login_routes(server::Server& srv, boost::asio::thread_pool& workers, auth::Authenticator& authenticator,
                      const server::ServerConfig& config) {
  namespace http = boost::beast::http;
  server::BlockingLimits limits;
  // Per client: a few logins at a time, one while it is over its failures, so that no
  // one address fills the queue the owner's login waits in.
  limits.client_key = [trust_proxy = config.trust_proxy](const server::HttpRequest& req,
                                                         const server::RequestInfo& info) {
    return auth::limiter_key(server::client_address(req, info, trust_proxy));
  };
  limits.max_per_client = [&authenticator](const std::string& key) -> size_t {
    return authenticator.failure_wait(key, auth::unix_now()) > 0 ? 1 : 8;
  };
  auto login = server::blocking_route(
      workers, [&authenticator, trust_proxy = config.trust_proxy](const server::HttpRequest& req,
                                                                  const server::RequestInfo& info) {
        auth::LoginRequest request;
        request.path = std::string(server::split_target(req.target()).path);
        request.authorization = std::string(req[http::field::authorization]);
        request.dpop = std::string(req["DPoP"]);
        request.origin = std::string(req[http::field::origin]);
        request.user_agent = std::string(req[http::field::user_agent]);
        request.address = server::client_address(req, info, trust_proxy);
        request.body = req.body();
        auth::LoginResponse r = authenticator.login(request, auth::unix_now());
        server::HttpResponse res = json_response(static_cast<http::status>(r.status), r.body);
        if (!r.www_authenticate.empty()) res.set(http::field::www_authenticate, r.www_authenticate);
        if (r.retry_after > 0) res.set(http::field::retry_after, std::to_string(r.retry_after));
        res.set(http::field::cache_control, "no-store");
        return res;
      },
      std::move(limits));
  srv.router().add(http::verb::post, "/authenticate", login, /*cross_origin=*/true);
  srv.router().add(http::verb::post, std::string("/xrpc/") + auth::kAuthenticateNsid, login, /*cross_origin=*/true);
  srv.router().add(http::verb::get, "/.well-known/did.json",
                   [host = config.public_host](const server::HttpRequest&,
                                               const server::RequestInfo&) -> boost::asio::awaitable<server::HttpResponse> {
                     if (host.empty()) {
                       co_return json_response(http::status::not_found,
                                               {{"error", "not_configured"},
                                                {"message", "no public host configured (--public-host)"}});
                     }
                     co_return json_response(http::status::ok, atproto::service_did_document(host));
                   },
                   /*cross_origin=*/true);
}

int serve(const ServeOptions& opts) {
  auto level = spdlog::level::from_str(opts.log_level);
  if (level == spdlog::level::off && opts.log_level != "off") {
    std::cerr << "groundmist-sync serve: unknown --log-level \"" << opts.log_level
              << "\" (trace, debug, info, warn, error, off)\n";
    return 1;
  }
  spdlog::set_level(level);

  auto loaded = load_server_config(opts.common, ".env", /*read_port=*/!opts.port);
  if (!loaded.ok()) {
    std::cerr << "groundmist-sync serve: " << loaded.error().message << "\n";
    return 1;
  }
  server::ServerConfig config = std::move(loaded).value();
  if (opts.port) config.port = *opts.port;
  if (opts.host) config.host = *opts.host;
  if (opts.max_frame_bytes) config.max_frame_bytes = *opts.max_frame_bytes;
  if (opts.max_queue_bytes) config.max_queue_bytes = *opts.max_queue_bytes;
  if (opts.max_connections) config.max_connections = *opts.max_connections;
  if (opts.max_sockets_per_group) config.max_sockets_per_group = *opts.max_sockets_per_group;
  if (opts.max_sockets_per_token) config.max_sockets_per_session = *opts.max_sockets_per_token;
  if (opts.owner) config.owner_did = *opts.owner;
  if (opts.public_host) config.public_host = *opts.public_host;
  if (opts.plc_url) config.plc_url = *opts.plc_url;
  config.allow_oauth_dpop = opts.allow_oauth_dpop;
  config.trust_proxy = opts.trust_proxy;
  if (opts.tls_cert) config.tls_cert_file = *opts.tls_cert;
  if (opts.tls_key) config.tls_key_file = *opts.tls_key;
  if (opts.session_ttl) {
    auto ttl = auth::parse_duration(*opts.session_ttl);
    if (!ttl.ok()) {
      std::cerr << "groundmist-sync serve: --session-ttl: " << ttl.error().message << "\n";
      return 1;
    }
    config.session_ttl_seconds = *ttl;
  }
  if (Status s = check_identity_config(config); !s.ok()) {
    std::cerr << "groundmist-sync serve: " << s.error().message << "\n";
    return 1;
  }
  if (opts.ping_interval_seconds) {
    config.ping_interval = std::chrono::milliseconds(std::llround(*opts.ping_interval_seconds * 1000));
  }
  if (Status s = server::resolve_host(config); !s.ok()) {
    std::cerr << "groundmist-sync serve: " << s.error().message << "\n";
    return 1;
  }
  // A wrong certificate or key is said now, before anything is opened (the server
  // loads them again when it starts listening, and on SIGHUP).
  if (Status s = server::check_tls_files(config); !s.ok()) {
    std::cerr << "groundmist-sync serve: " << s.error().message << "\n";
    return 1;
  }
  if (!config.tls_cert_file.empty()) {
    if (auto tls = server::load_tls_context(config.tls_cert_file, config.tls_key_file); !tls.ok()) {
      std::cerr << "groundmist-sync serve: " << tls.error().message << "\n";
      return 1;
    }
  }

  fit_open_file_limit(config.max_connections);

  // Private (0700): it holds the owner's documents.
  if (Status s = storage::create_directories_durably(config.data_dir); !s.ok()) {
    std::cerr << "groundmist-sync serve: cannot create data folder: " << s.error().message << "\n";
    return 1;
  }
  std::error_code fs_error;
  const std::string data_path = std::filesystem::absolute(config.data_dir, fs_error).lexically_normal().string();
  // A folder that already existed keeps its mode (e.g. 0755 from `mkdir -p`): other
  // local users could then list the groups and document ids, though not read a file.
  using std::filesystem::perms;
  const perms mode = std::filesystem::status(config.data_dir, fs_error).permissions();
  if (!fs_error && (mode & (perms::group_all | perms::others_all)) != perms::none) {
    spdlog::warn("data folder {} is open to other users of this machine (mode {:04o}); `chmod 700 {}` keeps it private",
                 data_path, static_cast<unsigned>(mode & perms::mask), data_path);
  }

  // One server per data folder: two would each sync their own copy of a document with
  // their own clients, and compact the same files. Held until the process exits.
  const std::string lock_path = config.data_dir + "/.groundmist/server.lock";
  std::error_code lock_dir_error;
  std::filesystem::create_directories(config.data_dir + "/.groundmist", lock_dir_error);
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    std::cerr << "groundmist-sync serve: " << lock_path << ": "
              << (lock_fd < 0 ? std::strerror(errno)
                              : "another groundmist-sync serve is using this data folder; stop it first")
              << "\n";
    return 1;
  }
  auto store = auth::StateStore::open(config.data_dir);
  if (!store.ok()) {
    std::cerr << "groundmist-sync serve: " << store.error().message << "\n";
    return 1;
  }
  // Revocations by the owner's commands reach the server through the database; the
  // callback closes the sockets (set once the server exists, below).
  std::function<void(const auth::RevocationState&)> close_revoked;
  auth::RevocationWatcher revocations(**store, std::chrono::milliseconds(500), [&](const auth::RevocationState& s) {
    if (close_revoked) close_revoked(s);
  });
  if (Status s = revocations.load(); !s.ok()) {
    std::cerr << "groundmist-sync serve: " << s.error().message << "\n";
    return 1;
  }
  auto verifier = make_session_verifier(config, &revocations);
  if (!verifier.ok()) {
    std::cerr << "groundmist-sync serve: " << verifier.error().message << "\n";
    return 1;
  }
  auto token_key = auth::load_token_key(config.data_dir, config.secret_key.empty()
                                                             ? std::nullopt
                                                             : std::optional<std::string_view>(config.secret_key));
  if (!token_key.ok()) {
    std::cerr << "groundmist-sync serve: " << token_key.error().message << "\n";
    return 1;
  }
  if (config.owner_did.empty()) {
    spdlog::warn(
        "no owner configured (ATPROTO_DID): listening on {} only, and only tokens minted here with "
        "`groundmist-sync token` are accepted",
        config.host);
  } else {
    spdlog::info("owner {}; apps log in at {}/authenticate{}", config.owner_did,
                 config.public_host.empty() ? std::string("(no public host)") : auth::public_origin(config.public_host),
                 config.allow_oauth_dpop ? " (service auth, and OAuth DPoP with device approval)" : " (service auth)");
    if (config.public_host.empty()) {
      spdlog::warn("no public host (--public-host or GROUNDMIST_SYNC_HOST): apps cannot log in, because the "
                   "server cannot check whom their tokens are meant for; set it to the host apps use");
    }
  }
  atproto::DidResolver resolver(config.plc_url);
  auth::AuthenticatorOptions auth_options;
  auth_options.owner_did = config.owner_did;
  auth_options.public_host = config.public_host;
  auth_options.allow_oauth_dpop = config.allow_oauth_dpop;
  auth_options.session_ttl_seconds = config.session_ttl_seconds;
  auth_options.revoked_before = [&revocations] { return revocations.current()->revoked_before; };
  const auth::TokenKey api_key = *token_key;  // the JSON API checks the same tokens
  auth::Authenticator authenticator(auth_options, **store, std::move(token_key).value(),
                                    [&resolver, owner = config.owner_did](bool refresh) -> Result<atproto::PublicKey> {
                                      GM_ASSIGN_OR_RETURN(atproto::DidDocument doc, resolver.resolve(owner, refresh));
                                      return atproto::atproto_signing_key(doc);
                                    });

  repo::RepoOptions repo_options;
  repo_options.data_dir = config.data_dir;
  boost::system::error_code host_error;
  repo_options.hostname = boost::asio::ip::host_name(host_error);
  if (host_error || repo_options.hostname.empty()) repo_options.hostname = "localhost";
  if (opts.idle_unload_seconds) {
    repo_options.idle_unload = std::chrono::milliseconds(std::llround(*opts.idle_unload_seconds * 1000));
  }
  if (opts.max_group_bytes) repo_options.max_group_bytes = *opts.max_group_bytes;
  repo_options.log.info = [](const std::string& m) { spdlog::info("{}", m); };
  repo_options.log.warn = [](const std::string& m) { spdlog::warn("{}", m); };
  auto repo = repo::Repo::open(repo_options);
  if (!repo.ok()) {
    std::cerr << "groundmist-sync serve: " << repo.error().message << "\n";
    return 1;
  }
  server::MetricsRegistry metrics;
  server::RepoHandler handler(**repo, metrics);
  server::Server srv(config, handler, std::move(verifier).value(), metrics);
  // After the server: joined (in its destructor) while the server's io_context exists.
  boost::asio::thread_pool login_workers(2);
  add_login_routes(srv, login_workers, authenticator, config);
  web::ConsoleOptions console_options;
  console_options.owner_did = config.owner_did;
  console_options.public_host = config.public_host;
  console_options.version = config.version;
  console_options.trust_proxy = config.trust_proxy;
  if (const char* dir = std::getenv("GROUNDMIST_SYNC_CONSOLE_DIR"); dir != nullptr && *dir != '\0') {
    console_options.pages_dir = dir;
    spdlog::warn("console pages from {} (GROUNDMIST_SYNC_CONSOLE_DIR), not those built in", dir);
  }
  // The console's own worker for the state database, so that the owner's revocations
  // never wait behind logins stuck on a slow PDS (joined before the server goes).
  boost::asio::thread_pool console_workers(1);
  web::Console console(console_options, srv, **repo, **store, revocations, console_workers, api_key);
  const std::function<void()> recheck_event_streams = api::add_api_routes(
      srv.router(), **repo,
      make_claims_verifier(api_key, config, &revocations),
      [key = api_key](const auth::SessionClaims& claims) {
        return auth::keyed_id(key, "api-actor v1", api::writer_subject(claims));
      },
      api::ApiLimits{}, {console.read_mount()});
  console.add_routes(srv.router());
  const auto console_oauth = web::add_console_oauth_routes(  // "Sign in with atproto"
      srv.router(), console, resolver, {config.owner_did, config.public_host, config.trust_proxy});
  close_revoked = [&srv, &console, recheck_event_streams](const auth::RevocationState& state) {
    srv.close_peers(
        [state, now = auth::unix_now()](const server::PeerIdentity& id) {
          return state.revoked(id.session_id, id.issued_at) ||
                 std::any_of(id.grants.begin(), id.grants.end(),
                             [&](const std::string& g) { return !state.grant_stands(g, now); });
        },
        "session or grant revoked");
    boost::asio::post(srv.executor(), recheck_event_streams);  // the API's event streams, likewise
    console.recheck();
  };
  auto port = srv.listen();
  if (!port.ok()) {
    std::cerr << "groundmist-sync serve: " << port.error().message << "\n";
    return 1;
  }
  const bool v6 = config.host.find(':') != std::string::npos;
  std::printf("groundmist-sync listening on %s://%s%s%s:%u (data: %s)\n",
              config.tls_cert_file.empty() ? "http" : "https", v6 ? "[" : "", config.host.c_str(), v6 ? "]" : "",
              static_cast<unsigned>(*port), data_path.c_str());
  std::fflush(stdout);
  // Look for idle documents a few times per idle period, at most every 5 s.
  using std::chrono::milliseconds;
  handler.start_timer(srv.executor(), std::clamp<milliseconds>(repo_options.idle_unload / 4, milliseconds(50),
                                                               std::chrono::seconds(5)));
  revocations.start();
  console.start();
  srv.run();
  revocations.stop();  // its callback reaches the server, which goes next
  // Logins still waiting are dropped (their sockets are gone); one being checked ends.
  login_workers.stop();
  login_workers.join();
  console_workers.stop();
  console_workers.join();
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, ServeOptions& opts) {
  CLI::App* cmd = app.add_subcommand("serve", "Run the sync server (HTTP + WebSocket) until SIGTERM/SIGINT (SIGHUP reloads the TLS certificate)");
  cmd->add_option("--port", opts.port, "TCP port (env PORT, default 3031; 0 picks a free port)");
  cmd->add_option("--data", opts.common.data_dir, "Data folder (env DATA_DIR, default .data)");
  cmd->add_option("--host", opts.host,
                  "Listen address (default 0.0.0.0 with an owner DID, else 127.0.0.1, the only choice then)");
  cmd->add_option("--max-frame", opts.max_frame_bytes, "Largest WebSocket message accepted (default 100MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{1} << 10, uint64_t{1} << 40));  // 0 would mean no limit at all
  cmd->add_option("--max-queue", opts.max_queue_bytes,
                  "Outgoing bytes queued per socket past which a reader that takes nothing for 30 s, or "
                  "that lets 4 times as much queue up, is cut off (default 64MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{1} << 10, uint64_t{1} << 40));
  cmd->add_option("--ping-interval", opts.ping_interval_seconds,
                  "Seconds of silence before a WebSocket ping; no answer within as long again closes it (default 5)")
      ->check(CLI::Range(0.05, 3600.0));
  cmd->add_option("--idle-unload", opts.idle_unload_seconds,
                  "Seconds a document stays loaded after its last use; then it is compacted and unloaded (default 10)")
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--max-group-bytes", opts.max_group_bytes,
                  "Bytes one lexicon group's document files may take on disk; past it changes are refused with "
                  "an error (default 8GiB; 0: no limit)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--max-connections", opts.max_connections,
                  "Open TCP connections in all; more are closed at once (default 4096; fewer if the open-file "
                  "limit would not leave room for the documents' files)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24));
  cmd->add_option("--max-sockets-per-group", opts.max_sockets_per_group,
                  "WebSockets one lexicon group's tokens may hold open together; more are answered 429 (default 1024)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24));
  cmd->add_option("--max-sockets-per-token", opts.max_sockets_per_token,
                  "WebSockets one session token may hold open at once; more are answered 429 (default 256)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24));
  cmd->add_option("--owner", opts.owner, "The owner's DID (env ATPROTO_DID); without one, loopback only");
  cmd->add_option("--public-host", opts.public_host,
                  "Host apps reach this server at, e.g. sync.example.com (env GROUNDMIST_SYNC_HOST); the server is "
                  "did:web:<host>");
  cmd->add_option("--plc-url", opts.plc_url, "PLC directory (env PLC_URL, default https://plc.directory)");
  cmd->add_flag("--allow-oauth-dpop", opts.allow_oauth_dpop,
                "Also accept today's OAuth apps (DPoP access tokens), each device only once the owner approves it");
  cmd->add_flag("--trust-proxy", opts.trust_proxy,
                "Behind a reverse proxy: take client addresses (logs, sessions, login rate limits) from the last "
                "X-Forwarded-For entry");
  cmd->add_option("--tls-cert", opts.tls_cert,
                  "PEM certificate (then its chain) to serve HTTPS and WSS with on the port, which then speaks "
                  "TLS only (env GROUNDMIST_SYNC_TLS_CERT); read again on SIGHUP");
  cmd->add_option("--tls-key", opts.tls_key,
                  "PEM private key of --tls-cert, without a passphrase (env GROUNDMIST_SYNC_TLS_KEY); read again on "
                  "SIGHUP");
  cmd->add_option("--session-ttl", opts.session_ttl, "Lifetime of session tokens from /authenticate (default 24h)");
  cmd->add_option("--log-level", opts.log_level, "trace, debug, info, warn, error or off (default info)");
  cmd->callback([&opts] { opts.exit_code = serve(opts); });
}

}  // namespace gm::cli
