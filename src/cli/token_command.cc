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
  if (!opts.scopes.empty()) {
    auth::GrantRecord grant;
    grant.subject = "token:" + opts.name;
    for (const std::string& text : opts.scopes) {
      auto scope = auth::parse_scope(text);
      if (!scope.ok()) return fail("--scope: " + scope.error().message);
      grant.scopes.push_back(std::move(*scope));
    }
    grant.status = auth::GrantStatus::approved;
    grant.created_at = grant.decided_at.emplace(claims.issued_at);
    grant.expires_at = claims.expires_at;
    grant.note = "token --name " + opts.name;
    auto added = (*store)->add_grant(grant);
    if (!added.ok()) return fail(added.error().message);
    for (auth::Scope& s : added->scopes) s.grant_id = added->id;
    claims.grant_id = added->id;
    claims.extra["scp"] = auth::encode_scope_claim(added->scopes);
    std::cerr << "grant " << added->id << " (`groundmist-sync grants revoke " << added->id << "` withdraws it)\n";
  }
  auth::SessionRecord session;
  session.id = claims.token_id;
  session.group = claims.group;
  session.subject = opts.scopes.empty() ? "" : "token:" + opts.name;
  session.kind = "local";
  session.created_at = claims.issued_at;
  session.expires_at = claims.expires_at;
  if (Status s = (*store)->add_session(session); !s.ok()) return fail(s.error().message);
  std::cout << auth::mint_session_token(*key, claims) << "\n";
  return 0;
}

}  // namespace

ClaimsVerifier make_claims_verifier(auth::TokenKey key, const server::ServerConfig& config, RevocationSource revocations) {
  return [key = std::move(key), owner = config.owner_did,
          revocations = std::move(revocations)](std::string_view token) -> Result<auth::SessionClaims> {
    GM_ASSIGN_OR_RETURN(auth::SessionClaims claims, auth::verify_session_token(key, token));
    auto state = revocations ? revocations() : std::make_shared<const auth::RevocationState>();
    if (state->revoked(claims.token_id, claims.issued_at)) {
      return error("session " + claims.token_id + " was revoked by the owner");
    }
    if (!owner.empty() && claims.owner_did && *claims.owner_did != owner) {
      return error("token was issued to " + *claims.owner_did + ", not to the owner " + owner);
    }
    return claims;
  };
}

Result<server::TokenVerifier> make_session_verifier(const server::ServerConfig& config, RevocationSource revocations) {
  GM_ASSIGN_OR_RETURN(auth::TokenKey key, auth::load_token_key(config.data_dir, configured_secret(config)));
  spdlog::info("session tokens: key from {}", key.source());
  return server::TokenVerifier(
      [verify = make_claims_verifier(std::move(key), config, revocations),
       revocations](std::string_view token) -> Result<server::PeerIdentity> {
        GM_ASSIGN_OR_RETURN(auth::SessionClaims claims, verify(token));
        auto state = revocations ? revocations() : std::make_shared<const auth::RevocationState>();
        server::PeerIdentity identity;
        if (auto scp = claims.extra.find("scp"); scp != claims.extra.end()) {
          GM_ASSIGN_OR_RETURN(std::vector<auth::Scope> scopes, auth::decode_scope_claim(scp->second));
          for (const auth::Scope& s : state->standing(std::move(scopes))) {
            identity.scopes.push_back(auth::to_string(s));
            identity.grants.push_back(s.grant_id);
          }
        }
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
  cmd->add_option("--scope", opts.scopes,
                  "Also reach NSID:read or NSID:write (repeatable), under a grant made for this token");
  cmd->add_option("--name", opts.name, "Who the grant is for, shown by `grants list` (default cli)");
  cmd->add_option("--data", opts.common.data_dir, "Data folder holding the key (env DATA_DIR, default .data)");
  cmd->callback([&opts] { opts.exit_code = mint(opts); });
}

}  // namespace gm::cli
