#include "auth/authenticator.h"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "atproto/did.h"
#include "atproto/dpop.h"
#include "atproto/service_auth.h"
#include "repo/document_id.h"
#include "storage/group_registry.h"
#include "util/text.h"

namespace gm::auth {
namespace {

constexpr size_t kMaxAutomergeUrl = 256;
constexpr size_t kMaxTrackedAddresses = 10000;

// A header parameter value: no quotes, backslashes or control characters.
std::string header_safe(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f || c == '"' || c == '\\') ? ' ' : c;
  }
  return out;
}

bool is_loopback_name(std::string_view host) {
  const std::string_view name = host.substr(0, host.rfind(':') == std::string_view::npos ? host.size() : host.rfind(':'));
  return name == "localhost" || name == "127.0.0.1" || name == "[::1]";
}

// "Scheme rest" → rest, if the scheme matches (case-insensitively, RFC 9110 §11.1).
std::optional<std::string> credential_after(std::string_view header, std::string_view scheme) {
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != std::tolower(static_cast<unsigned char>(scheme[i]))) {
      return std::nullopt;
    }
  }
  std::string_view rest = header.substr(scheme.size() + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  return std::string(rest);
}

std::string approval_message(const std::string& code) {
  return "this device is not approved yet: the owner runs `groundmist-sync devices approve " + code +
         "` on the server";
}

}  // namespace

std::string limiter_key(std::string_view address) {
  // IPv6: one /64 is one subscriber (anyone holding one has 2^64 addresses).
  in6_addr v6{};
  const std::string text(address);
  if (text.find(':') != std::string::npos && ::inet_pton(AF_INET6, text.c_str(), &v6) == 1 &&
      !IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memset(v6.s6_addr + 8, 0, 8);
    char buf[INET6_ADDRSTRLEN];
    if (::inet_ntop(AF_INET6, &v6, buf, sizeof buf)) return std::string(buf) + "/64";
  }
  return text;
}

std::string public_origin(std::string_view public_host) {
  return (is_loopback_name(public_host) ? "http://" : "https://") + std::string(public_host);
}

Status validate_automerge_url(std::string_view url) {
  constexpr std::string_view kScheme = "automerge:";
  if (url.size() > kMaxAutomergeUrl) return error("longer than " + std::to_string(kMaxAutomergeUrl) + " characters");
  if (url.substr(0, kScheme.size()) != kScheme) return error("does not start with \"automerge:\"");
  if (Status s = repo::validate_document_id(url.substr(kScheme.size())); !s.ok()) {
    return error("not an automerge URL: " + s.error().message);
  }
  return Status::Ok();
}

Authenticator::Authenticator(AuthenticatorOptions options, StateStore& store, TokenKey key, OwnerKeySource owner_key)
    : options_(std::move(options)), store_(store), key_(std::move(key)), owner_key_(std::move(owner_key)) {}

Authenticator::Bucket& Authenticator::refill(Bucket& b, int64_t now) const {
  const int64_t full = int64_t{options_.failure_burst} * 1000;
  // A clock that steps back refills nothing (and takes nothing).
  const int64_t elapsed = std::max<int64_t>(0, now - b.at);
  b.milli_tokens = std::min(full, b.milli_tokens + elapsed * 1000 / std::max<int64_t>(1, options_.failure_refill_seconds));
  b.at = std::max(b.at, now);
  return b;
}

int64_t Authenticator::failure_wait(const std::string& address, int64_t now) {
  std::lock_guard lock(limiter_mutex_);
  auto it = buckets_.find(address);
  if (it == buckets_.end()) return 0;
  Bucket& b = refill(it->second, now);
  if (b.milli_tokens >= 1000) return 0;
  return std::max<int64_t>(1, (1000 - b.milli_tokens) * options_.failure_refill_seconds / 1000);
}

