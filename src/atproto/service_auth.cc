#include "atproto/service_auth.h"

#include <cctype>

#include "atproto/did.h"

namespace gm::atproto {

namespace {

// For messages: a claim value cut to a readable length.
std::string quote_claim(std::string_view s) { return "\"" + clip_claim(s) + "\""; }

Error refused(const std::string& why) { return error("service-auth token refused: " + why); }

}  // namespace

Result<ServiceAuthToken> check_service_auth_claims(std::string_view token, const ServiceAuthPolicy& policy,
                                                   int64_t now) {
  auto parsed = parse_compact_jwt(token);
  if (!parsed.ok()) return refused(parsed.error().message);
  ServiceAuthToken t;
  t.jwt = std::move(parsed).value();
  const nlohmann::json& header = t.jwt.header;
  const nlohmann::json& payload = t.jwt.payload;

  const std::string* alg = string_claim(header, "alg");
  if (!alg) return refused("header has no alg");
  if (ascii_lower(*alg) == "none") return refused("alg none not accepted: the token must be signed");
  if (!curve_for_jwt_alg(*alg)) return refused("alg " + quote_claim(*alg) + " not accepted (expected ES256K or ES256)");
  t.alg = *alg;

  if (header.contains("typ")) {
    const std::string* typ = string_claim(header, "typ");
    if (!typ || ascii_lower(*typ) != "jwt") {
      return refused("typ " + (typ ? quote_claim(*typ) : std::string("(not a string)")) +
                     " is not a service-auth token (expected JWT; OAuth access tokens and DPoP proofs are not "
                     "accepted here)");
    }
  }
  if (header.contains("kid")) {
    const std::string* kid = string_claim(header, "kid");
    if (!kid || *kid != "#atproto") {
      return refused("kid must be absent or \"#atproto\" (got " +
                     (kid ? quote_claim(*kid) : std::string("a non-string")) + ")");
    }
  }
  // A critical extension we do not implement must not be ignored (RFC 7515 §4.1.11).
  if (header.contains("crit")) return refused("header has crit extensions, which are not supported");

  const std::string* iss = string_claim(payload, "iss");
  if (!iss) return refused("iss missing or not a string");
  if (iss->find('#') != std::string::npos) {
    return refused("iss " + quote_claim(*iss) +
                   " must be a bare DID (no #fragment: the did#service form is deprecated)");
  }
  if (!is_did(*iss)) return refused("iss " + quote_claim(*iss) + " is not a DID");
  t.iss = *iss;

  const std::string* aud = string_claim(payload, "aud");
  if (!aud) return refused("aud missing or not a string");
  bool aud_ok = false;
  for (const std::string& a : policy.audiences) aud_ok = aud_ok || a == *aud;
  if (!aud_ok) {
    std::string accepted;
    for (const std::string& a : policy.audiences) accepted += (accepted.empty() ? "" : " or ") + quote_claim(a);
    return refused("audience " + quote_claim(*aud) + " is not this server (aud not accepted; expected " +
                   (accepted.empty() ? std::string("a configured audience") : accepted) + ")");
  }
  t.aud = *aud;

  if (!payload.contains("lxm")) return refused("lxm missing: the token must be bound to " + quote_claim(policy.lxm));
  const std::string* lxm = string_claim(payload, "lxm");
  if (!lxm || *lxm != policy.lxm) {
    return refused("lxm " + (lxm ? quote_claim(*lxm) : std::string("(not a string)")) + " is wrong: expected " +
                   quote_claim(policy.lxm));
  }
  t.lxm = *lxm;

  std::optional<int64_t> iat = time_claim(payload, "iat");
  std::optional<int64_t> exp = time_claim(payload, "exp");
  if (!exp) return refused("exp missing or not an integer time");
  if (!iat) return refused("iat missing or not an integer time");
  t.iat = *iat;
  t.exp = *exp;
  const std::string* jti = string_claim(payload, "jti");
  if (!jti || jti->empty()) return refused("jti missing (a unique token id is required against replay)");
  if (jti->size() > kMaxJtiLength) return refused("jti longer than " + std::to_string(kMaxJtiLength) + " characters");
  t.jti = *jti;

  if (now > t.exp + policy.leeway_seconds) {
    return refused("token expired " + std::to_string(now - t.exp) + " s ago; ask the PDS for a new one");
  }
  if (t.iat > now + policy.leeway_seconds) {
    return refused("iat in the future (" + std::to_string(t.iat - now) + " s ahead; check the clocks)");
  }
  if (t.exp - t.iat <= 0 || t.exp - t.iat > policy.max_lifetime_seconds) {
    return refused("lifetime exp-iat of " + std::to_string(t.exp - t.iat) + " s is out of range (1.." +
                   std::to_string(policy.max_lifetime_seconds) + ")");
  }

  if (policy.owner_did.empty() || t.iss != policy.owner_did) {
    return refused("iss " + quote_claim(t.iss) + " is not the owner of this server" +
                   (policy.owner_did.empty() ? std::string(" (no owner configured)") : " (" + policy.owner_did + ")"));
  }
  return t;
}

Status verify_service_auth_signature(const ServiceAuthToken& token, const PublicKey& key) {
  if (token.alg != jwt_alg(key.curve)) {
    return refused("alg " + token.alg + " does not match key curve: the owner's #atproto key is " +
                   std::string(curve_name(key.curve)) + " (" + std::string(jwt_alg(key.curve)) + ")");
  }
  Status s = verify_ecdsa_sha256(key, as_bytes(token.jwt.signing_input), token.jwt.signature);
  if (!s.ok()) return refused(s.error().message);
  return Status::Ok();
}

}  // namespace gm::atproto
