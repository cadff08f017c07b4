#include "atproto/dpop.h"

#include <cctype>

#include "atproto/jwt.h"
#include "atproto/keys.h"
#include "util/base64url.h"
#include "util/sha256.h"

namespace gm::atproto {

namespace {

constexpr size_t kMaxDpopJtiLength = 256;

Error refused(const std::string& why) { return error("DPoP proof refused: " + why); }

}  // namespace

std::optional<std::string> normalize_htu(std::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) return std::nullopt;
  std::string scheme = ascii_lower(url.substr(0, colon));
  if (scheme != "https" && scheme != "http") return std::nullopt;
  std::string_view rest = url.substr(colon + 3);
  size_t slash = rest.find('/');
  std::string authority = ascii_lower(rest.substr(0, slash));
  std::string path(slash == std::string_view::npos ? "/" : rest.substr(slash));
  if (authority.empty()) return std::nullopt;
  std::string_view default_port = scheme == "https" ? ":443" : ":80";
  if (authority.size() > default_port.size() &&
      authority.compare(authority.size() - default_port.size(), default_port.size(), default_port) == 0) {
    authority.resize(authority.size() - default_port.size());
  }
  return scheme + "://" + authority + path;
}

Result<DpopProof> verify_dpop_proof(std::string_view proof, std::string_view method, std::string_view url,
                                    std::string_view access_token, int64_t now, int64_t leeway_seconds) {
  auto parsed = parse_compact_jwt(proof);
  if (!parsed.ok()) return refused(parsed.error().message);
  const CompactJwt& jwt = *parsed;

  const std::string* typ = string_claim(jwt.header, "typ");
  if (!typ || ascii_lower(*typ) != "dpop+jwt") {
    return refused("typ must be \"dpop+jwt\" (got " + (typ ? "\"" + clip_claim(*typ) + "\"" : std::string("none")) + ")");
  }
  const std::string* alg = string_claim(jwt.header, "alg");
  std::optional<Curve> alg_curve = alg ? curve_for_jwt_alg(*alg) : std::nullopt;
  if (!alg_curve) {
    return refused("alg " + (alg ? "\"" + clip_claim(*alg) + "\"" : std::string("(missing)")) +
                   " not accepted (expected ES256 or ES256K)");
  }
  auto jwk = jwt.header.find("jwk");
  if (jwk == jwt.header.end()) return refused("header has no jwk");
  auto key = parse_ec_jwk(*jwk);
  if (!key.ok()) return refused(key.error().message);
  if (key->curve != *alg_curve) {
    return refused("alg " + *alg + " does not match the jwk's curve " + std::string(curve_name(key->curve)));
  }
  Status signature = verify_ecdsa_sha256(*key, as_bytes(jwt.signing_input), jwt.signature);
  if (!signature.ok()) return refused(signature.error().message);

  // Signed by the key it names from here on; now: is it for this request, now?
  const nlohmann::json& claims = jwt.payload;
  const std::string* htm = string_claim(claims, "htm");
  if (!htm || *htm != method) {
    return refused("htm " + (htm ? "\"" + clip_claim(*htm) + "\"" : std::string("(missing)")) +
                   " is not this request's method " + std::string(method));
  }
  const std::string* htu = string_claim(claims, "htu");
  std::optional<std::string> want = normalize_htu(url);
  std::optional<std::string> got = htu ? normalize_htu(*htu) : std::nullopt;
  if (!got || !want || *got != *want) {
    return refused("htu " + (htu ? "\"" + clip_claim(*htu) + "\"" : std::string("(missing)")) +
                   " is not this request's URL " + clip_claim(url));
  }
  std::optional<int64_t> iat = time_claim(claims, "iat");
  if (!iat) return refused("iat missing or not an integer time");
  if (*iat < now - leeway_seconds) {
    return refused("proof too old: iat is " + std::to_string(now - *iat) + " s ago (at most " +
                   std::to_string(leeway_seconds) + ")");
  }
  if (*iat > now + leeway_seconds) {
    return refused("iat in the future (" + std::to_string(*iat - now) + " s ahead; check the clocks)");
  }
  const std::string* jti = string_claim(claims, "jti");
  if (!jti || jti->empty()) return refused("jti missing");
  if (jti->size() > kMaxDpopJtiLength) return refused("jti longer than " + std::to_string(kMaxDpopJtiLength));
  const std::string* ath = string_claim(claims, "ath");
  Sha256Digest token_hash = sha256(as_bytes(access_token));
  if (!ath || *ath != base64url_encode(ByteView(token_hash.data(), token_hash.size()))) {
    return refused(std::string(ath ? "ath does not match" : "ath missing: the proof is not bound to") +
                   " the access token sent with it");
  }
  if (claims.contains("nonce") && !claims["nonce"].is_string()) return refused("nonce is not a string");

  DpopProof out;
  GM_ASSIGN_OR_RETURN(out.jkt, jwk_thumbprint(*jwk));
  out.jti = *jti;
  out.iat = *iat;
  return out;
}

std::optional<AccessTokenClaims> read_access_token_claims(std::string_view access_token) {
  auto jwt = parse_compact_jwt(access_token);
  if (!jwt.ok()) return std::nullopt;
  const nlohmann::json& p = jwt->payload;
  AccessTokenClaims c;
  if (const std::string* sub = string_claim(p, "sub")) c.sub = *sub;
  c.exp = time_claim(p, "exp");
  auto cnf = p.find("cnf");
  if (cnf != p.end() && cnf->is_object()) {
    if (const std::string* jkt = string_claim(*cnf, "jkt")) c.cnf_jkt = *jkt;
  }
  return c;
}

}  // namespace gm::atproto
