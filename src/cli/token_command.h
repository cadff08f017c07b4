// `groundmist-sync token --group G [--ttl D] [--data DIR]`: mints a session token for one
// lexicon group with the server's secret and prints it (for scripts, tests and agents on
// the server's own machine). Also the bridge from the auth part's session tokens to the
// server's TokenVerifier.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli/serve_command.h"
#include "server/config.h"
#include "server/server.h"
#include "util/result.h"

namespace gm::cli {

struct TokenOptions {
  CommonServerFlags common;
  std::string group;
  std::string ttl = "12h";
  int exit_code = 0;
};

void add_token_command(CLI::App& app, TokenOptions& opts);

// Verifies session tokens signed with the configured secret for `serve`.
Result<server::TokenVerifier> make_session_verifier(const server::ServerConfig& config);

// "90s", "30m", "12h", "7d" or plain seconds.
Result<int64_t> parse_duration_seconds(std::string_view text);

}  // namespace gm::cli
