#include "cli/token_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
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
  // The scopes the owner granted to this name (`grants add --subject token:NAME`), and
  // those asked for now, under a grant made for this token.
  std::vector<auth::Scope> carried;
  auto standing = (*store)->standing_grants("token:" + opts.name, claims.issued_at);
  if (!standing.ok()) return fail(standing.error().message);
  for (const auth::GrantRecord& g : *standing) {
    for (auth::Scope s : g.scopes) {
      s.grant_id = g.id;
      carried.push_back(std::move(s));
    }
    if (g.expires_at) claims.expires_at = std::min(claims.expires_at, *g.expires_at);
  }
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
    for (auth::Scope& s : added->scopes) {
      s.grant_id = added->id;
      carried.push_back(s);
    }
    claims.grant_id = added->id;
    std::cerr << "grant " << added->id << " (`groundmist-sync grants revoke " << added->id << "` withdraws it)\n";
  }
  if (!carried.empty()) {
    claims.extra["scp"] = auth::encode_scope_claim(carried);
    if (claims.extra["scp"].size() > auth::kMaxScopeClaimBytes) {
      return fail("too many scopes for one token (their claim passes " + std::to_string(auth::kMaxScopeClaimBytes) +
                  " bytes)");
    }
  }
  auth::SessionRecord session;
  session.id = claims.token_id;
  session.group = claims.group;
  session.subject = carried.empty() ? "" : "token:" + opts.name;
  session.kind = "local";
  session.created_at = claims.issued_at;
  session.expires_at = claims.expires_at;
  if (Status s = (*store)->add_session(session); !s.ok()) return fail(s.error().message);
  std::cout << auth::mint_session_token(*key, claims) << "\n";
  return 0;
}

}  // namespace

namespace {

// A token checked (signature, expiry, revocation, owner), with the scopes it carries and
// which of them stand now.
struct CheckedToken {
  auth::SessionClaims claims;
  std::vector<auth::Scope> carried, standing;
};
using TokenCheck = std::function<Result<CheckedToken>(std::string_view token)>;

TokenCheck make_token_check(auth::TokenKey key, const server::ServerConfig& config,
                            auth::RevocationWatcher* revocations) {
  return [key = std::move(key), owner = config.owner_did, revocations](std::string_view token) -> Result<CheckedToken> {
    CheckedToken t;
    GM_ASSIGN_OR_RETURN(t.claims, auth::verify_session_token(key, token));
    auto state = revocations ? revocations->current() : std::make_shared<const auth::RevocationState>();
    if (state->revoked(t.claims.token_id, t.claims.issued_at)) {
      return error("session " + t.claims.token_id + " was revoked by the owner");
    }
    if (!owner.empty() && t.claims.owner_did && *t.claims.owner_did != owner) {
      return error("token was issued to " + *t.claims.owner_did + ", not to the owner " + owner);
    }
    if (auto scp = t.claims.extra.find("scp"); scp != t.claims.extra.end()) {
      GM_ASSIGN_OR_RETURN(t.carried, auth::decode_scope_claim(scp->second));
      const int64_t now = auth::unix_now();
      for (const auth::Scope& s : t.carried) {
        if (state->grant_stands(s.grant_id, now)) {
          t.standing.push_back(s);
        } else if (revocations && !state->standing_grants.count(s.grant_id)) {
          revocations->poke();  // approved a moment ago, most likely: look now
        }
      }
    }
    return t;
  };
}

}  // namespace

ClaimsVerifier make_claims_verifier(auth::TokenKey key, const server::ServerConfig& config,
                                    auth::RevocationWatcher* revocations) {
  return [check = make_token_check(std::move(key), config, revocations)](
             std::string_view token) -> Result<auth::SessionClaims> {
    GM_ASSIGN_OR_RETURN(CheckedToken t, check(token));
    // The scopes that count are those whose grant stands (api/access.h reads them here).
    if (t.standing.empty()) {
      t.claims.extra.erase("scp");
    } else {
      t.claims.extra["scp"] = auth::encode_scope_claim(t.standing);
    }
    return std::move(t.claims);
  };
}

Result<server::TokenVerifier> make_session_verifier(const server::ServerConfig& config,
                                                    auth::RevocationWatcher* revocations) {
  GM_ASSIGN_OR_RETURN(auth::TokenKey key, auth::load_token_key(config.data_dir, configured_secret(config)));
  spdlog::info("session tokens: key from {}", key.source());
  return server::TokenVerifier(
      [check = make_token_check(std::move(key), config, revocations)](
          std::string_view token) -> Result<server::PeerIdentity> {
        GM_ASSIGN_OR_RETURN(CheckedToken t, check(token));
        server::PeerIdentity identity;
        for (const auth::Scope& s : t.carried) {
          if (std::find(identity.grants.begin(), identity.grants.end(), s.grant_id) == identity.grants.end()) {
            identity.grants.push_back(s.grant_id);
          }
        }
        for (const auth::Scope& s : t.standing) identity.scopes.push_back(auth::to_string(s));
        identity.group = std::move(t.claims.group);
        identity.subject = t.claims.owner_did.value_or("");
        identity.session_id = std::move(t.claims.token_id);
        identity.issued_at = t.claims.issued_at;
        identity.expires_at = t.claims.expires_at;
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
