// `groundmist-sync token --group G [--ttl D] [--data DIR]`: mints a session token for one
// lexicon group with the server's key and prints it on stdout (for scripts, tests and
// agents on the server's own machine). The key is the one `serve` uses:
// GROUNDMIST_SYNC_SECRET_KEY (environment or .env), else <data>/.groundmist/secret.key
// (created on first use). Also the bridge from the auth part's session tokens
// (auth/session_token.h) to the server's TokenVerifier.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "auth/session_token.h"
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

// Whether a session (id, issued at) was revoked; called on the io thread, must be quick.
using RevocationCheck = std::function<bool(const std::string& session_id, int64_t issued_at)>;

// Verifies session tokens signed with the configured key for `serve`. With an owner
// configured, a token that names another DID as its subject is refused too, and so is
// one whose session was revoked.
Result<server::TokenVerifier> make_session_verifier(const server::ServerConfig& config, RevocationCheck revoked);
// The same checks, giving the token's claims (the JSON API's door, api/routes.h).
using ClaimsVerifier = std::function<Result<auth::SessionClaims>(std::string_view token)>;
ClaimsVerifier make_claims_verifier(auth::TokenKey key, const server::ServerConfig& config, RevocationCheck revoked);

}  // namespace gm::cli
