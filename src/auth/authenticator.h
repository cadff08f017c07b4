// POST /authenticate (also /xrpc/xyz.groundmist.sync.authenticate): an app proves it acts
// for the owner and gets a session token for one lexicon group (DESIGN.md "How apps use
// it", spec/atproto.md §2a, §2b, §2d).
//
// Usage (on a worker thread: it may resolve the owner's DID over the network and it
// writes to the state database):
//   Authenticator auth(options, store, token_key, owner_key_source);
//   LoginResponse r = auth.login(request, unix_now());   // status, JSON body, headers
//
// Request body: {"lexiconAuthorityDomain": G, "rootDocUrl": "automerge:<id>" | null}.
// Answer 200: {"result": "OK", "token": T, "rootDocUrl": R | null, "expiresAt": ISO-8601}.
// Refusals: 400 (malformed body), 401 (credential), 429 (an address, or IPv6 /64, past
// its failures: still checked, but nothing is fetched or recorded for it, and a refusal
// is a 429), each {"error": code, "message": what failed and what to do} and, for 401,
// a WWW-Authenticate header. Nothing secret is ever echoed.
//
// Credentials, by the Authorization scheme:
//   Bearer <JWT>  atproto service auth minted by the owner's PDS: checked by the strict
//                 policy (atproto/service_auth.h) against the `#atproto` key of the
//                 owner's DID document; the owner's is the only DID ever resolved. A
//                 signature failure fetches the document once more (key rotation).
//                 Each (iss, jti) is accepted once (StateStore::remember_jti).
//   DPoP <token>  what today's OAuth apps send: only with allow_oauth_dpop. The access
//                 token cannot be verified by a third party, so the DPoP proof is
//                 checked in full, the token's readable claims (sub = owner, exp,
//                 cnf.jkt = proof key) are checked when it is a JWT, and the proof key
//                 must be a device the owner approved for this group
//                 (`groundmist-sync devices approve CODE`); an unknown key is recorded
//                 as pending and answered 401 approval_required with its code.
//
// rootDocUrl: the first one given for a group is kept and returned to every caller.
//
// scopes (optional, docs/grants.md): ["NSID:read" | "NSID:write" | {"nsid", "access"}, …]
// beyond the app's own group. Those a standing grant of the app (its Origin, or its
// DPoP device) allows go into the token; the rest wait for the owner as one pending
// grant request. The answer then has "scopes": {"granted": [...], "pending": [...],
// "request": grant id}; an app with neither Origin nor device gets them as "refused".
// The token still opens the app's own group either way.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "atproto/keys.h"
#include "auth/session_token.h"
#include "auth/state_store.h"
#include "util/result.h"

namespace gm::auth {

inline constexpr const char* kAuthenticateNsid = "xyz.groundmist.sync.authenticate";
// Scopes one login may ask for (those past kMaxScopeClaimBytes are answered refused).
inline constexpr size_t kMaxRequestedScopes = 32;

struct LoginRequest {
  std::string path;           // as requested: "/authenticate" or "/xrpc/xyz.groundmist.sync.authenticate"
  std::string authorization;  // the Authorization header
  std::string dpop;           // the DPoP header
  std::string origin, user_agent, address;
  std::string body;
};

struct LoginResponse {
  int status = 200;
  nlohmann::json body;
  std::string www_authenticate;  // set on 401
  int64_t retry_after = 0;       // seconds, set on 429
};

struct AuthenticatorOptions {
  std::string owner_did;    // empty: no owner, every login is refused
  std::string public_host;  // "sync.example.com" or "localhost:3031"; empty: service auth impossible
  bool allow_oauth_dpop = false;
  int64_t session_ttl_seconds = 24 * 3600;
  int64_t leeway_seconds = 30;
  // Failures one address may have in a burst, and how fast that allowance comes back.
  int failure_burst = 20;
  int64_t failure_refill_seconds = 3;
  size_t max_pending_devices = 64;
  size_t max_pending_grants = 64;
  // `sessions revoke --all` (RevocationState::revoked_before): credentials issued before
  // it are refused too, not only the sessions they opened. Unset: none.
  std::function<int64_t()> revoked_before;
};

// New devices one address (IPv6 /64) may ask for within kPendingDeviceSeconds.
inline constexpr int kPendingPerAddress = 3;

// The owner's current `#atproto` key; `refresh` bypasses any cache (after a signature
// failure). Called on the login's worker thread.
using OwnerKeySource = std::function<Result<atproto::PublicKey>(bool refresh)>;

// "https://host", or "http://host" for localhost and 127.0.0.1 (tests, development).
std::string public_origin(std::string_view public_host);
// The rate limiter's key for a client address: the address, or its /64 for IPv6.
std::string limiter_key(std::string_view address);
// "automerge:<document id>": what rootDocUrl may be.
Status validate_automerge_url(std::string_view url);

class Authenticator {
 public:
  Authenticator(AuthenticatorOptions options, StateStore& store, TokenKey key, OwnerKeySource owner_key);

  LoginResponse login(const LoginRequest& request, int64_t now);

  // Seconds to wait if the client (its limiter_key) has used up its failures, else 0.
  // Thread-safe; the server asks it before queueing a login.
  int64_t failure_wait(const std::string& key, int64_t now);

 private:
  struct Refusal {
    int status;
    std::string code;
    std::string message;
    std::string device;  // approval_required: the code the owner approves
    bool counts = true;  // against the address's failure allowance
  };
  struct Granted {
    std::string subject;
    std::string kind;
    std::string device;
  };
  using Checked = std::variant<Granted, Refusal>;
  // `limited`: the address used up its failures; check only what needs no fetch or write.
  Checked check_service_auth(const std::string& token, int64_t now, bool limited);
  Checked check_dpop(const LoginRequest& request, const std::string& group, const std::string& token, int64_t now,
                     bool limited);
  struct ScopeDecision {
    std::vector<Scope> granted;         // for the token, each with its grant
    std::optional<int64_t> expires_at;  // the first of their grants to expire
    nlohmann::json answer;              // {"granted", "pending", "request"?, "refused"?}
  };
  // What the app (`app`: "origin:…" or "device:…", empty if unknown) gets of `asked`.
  Result<ScopeDecision> decide_scopes(const std::string& app, const std::string& group, const std::vector<Scope>& asked,
                                      const std::string& origin, const std::string& user_agent, int64_t now);
  // True when this failure used up the address's allowance.
  bool count_failure(const std::string& address, int64_t now);

  AuthenticatorOptions options_;
  StateStore& store_;
  TokenKey key_;
  OwnerKeySource owner_key_;

  // Per address: failures still allowed (scaled by 1000) and when that was computed.
  struct Bucket {
    int64_t milli_tokens;
    int64_t at;
  };
  Bucket& refill(Bucket& b, int64_t now) const;
  // Counts new devices per limiter key; false past kPendingPerAddress within the hour.
  bool take_pending_allowance(const std::string& key, int64_t now);
  std::mutex limiter_mutex_;
  std::map<std::string, Bucket> buckets_;
  std::map<std::string, std::pair<int, int64_t>> pending_by_address_;  // count, first request
};

}  // namespace gm::auth
