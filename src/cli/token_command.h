// `groundmist-sync token --group G [--scope NSID:read|write …] [--name N] [--ttl D]
// [--data DIR]`: mints a session token for one lexicon group with the server's key and
// prints it on stdout (for scripts, tests and agents on the server's own machine). With
// scopes, the token also reaches those groups, under a grant made for it (subject
// `token:N`, N default "cli", expiring with the token; `grants revoke` withdraws it). The key is the one `serve` uses:
// GROUNDMIST_SYNC_SECRET_KEY (environment or .env), else <data>/.groundmist/secret.key
// (created on first use). Also the bridge from the auth part's session tokens
// (auth/session_token.h) to the server's TokenVerifier.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/revocation_watcher.h"
#include "auth/session_token.h"
#include "auth/state_store.h"
#include "cli/serve_command.h"
#include "server/config.h"
#include "server/server.h"
#include "util/result.h"

namespace gm::cli {

struct TokenOptions {
  CommonServerFlags common;
  std::string group;
  std::string ttl = "12h";
  std::vector<std::string> scopes;
  std::string name = "cli";
  int exit_code = 0;
};

void add_token_command(CLI::App& app, TokenOptions& opts);


// Verifies session tokens signed with the configured key for `serve`. With an owner
// configured, a token that names another DID as its subject is refused too, and so is
// one whose session was revoked (`revocations`, null: nothing is). The identity carries
// the token's scopes whose grants stand, and every grant the token names (a socket
// closes when one of them falls).
Result<server::TokenVerifier> make_session_verifier(const server::ServerConfig& config,
                                                    auth::RevocationWatcher* revocations);
// The same checks (signature, expiry, revocation, owner), giving the token's claims:
// the JSON API's door (api/routes.h).
using ClaimsVerifier = std::function<Result<auth::SessionClaims>(std::string_view token)>;
ClaimsVerifier make_claims_verifier(auth::TokenKey key, const server::ServerConfig& config,
                                    auth::RevocationWatcher* revocations);

}  // namespace gm::cli