bool Authenticator::count_failure(const std::string& address, int64_t now) {
  std::lock_guard lock(limiter_mutex_);
  const int64_t full = int64_t{options_.failure_burst} * 1000;
  if (buckets_.size() >= kMaxTrackedAddresses && !buckets_.count(address)) {
    // Forget the addresses whose allowance has come back (they are no different from
    // new ones); if every one is still limited, forget the first.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      it = refill(it->second, now).milli_tokens >= full ? buckets_.erase(it) : std::next(it);
    }
    if (buckets_.size() >= kMaxTrackedAddresses) buckets_.erase(buckets_.begin());
  }
  auto [it, fresh] = buckets_.try_emplace(address, Bucket{full, now});
  Bucket& b = fresh ? it->second : refill(it->second, now);
  const bool was_allowed = b.milli_tokens >= 1000;
  b.milli_tokens = std::max<int64_t>(0, b.milli_tokens - 1000);
  return was_allowed && b.milli_tokens < 1000;
}

bool Authenticator::take_pending_allowance(const std::string& key, int64_t now) {
  std::lock_guard lock(limiter_mutex_);
  std::erase_if(pending_by_address_, [now](const auto& kv) { return kv.second.second + kPendingDeviceSeconds < now; });
  if (pending_by_address_.size() >= kMaxTrackedAddresses && !pending_by_address_.count(key)) return false;
  auto& [count, since] = pending_by_address_.try_emplace(key, 0, now).first->second;
  if (count >= kPendingPerAddress) return false;
  ++count;
  return true;
}

namespace {

// The subject of a browser app: "origin:" + its Origin, taken whole or not at all. An
// Origin that is long, not printable ASCII, or "null" (sandboxed frames, file: pages:
// any such page sends it) names no app.
std::string origin_subject(std::string_view origin) {
  if (origin.empty() || origin.size() > 300 || origin == "null") return "";  // 300: scheme, 253-byte host, port
  for (char c : origin) {
    if (c <= 0x20 || c >= 0x7f) return "";
  }
  return "origin:" + std::string(origin);
}

}  // namespace

