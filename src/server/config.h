// Server configuration: the prototype's environment variables, a `.env` file, then flags.
//
// Precedence (highest first): command-line flags, the real environment, `.env` in the
// working folder, built-in defaults. The variables keep the prototype's names and
// meaning (DESIGN.md "Configuration"):
//
//   PORT                        TCP port, default 3031
//   DATA_DIR                    data folder, default .data
//   GROUNDMIST_SYNC_SECRET_KEY  session-token signing secret (else <data>/.groundmist/secret.key)
//   ATPROTO_DID                 the owner's DID; without it the server binds to 127.0.0.1
//   GROUNDMIST_SYNC_HOST        the host apps reach the server at (names did:web:<host>)
//   PLC_URL                     the PLC directory, default https://plc.directory
//   GROUNDMIST_SYNC_TLS_CERT    PEM certificate (and chain) to serve HTTPS/WSS with (--tls-cert)
//   GROUNDMIST_SYNC_TLS_KEY     its PEM private key (--tls-key); both or neither
//
// `.env` syntax (what the npm `dotenv` 16 package accepts, single-line values only):
// one `KEY=VALUE` per line (KEY of letters, digits, `_`, `.`, `-`), optional leading
// `export `; an unquoted value ends at `#` and is trimmed; a value may be wrapped in
// '...', "..." (where \n means a newline) or `...`; a later line overrides an earlier one.
// Lines that are not KEY=VALUE are skipped, as dotenv does.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace gm::server {

using EnvMap = std::map<std::string, std::string, std::less<>>;

// Parses the text of a `.env` file.
EnvMap parse_dotenv(std::string_view text);

// Reads `path` if it exists (a missing file is an empty map, an unreadable one an error).
Result<EnvMap> read_dotenv_file(const std::string& path);

// Looks a variable up: the real environment first (`getenv`), then `dotenv`.
class Environment {
 public:
  using Getenv = std::function<std::optional<std::string>(const std::string&)>;
  // `getenv` defaults to the process environment; tests inject their own.
  explicit Environment(EnvMap dotenv, Getenv getenv = nullptr);
  std::optional<std::string> get(const std::string& name) const;

 private:
  EnvMap dotenv_;
  Getenv getenv_;
};

struct ServerConfig {
  // As large as the JS reference server accepts (ws's default maxPayload): a client
  // uploading a long history sends it in one message.
  static constexpr size_t kDefaultMaxFrameBytes = 100u << 20;
  static constexpr size_t kDefaultMaxQueueBytes = 64u << 20;

  // Empty until resolved: then 127.0.0.1 without an owner, 0.0.0.0 with one.
  std::string host;
  uint16_t port = 3031;  // 0 = pick a free port (tests)
  std::string data_dir = ".data";
  std::string secret_key;  // empty = use/create <data>/.groundmist/secret.key
  std::string owner_did;   // empty = no owner: loopback only, locally minted tokens only
  // The host apps use ("sync.example.com", or "localhost:3031" in development): the
  // server is did:web:<host>, the audience of the service-auth tokens it accepts.
  std::string public_host;
  std::string plc_url = "https://plc.directory";
  bool allow_oauth_dpop = false;             // accept today's OAuth apps (device approval)
  bool trust_proxy = false;                  // client address from X-Forwarded-For (behind a proxy)
  // Native TLS: with both set the port speaks HTTPS and WSS only (server/tls.h); the
  // files are read again on SIGHUP.
  std::string tls_cert_file;
  std::string tls_key_file;
  int64_t session_ttl_seconds = 24 * 3600;  // lifetime of tokens from /authenticate

  size_t max_frame_bytes = kDefaultMaxFrameBytes;  // largest WebSocket message accepted
  size_t max_queue_bytes = kDefaultMaxQueueBytes;  // outgoing bytes queued per socket
  // Droppable messages (ephemeral ones) are queued for a socket only while its queue
  // is under a quarter of max_queue_bytes and all queues together under this.
  size_t droppable_queue_budget = 256u << 20;
  size_t max_body_bytes = 1u << 20;                // HTTP request body limit
  size_t max_header_bytes = 16u << 10;             // HTTP request line + headers limit
  size_t max_connections = 4096;                   // open TCP connections; more are closed at once
  // Of them, connections not yet upgraded to a WebSocket (nobody has shown a token):
  // past this, or past max_connections, the oldest of them is closed to make room, so
  // idle sockets from anyone cannot crowd out the owner's apps.
  size_t max_plain_http = 256;
  // WebSockets one session token may hold open at once: a real app opens one per tab;
  // without a bound one token holder could take every connection from the others.
  size_t max_sockets_per_session = 256;
  // And one group's tokens together, so that one app cannot lock the others out.
  size_t max_sockets_per_group = 1024;
  std::chrono::milliseconds request_timeout{30'000};  // read one HTTP request / upgrade
  std::chrono::milliseconds ping_interval{5'000};     // WebSocket ping when idle this long
  std::chrono::milliseconds shutdown_grace{3'000};    // wait for close handshakes on stop

  std::string version = "0.0.0";  // reported by /healthz
};

// Fills PORT, DATA_DIR, GROUNDMIST_SYNC_SECRET_KEY, ATPROTO_DID, GROUNDMIST_SYNC_HOST, PLC_URL and
// GROUNDMIST_SYNC_TLS_CERT/_KEY from `env` into `config`. An invalid PORT is an error naming the value; without `read_port` (a --port
// flag wins, or the command does not listen) PORT is not read at all.
Status apply_environment(const Environment& env, ServerConfig& config, bool read_port = true);

// Decides the listen address once flags and environment are in: without an owner the
// server only listens on loopback; asking for another address then is an error. An
// IPv6 address may come in brackets ("[::1]").
Status resolve_host(ServerConfig& config);

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host);

// Native TLS needs both files or neither: an error naming the missing one.
Status check_tls_files(const ServerConfig& config);

}  // namespace gm::server
