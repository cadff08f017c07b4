#include "cli/token_command.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <optional>

#include "auth/session_token.h"
#include "auth/state_store.h"
#include "storage/group_registry.h"

namespace gm::cli {
namespace {

std::optional<std::string_view> configured_secret(const server::ServerConfig& config) {
  if (config.secret_key.empty()) return std::nullopt;
  return config.secret_key;
}

int mint(const TokenOptions& opts) {
  auto fail = [](const std::string& message) {
    std::cerr << "groundmist-sync token: " << message << "\n";
    return 1;
  };
  if (Status s = storage::validate_group_name(opts.group); !s.ok()) return fail("--group: " + s.error().message);
  auto ttl = auth::parse_duration(opts.ttl);
  if (!ttl.ok()) return fail("--ttl: " + ttl.error().message);
  auto config = load_server_config(opts.common, ".env", /*read_port=*/false);
  if (!config.ok()) return fail(config.error().message);
  // A mistyped --data would get a new folder, a new key, and a token the server refuses.
  if (std::error_code ec; !std::filesystem::is_directory(config->data_dir, ec)) {
    return fail("no data folder at " + config->data_dir + ": give the server's (--data or DATA_DIR)");
  }
  auto key = auth::load_token_key(config->data_dir, configured_secret(*config));
  if (!key.ok()) return fail(key.error().message);
  auth::SessionClaims claims = auth::new_session_claims(opts.group, *ttl);
  // Listed with the others, so the owner can see and revoke it.
  auto store = auth::StateStore::open(config->data_dir);
  if (!store.ok()) return fail(store.error().message);
  auth::SessionRecord session;
  session.id = claims.token_id;
  session.group = claims.group;
  session.kind = "local";
  session.created_at = claims.issued_at;
  session.expires_at = claims.expires_at;
  if (Status s = (*store)->add_session(session); !s.ok()) return fail(s.error().message);
  std::cout << auth::mint_session_token(*key, claims) << "\n";
  return 0;
}

}  // namespace

ClaimsVerifier make_claims_verifier(auth::TokenKey key, const server::ServerConfig& config, RevocationCheck revoked) {
  return [key = std::move(key), owner = config.owner_did,
          revoked = std::move(revoked)](std::string_view token) -> Result<auth::SessionClaims> {
    GM_ASSIGN_OR_RETURN(auth::SessionClaims claims, auth::verify_session_token(key, token));
    if (revoked && revoked(claims.token_id, claims.issued_at)) {
      return error("session " + claims.token_id + " was revoked by the owner");
    }
    if (!owner.empty() && claims.owner_did && *claims.owner_did != owner) {
      return error("token was issued to " + *claims.owner_did + ", not to the owner " + owner);
    }
    if (claims.group.empty()) return error("session token names no group");
    return claims;
  };
}

Result<server::TokenVerifier> make_session_verifier(const server::ServerConfig& config, RevocationCheck revoked) {
  GM_ASSIGN_OR_RETURN(auth::TokenKey key, auth::load_token_key(config.data_dir, configured_secret(config)));
  spdlog::info("session tokens: key from {}", key.source());
  return server::TokenVerifier(
      [verify = make_claims_verifier(std::move(key), config, std::move(revoked))](
          std::string_view token) -> Result<server::PeerIdentity> {
        GM_ASSIGN_OR_RETURN(auth::SessionClaims claims, verify(token));
        server::PeerIdentity identity;
        identity.group = std::move(claims.group);
        identity.subject = claims.owner_did.value_or("");
        identity.session_id = std::move(claims.token_id);
        identity.issued_at = claims.issued_at;
        identity.expires_at = claims.expires_at;
        return identity;
      });
}

void add_token_command(CLI::App& app, TokenOptions& opts) {
  CLI::App* cmd = app.add_subcommand("token", "Mint a session token for one lexicon group and print it");
  cmd->add_option("--group", opts.group, "Lexicon NSID group, e.g. xyz.groundmist.library")->required();
  cmd->add_option("--ttl", opts.ttl, "Lifetime: 90s, 15m, 12h (default), 30d, 2w");
  cmd->add_option("--data", opts.common.data_dir, "Data folder holding the key (env DATA_DIR, default .data)");
  cmd->callback([&opts] { opts.exit_code = mint(opts); });
}

}  // namespace gm::cli