LoginResponse Authenticator::login(const LoginRequest& req, int64_t now) {
  // An address past its failure allowance is still heard: a credential that verifies
  // from the cache gets in (the owner behind the same proxy as an attacker, say), but
  // nothing is fetched or recorded for it, and every refusal is a 429.
  const std::string limiter = limiter_key(req.address);
  const int64_t wait = failure_wait(limiter, now);
  const bool limited = wait > 0;
  const std::string origin = printable(req.origin, 256);
  auto refuse = [&](int status, std::string code, std::string message, std::string device = "",
                    bool counts = true) {
    LoginResponse r;
    if (limited && (status == 400 || status == 401)) {
      spdlog::debug("authenticate from {} ({}): 429 (rate-limited): {}", req.address, origin, message);
      r.status = 429;
      r.retry_after = wait;
      r.body = {{"error", "rate_limited"},
                {"message", "too many failed attempts from this address; try again in " + std::to_string(wait) +
                                " s (this attempt: " + message + ")"}};
      return r;
    }
    spdlog::warn("authenticate from {} ({}): {} {}: {}", req.address, origin.empty() ? "no origin" : origin, status,
                 code, message);
    if ((status == 400 || status == 401) && counts && count_failure(limiter, now)) {
      spdlog::warn("authenticate: {} failed {} times in a row: its attempts are refused (429) unless they "
                   "verify, until its allowance comes back (one every {} s)",
                   limiter, options_.failure_burst, options_.failure_refill_seconds);
    }
    r.status = status;
    r.body = {{"error", code}, {"message", message}};
    if (!device.empty()) r.body["device"] = device;
    if (status == 401) {
      const bool dpop = credential_after(req.authorization, "DPoP").has_value();
      r.www_authenticate = std::string(dpop ? "DPoP" : "Bearer") + " error=\"" + header_safe(code) +
                           "\", error_description=\"" + header_safe(message) + "\"";
      if (dpop) r.www_authenticate += ", algs=\"ES256 ES256K\"";
    }
    return r;
  };

  // The body first: a malformed request is the app's bug, whatever its credential.
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) return refuse(400, "invalid_request", "the body is not a JSON object");
  auto group_field = body.find("lexiconAuthorityDomain");
  if (group_field == body.end() || !group_field->is_string()) {
    return refuse(400, "invalid_request", "lexiconAuthorityDomain (a lexicon NSID group, e.g. "
                                          "xyz.groundmist.library) is missing or not a string");
  }
  const std::string group = group_field->get<std::string>();
  if (Status s = storage::validate_group_name(group); !s.ok()) {
    return refuse(400, "invalid_request", "lexiconAuthorityDomain: " + s.error().message);
  }
  std::string root_url;
  if (auto root = body.find("rootDocUrl"); root != body.end() && !root->is_null()) {
    if (!root->is_string()) return refuse(400, "invalid_request", "rootDocUrl must be a string or null");
    root_url = root->get<std::string>();
    if (Status s = validate_automerge_url(root_url); !s.ok()) {
      return refuse(400, "invalid_request", "rootDocUrl: " + s.error().message);
    }
  }

  std::vector<Scope> asked;
  if (auto scopes = body.find("scopes"); scopes != body.end() && !scopes->is_null()) {
    if (!scopes->is_array() || scopes->size() > kMaxRequestedScopes) {
      return refuse(400, "invalid_request",
                    "scopes must be an array of at most " + std::to_string(kMaxRequestedScopes) +
                        " entries, each \"NSID:read\", \"NSID:write\" or {\"nsid\": NSID, \"access\": \"read\" | \"write\"}");
    }
    for (const nlohmann::json& entry : *scopes) {
      Result<Scope> scope = error("scopes: each entry is \"NSID:access\" or {\"nsid\", \"access\"}");
      if (entry.is_string()) {
        scope = parse_scope(entry.get<std::string>());
      } else if (entry.is_object() && entry.contains("nsid") && entry["nsid"].is_string() && entry.contains("access") &&
                 entry["access"].is_string()) {
        scope = parse_scope(entry["nsid"].get<std::string>() + ":" + entry["access"].get<std::string>());
      }
      if (!scope.ok()) return refuse(400, "invalid_request", "scopes: " + scope.error().message);
      asked.push_back(std::move(*scope));
    }
  }

  if (options_.owner_did.empty()) {
    return refuse(401, "no_owner", "this server has no owner configured (ATPROTO_DID or --owner); it accepts only "
                                   "tokens minted on its machine with `groundmist-sync token`");
  }
  Checked checked;
  if (auto bearer = credential_after(req.authorization, "Bearer")) {
    checked = check_service_auth(*bearer, now, limited);
  } else if (auto dpop = credential_after(req.authorization, "DPoP")) {
    checked = check_dpop(req, group, *dpop, now, limited);
  } else {
    return refuse(401, "invalid_token",
                  req.authorization.empty()
                      ? "no Authorization header: send `Bearer <service-auth JWT>` from "
                        "com.atproto.server.getServiceAuth"
                      : "Authorization must be `Bearer <service-auth JWT>` (or `DPoP <token>` when enabled)");
  }
  if (auto* refusal = std::get_if<Refusal>(&checked)) {
    return refuse(refusal->status, refusal->code, refusal->message, refusal->device, refusal->counts);
  }
  const Granted& granted = std::get<Granted>(checked);

  SessionClaims claims = new_session_claims(group, options_.session_ttl_seconds, now);
  claims.owner_did = granted.subject;
  // Scopes beyond the group: those a standing grant of this app allows go into the
  // token; the others wait for the owner as one request (docs/grants.md).
  const std::string app = granted.device.empty() ? origin_subject(req.origin) : "device:" + granted.device;
  nlohmann::json scope_answer;
  if (!asked.empty()) {
    auto decided = decide_scopes(app, group, asked, origin, printable(req.user_agent, 256), now);
    if (!decided.ok()) {
      spdlog::error("authenticate: scopes: {}", decided.error().message);
      return refuse(500, "server_error", "the server could not record the scope request; see its log");
    }
    scope_answer = decided->answer;
    if (!decided->granted.empty()) {
      claims.extra["scp"] = encode_scope_claim(decided->granted);
      claims.grant_id = decided->granted.front().grant_id;
      if (decided->expires_at) claims.expires_at = std::min(claims.expires_at, *decided->expires_at);
    }
  }
  const std::string token = mint_session_token(key_, claims);
  SessionRecord session;
  session.id = claims.token_id;
  session.group = group;
  session.subject = granted.subject;
  session.kind = granted.kind;
  session.created_at = now;
  session.expires_at = claims.expires_at;
  session.origin = origin;
  session.user_agent = printable(req.user_agent, 256);
  session.address = req.address;
  session.device = granted.device;
  if (Status s = store_.add_session(session); !s.ok()) {
    spdlog::error("authenticate: cannot record the session: {}", s.error().message);
    return refuse(500, "server_error", "the server could not record the session; see its log");
  }
  auto root = store_.root_doc_first_wins(group, root_url, now);
  if (!root.ok()) {
    spdlog::error("authenticate: root document of {}: {}", group, root.error().message);
    return refuse(500, "server_error", "the server could not read the root document; see its log");
  }
  spdlog::info("authenticate from {} ({}): session {} for group {} ({}), expires {}", req.address,
               origin.empty() ? "no origin" : origin, session.id, group, granted.kind,
               iso8601_utc(claims.expires_at));
  LoginResponse r;
  r.body = {{"result", "OK"},
            {"token", token},
            {"rootDocUrl", root->has_value() ? nlohmann::json(**root) : nlohmann::json(nullptr)},
            {"expiresAt", iso8601_utc(claims.expires_at)}};
  if (!scope_answer.is_null()) r.body["scopes"] = scope_answer;
  return r;
}

