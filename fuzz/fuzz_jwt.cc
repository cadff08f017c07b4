// Fuzzes the atproto parsers of untrusted text (src/atproto/): the input is tried as a
// compact JWT, a service-auth token (claims, then the signature against a fixed key), a
// DID document, a DPoP proof, an access token, a DID and a key. Nothing may crash, and
// what is accepted must be consistent with what each parser promises.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "atproto/did.h"
#include "atproto/dpop.h"
#include "atproto/jwt.h"
#include "atproto/keys.h"
#include "atproto/service_auth.h"

namespace {

using namespace gm::atproto;

constexpr int64_t kNow = 1767225605;  // the vectors' T + 5
constexpr std::string_view kOwner = "did:plc:torlb4mwutoyjwu4svnruovp";

const PublicKey& owner_key() {
  static const PublicKey key = *parse_multikey("zQ3shjFzbu4xx6u5bP5TYXDcGNxFNq2Y5NztNNkprCb3yN9Ka");
  return key;
}

const ServiceAuthPolicy& policy() {
  static const ServiceAuthPolicy p = [] {
    ServiceAuthPolicy p;
    p.owner_did = std::string(kOwner);
    p.audiences = default_service_audiences("sync.groundmist.test");
    return p;
  }();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto jwt = parse_compact_jwt(text);
  if (jwt.ok()) {
    if (!jwt->header.is_object() || !jwt->payload.is_object()) std::abort();
    if (jwt->signing_input != text.substr(0, text.rfind('.'))) std::abort();
  }

  auto token = check_service_auth_claims(text, policy(), kNow);
  if (token.ok()) {
    if (!jwt.ok() || token->iss != kOwner || token->exp < token->iat) std::abort();
    (void)verify_service_auth_signature(*token, owner_key());
  }

  auto doc = parse_did_document(text, kOwner);
  if (doc.ok()) {
    if (doc->id != kOwner || doc->atproto_key.has_value() == !doc->atproto_key_error.empty()) std::abort();
    if (auto key = atproto_signing_key(*doc); key.ok()) (void)multikey(*key);
  }

  auto proof = verify_dpop_proof(text, "POST", "https://sync.groundmist.test/authenticate", "access-token", kNow);
  if (proof.ok() && (proof->jkt.empty() || proof->jti.empty())) std::abort();
  (void)read_access_token_claims(text);

  if (is_atproto_did(text)) {
    if (!is_did(text) || !did_document_url(text, kDefaultPlcUrl).ok()) std::abort();
  }
  if (auto key = parse_did_key(text); key.ok()) {
    if (parse_did_key(did_key(*key)).value() != *parse_sec1(key->curve, compressed_point(*key))) std::abort();
  }
  (void)parse_legacy_multibase(Curve::kP256, text);
  return 0;
}
