// `groundmist-sync serve [--port P] [--data DIR] [--host ADDR] [--max-frame BYTES] ...`:
// runs the sync server until SIGTERM/SIGINT.
//
// Configuration comes from flags, then the environment, then `.env` in the working
// folder (server/config.h). When listening, prints exactly one line to stdout:
//   groundmist-sync listening on http://127.0.0.1:3031 (data: /abs/path/.data)
// Logs go to stderr. Exit status 0 after a clean shutdown, 1 on a startup error.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "server/config.h"

namespace gm::cli {

// Flags shared by `serve` and `token` (both need the data folder and the secret).
struct CommonServerFlags {
  std::optional<std::string> data_dir;
};

struct ServeOptions {
  CommonServerFlags common;
  std::optional<uint16_t> port;
  std::optional<std::string> host;
  std::optional<uint64_t> max_frame_bytes;
  std::optional<uint64_t> max_queue_bytes;
  std::optional<double> ping_interval_seconds;
  std::optional<double> idle_unload_seconds;
  std::optional<uint64_t> max_group_bytes;
  std::optional<uint64_t> max_connections;
  std::optional<uint64_t> max_sockets_per_group;
  std::optional<uint64_t> max_sockets_per_token;
  std::optional<std::string> owner;
  std::optional<std::string> public_host;
  std::optional<std::string> plc_url;
  bool allow_oauth_dpop = false;
  bool trust_proxy = false;
  std::optional<std::string> tls_cert;  // --tls-cert (env GROUNDMIST_SYNC_TLS_CERT)
  std::optional<std::string> tls_key;   // --tls-key (env GROUNDMIST_SYNC_TLS_KEY)
  std::optional<std::string> session_ttl;
  std::string log_level = "info";
  int exit_code = 0;
};

void add_serve_command(CLI::App& app, ServeOptions& opts);

// Defaults <- .env <- environment <- flags, for any command that needs the server's
// configuration. `dotenv_path` is ".env" except in tests.
Result<server::ServerConfig> load_server_config(const CommonServerFlags& flags,
                                                const std::string& dotenv_path = ".env", bool read_port = true);

// The owner must be a DID apps can prove they act for (or none); the public host, if
// set, a bare host name (with a port only for a development host); the PLC directory a
// URL the HTTP client allows. `serve` refuses to start otherwise; `doctor` says so.
Status check_identity_config(const server::ServerConfig& config);

}  // namespace gm::cli