Result<Authenticator::ScopeDecision> Authenticator::decide_scopes(const std::string& app, const std::string& group,
                                                                  const std::vector<Scope>& asked,
                                                                  const std::string& origin,
                                                                  const std::string& user_agent, int64_t now) {
  ScopeDecision d;
  nlohmann::json granted = nlohmann::json::array(), pending = nlohmann::json::array();
  std::vector<Scope> waiting;
  std::vector<GrantRecord> standing;
  if (!app.empty()) {
    GM_ASSIGN_OR_RETURN(standing, store_.standing_grants(app, now));
  }
  for (const Scope& want : asked) {
    if (want.nsid == ascii_lower(group)) {  // its own group: always, read and write
      granted.push_back(to_string(want));
      continue;
    }
    auto allows = [&](const GrantRecord& g) {
      return std::any_of(g.scopes.begin(), g.scopes.end(), [&](const Scope& have) { return includes(have, want); });
    };
    auto found = std::find_if(standing.begin(), standing.end(), allows);
    const GrantRecord* by = found == standing.end() ? nullptr : &*found;
    if (!by) {
      waiting.push_back(want);
      pending.push_back(to_string(want));
      continue;
    }
    Scope carried = want;
    carried.grant_id = by->id;
    d.granted.push_back(carried);
    if (by->expires_at) d.expires_at = std::min(d.expires_at.value_or(*by->expires_at), *by->expires_at);
    granted.push_back(to_string(want));
  }
  // The token must stay verifiable: scopes past what its claim may hold are refused.
  nlohmann::json refused = nlohmann::json::array();
  while (encode_scope_claim(d.granted).size() > kMaxScopeClaimBytes) {
    refused.push_back(to_string(d.granted.back()));
    d.granted.pop_back();
    granted.erase(granted.end() - 1);
  }
  d.answer = {{"granted", granted}, {"pending", pending}};
  auto refuse_waiting = [&](const std::string& why) {
    for (const auto& s : d.answer["pending"]) refused.push_back(s);
    d.answer["pending"] = nlohmann::json::array();
    d.answer["refused"] = refused;
    d.answer["message"] = why;
    return d;
  };
  if (!refused.empty()) d.answer["refused"] = refused;
  if (waiting.empty()) return d;
  // Nothing says which app asks: the owner could not tell whom an approval is for.
  if (app.empty()) {
    return refuse_waiting("scopes beyond the app's own group need an Origin header (a browser app) or a DPoP device key");
  }
  // The owner said no to this app, for these scopes, within the last month.
  GM_ASSIGN_OR_RETURN(std::vector<GrantRecord> refusals, store_.refused_grants(app, now));
  const bool all_refused = std::all_of(waiting.begin(), waiting.end(), [&](const Scope& want) {
    return std::any_of(refusals.begin(), refusals.end(), [&](const GrantRecord& g) {
      return std::any_of(g.scopes.begin(), g.scopes.end(), [&](const Scope& s) { return includes(s, want); });
    });
  });
  if (all_refused) return refuse_waiting("the owner refused these scopes to this app");
  GrantRecord request;
  request.subject = app;
  request.scopes = waiting;
  request.created_at = now;
  request.origin = origin;
  request.note = user_agent;
  Result<GrantRecord> asked_for = store_.request_grant(request, options_.max_pending_grants);
  if (!asked_for.ok() && asked_for.error().code == ErrorCode::kOverLimit) {
    spdlog::warn("authenticate: {}: {}", app, asked_for.error().message);
    return refuse_waiting(asked_for.error().message);
  }
  GM_ASSIGN_OR_RETURN(GrantRecord recorded, std::move(asked_for));
  spdlog::info("authenticate: {} asks for {}: grant request {} waits for the owner (`groundmist-sync grants approve {}`)",
               app, pending.dump(), recorded.id, recorded.id);
  d.answer["request"] = recorded.id;
  return d;
}

