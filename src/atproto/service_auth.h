// atproto inter-service auth tokens (com.atproto.server.getServiceAuth), checked under
// the strict policy of spec/atproto.md §2a "Recommended strict check order" and §2d
// (vectors: spec/vectors/atproto/vectors.json, meta.strict_policy).
//
// Token: a compact JWS (jwt.h), header {"typ":"JWT","alg":"ES256K"|"ES256","kid"?:"#atproto"},
// payload {"iss":<account DID>,"aud":<our DID[#groundmist_sync]>,"lxm":<method NSID>,
// "iat":<unix s>,"exp":<unix s>,"jti":<nonce>}, signed with the account's #atproto key.
//
// The check is split in two so that the caller can fetch the owner's key (network,
// cached) in between, and never resolves any DID but the owner's:
//
//   GM_ASSIGN_OR_RETURN(ServiceAuthToken t, check_service_auth_claims(bearer, policy, now));
//   PublicKey key = …owner's #atproto key (DidDocument, cached)…;
//   Status s = verify_service_auth_signature(t, key);
//   if (!s.ok()) { …re-resolve the owner's document once, bypassing the cache (key rotation), retry… }
//   …then refuse a second use of (t.iss, t.jti) until t.exp + leeway (replay)…
//
// The reference verifier (@atproto/xrpc-server verifyJwt) is laxer; what we refuse that it
// accepts: high-S and DER signatures, kid other than #atproto, iat in the future,
// lifetimes over an hour, missing iat or jti, iss with a #fragment.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "atproto/jwt.h"
#include "atproto/keys.h"
#include "util/result.h"

namespace gm::atproto {

inline constexpr std::string_view kAuthenticateLxm = "xyz.groundmist.sync.authenticate";
// A jti is stored in the replay cache; PDSes send 32 hex characters.
inline constexpr size_t kMaxJtiLength = 256;

struct ServiceAuthPolicy {
  std::string owner_did;               // the only accepted iss
  std::vector<std::string> audiences;  // accepted aud values (default_service_audiences() in did.h)
  std::string lxm = std::string(kAuthenticateLxm);
  int64_t leeway_seconds = 30;          // clock skew allowed on exp and iat
  int64_t max_lifetime_seconds = 3600;  // exp - iat; PDSes issue at most an hour
};

struct ServiceAuthToken {
  CompactJwt jwt;
  std::string alg, iss, aud, lxm, jti;
  int64_t iat = 0, exp = 0;
};

// Every check that needs no key, in the recommended order: form, alg (ES256K / ES256),
// typ (absent or JWT), kid (absent or #atproto), no crit, iss a bare DID, aud accepted, lxm,
// iat/exp integers and jti present, expiry / iat not in the future / lifetime, and last
// iss == policy.owner_did. The first failing check names itself in the error.
Result<ServiceAuthToken> check_service_auth_claims(std::string_view token, const ServiceAuthPolicy& policy,
                                                   int64_t now);

// alg must be the key's curve's; then the signature over the token's signing input
// (verify_ecdsa_sha256: 64 bytes, low-S).
Status verify_service_auth_signature(const ServiceAuthToken& token, const PublicKey& key);

}  // namespace gm::atproto