Authenticator::Checked Authenticator::check_service_auth(const std::string& token, int64_t now, bool limited) {
  auto invalid = [](std::string message) { return Refusal{401, "invalid_token", std::move(message)}; };
  if (options_.public_host.empty()) {
    return Refusal{401, "not_configured",
                   "this server has no public host configured (--public-host or GROUNDMIST_SYNC_HOST), so it "
                   "cannot check a service-auth token's audience"};
  }
  atproto::ServiceAuthPolicy policy;
  policy.owner_did = options_.owner_did;
  const std::string did = atproto::service_did(options_.public_host);
  policy.audiences = {did + "#groundmist_sync", did};
  policy.lxm = kAuthenticateNsid;
  policy.leeway_seconds = options_.leeway_seconds;
  auto claims = atproto::check_service_auth_claims(token, policy, now);
  if (!claims.ok()) return invalid(claims.error().message);
  if (options_.revoked_before && claims->iat < options_.revoked_before()) {
    return invalid("the token was issued before the owner revoked every session; get a fresh one");
  }

  auto key = owner_key_(false);
  if (!key.ok()) {
    // The server's problem, not the client's: not counted against it, and the details
    // (the directory's address and answer) go to the log only.
    spdlog::error("authenticate: cannot get the owner's signing key: {}", key.error().message);
    return Refusal{503, "temporarily_unavailable",
                   "the server cannot reach the owner's DID document right now; try again in a minute", "",
                   /*counts=*/false};
  }
  Status verified = atproto::verify_service_auth_signature(*claims, *key);
  if (!verified.ok() && !limited) {
    // The owner may have rotated their key since we cached their DID document.
    auto fresh = owner_key_(true);
    if (fresh.ok() && fresh->sec1 != key->sec1) verified = atproto::verify_service_auth_signature(*claims, *fresh);
  }
  if (!verified.ok()) return invalid(verified.error().message);

  auto first = store_.remember_jti(claims->iss, claims->jti, claims->exp + options_.leeway_seconds, now);
  if (!first.ok()) {
    spdlog::error("authenticate: replay cache: {}", first.error().message);
    return Refusal{500, "server_error", "the server could not record the token; see its log"};
  }
  if (!*first) return invalid("service-auth token: replayed jti (each token is accepted once; get a fresh one)");
  return Granted{claims->iss, "service-auth", ""};
}

Authenticator::Checked Authenticator::check_dpop(const LoginRequest& req, const std::string& group,
                                                 const std::string& access_token, int64_t now, bool limited) {
  auto invalid = [](std::string message) { return Refusal{401, "invalid_token", std::move(message)}; };
  if (!options_.allow_oauth_dpop) {
    return invalid("OAuth access tokens (DPoP) are not accepted: they cannot be verified by this server; send a "
                   "service-auth token (com.atproto.server.getServiceAuth), or the owner may enable "
                   "--allow-oauth-dpop with device approval");
  }
  if (options_.public_host.empty()) {
    return Refusal{401, "not_configured",
                   "this server has no public host configured (--public-host), so it cannot check a DPoP proof's htu"};
  }
  if (access_token.empty() || access_token.size() > 8192) return invalid("the access token is empty or too long");
  if (req.dpop.empty()) return invalid("no DPoP header: a DPoP proof is required with a DPoP access token");
  const std::string url = public_origin(options_.public_host) + req.path;
  auto proof = atproto::verify_dpop_proof(req.dpop, "POST", url, access_token, now, options_.leeway_seconds * 2);
  if (!proof.ok()) return invalid(proof.error().message);
  if (auto claims = atproto::read_access_token_claims(access_token)) {
    if (claims->sub && *claims->sub != options_.owner_did) {
      return invalid("access token: sub " + *claims->sub + " is not the owner");
    }
    if (claims->exp && *claims->exp + options_.leeway_seconds < now) return invalid("access token: expired");
    if (claims->cnf_jkt && *claims->cnf_jkt != proof->jkt) {
      return invalid("access token: cnf.jkt is not the DPoP proof's key");
    }
  }
  if (options_.revoked_before && proof->iat < options_.revoked_before()) {
    return invalid("the DPoP proof was made before the owner revoked every session");
  }
  auto device = store_.device_for_key(proof->jkt, group);
  if (!device.ok()) {
    spdlog::error("authenticate: devices: {}", device.error().message);
    return Refusal{500, "server_error", "the server could not read its devices; see its log"};
  }
  const bool approved = device->has_value() && (*device)->status == DeviceStatus::approved;
  // From an address that failed this often only an approved device is worth a write.
  if (limited && !approved) return invalid("this device is not approved, and this address failed too often");
  auto first = store_.remember_jti("dpop:" + proof->jkt, proof->jti, proof->iat + 2 * options_.leeway_seconds + 60, now);
  if (!first.ok()) {
    spdlog::error("authenticate: replay cache: {}", first.error().message);
    return Refusal{500, "server_error", "the server could not record the proof; see its log"};
  }
  if (!*first) return invalid("DPoP proof: replayed jti (each proof is used once)");

  if (approved) {
    return Granted{options_.owner_did, "dpop", (*device)->code};
  }
  if (device->has_value() && (*device)->status == DeviceStatus::revoked) {
    return Refusal{401, "device_revoked", "the owner revoked this device (" + (*device)->code + ")"};
  }
  if (device->has_value()) {
    // Asking again while it waits: the same code, and it does not count as a failure.
    return Refusal{401, "approval_required", approval_message((*device)->code), (*device)->code, /*counts=*/false};
  }
  if (limited) return invalid("no new device is recorded for an address that failed this often");
  if (!take_pending_allowance(limiter_key(req.address), now)) {
    return invalid("this address already asked for " + std::to_string(kPendingPerAddress) +
                   " devices within the hour; ask the owner to approve those first");
  }
  DeviceRecord pending;
  pending.jkt = proof->jkt;
  pending.group = group;
  pending.origin = printable(req.origin, 256);
  pending.user_agent = printable(req.user_agent, 256);
  pending.address = req.address;
  pending.created_at = now;
  auto added = store_.add_pending_device(pending, options_.max_pending_devices);
  if (!added.ok()) {
    if (added.error().code == ErrorCode::kOverLimit) return Refusal{401, "too_many_pending", added.error().message};
    spdlog::error("authenticate: devices: {}", added.error().message);
    return Refusal{500, "server_error", "the server could not record the device; see its log"};
  }
  spdlog::warn("authenticate: new device {} for group {} from {} ({}, {}) waits for approval: "
               "`groundmist-sync devices approve {}`",
               added->code, group, req.address, added->origin.empty() ? "no origin" : added->origin,
               added->user_agent.empty() ? "no user agent" : added->user_agent, added->code);
  // A new pending device counts as a failure: anyone may ask, so asking is rate-limited.
  return Refusal{401, "approval_required", approval_message(added->code), added->code};
}

}  // namespace gm::auth
