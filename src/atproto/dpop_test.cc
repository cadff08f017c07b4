#include "atproto/dpop.h"

#include <gtest/gtest.h>

#include "atproto/jwt.h"
#include "atproto/keys.h"
#include "atproto/testing.h"
#include "util/base64url.h"
#include "util/sha256.h"

namespace gm::atproto {
namespace {

using testing::TestSigner;

constexpr int64_t kNow = 1767225600;
const std::string kUrl = "https://sync.groundmist.test/authenticate";
const std::string kAccessToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkaWQ6cGxjOngifQ.c2lnbmF0dXJl";

std::string ath_of(std::string_view token) {
  Sha256Digest d = sha256(as_bytes(token));
  return base64url_encode(ByteView(d.data(), d.size()));
}

nlohmann::json header_for(const TestSigner& s) {
  return {{"typ", "dpop+jwt"}, {"alg", std::string(jwt_alg(s.curve()))}, {"jwk", s.public_jwk()}};
}

nlohmann::json payload() {
  return {{"iat", kNow}, {"jti", "h6d6zyp9b7k"}, {"htm", "POST"}, {"htu", kUrl}, {"ath", ath_of(kAccessToken)}};
}

std::string verify_error(const std::string& proof, std::string_view method = "POST", std::string_view url = kUrl,
                         std::string_view token = kAccessToken, int64_t now = kNow) {
  auto r = verify_dpop_proof(proof, method, url, token, now);
  return r.ok() ? "" : r.error().message;
}

class Dpop : public ::testing::TestWithParam<Curve> {
 protected:
  TestSigner signer_ = TestSigner::generate(GetParam());
};

TEST_P(Dpop, Accepts) {
  std::string proof = signer_.sign_jwt(header_for(signer_), payload());
  auto r = verify_dpop_proof(proof, "POST", kUrl, kAccessToken, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->jkt, jwk_thumbprint(signer_.public_jwk()).value());
  EXPECT_EQ(r->jti, "h6d6zyp9b7k");
  EXPECT_EQ(r->iat, kNow);
  // Clock skew up to the leeway, a nonce, and URL spellings that name the same resource.
  nlohmann::json p = payload();
  p["nonce"] = "server-nonce";
  p["iat"] = kNow - 60;
  EXPECT_EQ(verify_error(signer_.sign_jwt(header_for(signer_), p)), "");
  p["iat"] = kNow + 60;
  EXPECT_EQ(verify_error(signer_.sign_jwt(header_for(signer_), p)), "");
  p["htu"] = "HTTPS://Sync.Groundmist.Test:443/authenticate";
  EXPECT_EQ(verify_error(signer_.sign_jwt(header_for(signer_), p)), "");
  EXPECT_EQ(verify_error(signer_.sign_jwt(header_for(signer_), payload()), "POST", kUrl + "?x=1#f"), "");
}

TEST_P(Dpop, ClaimMismatches) {
  struct Case {
    const char* what;
    const char* key;
    nlohmann::json value;
    const char* expect;
  };
  const Case cases[] = {
      {"htm", "htm", "GET", "htm"},
      {"htm case", "htm", "post", "htm"},
      {"htu path", "htu", "https://sync.groundmist.test/other", "htu"},
      {"htu host", "htu", "https://evil.example/authenticate", "htu"},
      {"htu scheme", "htu", "http://sync.groundmist.test/authenticate", "htu"},
      {"htu port", "htu", "https://sync.groundmist.test:8443/authenticate", "htu"},
      {"htu not url", "htu", "sync.groundmist.test/authenticate", "htu"},
      {"htu number", "htu", 5, "htu"},
      {"ath other token", "ath", ath_of("another token"), "ath does not match"},
      {"ath number", "ath", 1, "ath missing"},
      {"iat too old", "iat", kNow - 61, "too old"},
      {"iat too new", "iat", kNow + 61, "iat in the future"},
      {"iat float", "iat", 1767225600.5, "iat missing"},
      {"iat string", "iat", "1767225600", "iat missing"},
      {"jti empty", "jti", "", "jti missing"},
      {"jti long", "jti", std::string(257, 'j'), "jti longer"},
      {"nonce number", "nonce", 3, "nonce"},
  };
  for (const Case& c : cases) {
    nlohmann::json p = payload();
    p[c.key] = c.value;
    std::string message = verify_error(signer_.sign_jwt(header_for(signer_), p));
    EXPECT_NE(message.find(c.expect), std::string::npos) << c.what << ": \"" << message << "\"";
    EXPECT_EQ(message.rfind("DPoP proof refused: ", 0), 0u) << message;
  }
  for (const char* key : {"htm", "htu", "iat", "jti", "ath"}) {
    nlohmann::json p = payload();
    p.erase(key);
    EXPECT_NE(verify_error(signer_.sign_jwt(header_for(signer_), p)), "") << key;
  }
  // Same proof, different request.
  std::string proof = signer_.sign_jwt(header_for(signer_), payload());
  EXPECT_NE(verify_error(proof, "GET").find("htm"), std::string::npos);
  EXPECT_NE(verify_error(proof, "POST", "https://sync.groundmist.test/authenticate/x").find("htu"), std::string::npos);
  EXPECT_NE(verify_error(proof, "POST", kUrl, "other-token").find("ath"), std::string::npos);
  EXPECT_NE(verify_error(proof, "POST", kUrl, kAccessToken, kNow + 61).find("too old"), std::string::npos);
  EXPECT_NE(verify_error(proof, "POST", kUrl, kAccessToken, kNow - 61).find("future"), std::string::npos);
}

TEST_P(Dpop, HeaderAndSignatureFailures) {
  nlohmann::json h = header_for(signer_);
  h["typ"] = "JWT";
  EXPECT_NE(verify_error(signer_.sign_jwt(h, payload())).find("typ must be \"dpop+jwt\""), std::string::npos);
  h.erase("typ");
  EXPECT_NE(verify_error(signer_.sign_jwt(h, payload())).find("typ"), std::string::npos);

  h = header_for(signer_);
  h["alg"] = GetParam() == Curve::kP256 ? "ES256K" : "ES256";
  EXPECT_NE(verify_error(signer_.sign_jwt(h, payload())).find("does not match the jwk's curve"), std::string::npos);
  for (const char* alg : {"none", "HS256", "RS256", "EdDSA"}) {
    h["alg"] = alg;
    EXPECT_NE(verify_error(signer_.sign_jwt(h, payload())).find("not accepted"), std::string::npos) << alg;
  }

  h = header_for(signer_);
  h["jwk"]["d"] = base64url_encode(Bytes(32, 3));
  EXPECT_NE(verify_error(signer_.sign_jwt(h, payload())).find("private key"), std::string::npos);
  h.erase("jwk");
  EXPECT_NE(verify_error(signer_.sign_jwt(h, payload())).find("no jwk"), std::string::npos);
  h["jwk"] = "not an object";
  EXPECT_NE(verify_error(signer_.sign_jwt(h, payload())), "");

  // Signed by another key than the jwk it carries.
  TestSigner other = TestSigner::generate(GetParam());
  EXPECT_NE(verify_error(other.sign_jwt(header_for(signer_), payload())).find("bad signature"), std::string::npos);

  // Tampered payload: signature of the original.
  std::string proof = signer_.sign_jwt(header_for(signer_), payload());
  nlohmann::json changed = payload();
  changed["htu"] = "https://sync.groundmist.test/authenticate2";
  std::string tampered = proof.substr(0, proof.find('.') + 1) + base64url_encode(as_bytes(changed.dump())) +
                         proof.substr(proof.rfind('.'));
  EXPECT_NE(verify_error(tampered, "POST", "https://sync.groundmist.test/authenticate2").find("bad signature"),
            std::string::npos);

  std::string high = signer_.sign_jwt(header_for(signer_), payload(), /*high_s=*/true);
  EXPECT_NE(verify_error(high).find("high-S signature"), std::string::npos);

  std::string der = proof.substr(0, proof.rfind('.') + 1) + base64url_encode(Bytes(70, 0x30));
  EXPECT_NE(verify_error(der).find("signature is not 64 bytes (DER?)"), std::string::npos);
}

TEST_P(Dpop, MalformedInput) {
  std::string proof = signer_.sign_jwt(header_for(signer_), payload());
  for (size_t cut = 0; cut < proof.size(); cut += 7) EXPECT_NE(verify_error(proof.substr(0, cut)), "") << cut;
  EXPECT_NE(verify_error(proof + "A"), "");
  EXPECT_NE(verify_error(std::string(kMaxJwtLength + 1, 'e')).find("longer than"), std::string::npos);
  EXPECT_NE(verify_error("{}.{}.{}").find("malformed"), std::string::npos);
  std::string not_json = base64url_encode(as_bytes("dpop")) + proof.substr(proof.find('.'));
  EXPECT_NE(verify_error(not_json).find("not a JSON object"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Curves, Dpop, ::testing::Values(Curve::kP256, Curve::kSecp256k1),
                         [](const auto& info) { return info.param == Curve::kP256 ? "P256" : "Secp256k1"; });

TEST(DpopHtu, Normalisation) {
  EXPECT_EQ(normalize_htu("https://Host.Example:443/a/b?q=1#f"), "https://host.example/a/b");
  EXPECT_EQ(normalize_htu("http://host:80"), "http://host/");
  EXPECT_EQ(normalize_htu("http://localhost:3031/authenticate"), "http://localhost:3031/authenticate");
  EXPECT_EQ(normalize_htu("https://host:4430/x"), "https://host:4430/x");
  EXPECT_EQ(normalize_htu("ftp://host/x"), std::nullopt);
  EXPECT_EQ(normalize_htu("https:///x"), std::nullopt);
  EXPECT_EQ(normalize_htu("/authenticate"), std::nullopt);
}

std::string fake_access_token(const nlohmann::json& payload) {
  nlohmann::json header = {{"typ", "at+jwt"}, {"alg", "HS256"}};
  return base64url_encode(as_bytes(header.dump())) + "." + base64url_encode(as_bytes(payload.dump())) + "." +
         base64url_encode(Bytes(32, 9));
}

TEST(AccessToken, ReadsClaimsWithoutVerifying) {
  std::string token = fake_access_token({{"sub", "did:plc:torlb4mwutoyjwu4svnruovp"},
                                         {"exp", kNow + 3600},
                                         {"cnf", {{"jkt", "abc"}}},
                                         {"aud", "did:web:pds.example"},
                                         {"scope", "atproto transition:generic"}});
  auto c = read_access_token_claims(token);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->sub, "did:plc:torlb4mwutoyjwu4svnruovp");
  EXPECT_EQ(c->exp, kNow + 3600);
  EXPECT_EQ(c->cnf_jkt, "abc");

  auto wrong_types = read_access_token_claims(fake_access_token({{"sub", 5}, {"exp", "soon"}, {"cnf", "x"}}));
  ASSERT_TRUE(wrong_types.has_value());
  EXPECT_EQ(wrong_types->sub, std::nullopt);
  EXPECT_EQ(wrong_types->exp, std::nullopt);
  EXPECT_EQ(wrong_types->cnf_jkt, std::nullopt);

  // Opaque tokens (pre-0.7 oauth-provider ids) and garbage are not JWTs.
  EXPECT_EQ(read_access_token_claims("tok-0123456789abcdef"), std::nullopt);
  EXPECT_EQ(read_access_token_claims(""), std::nullopt);
  EXPECT_EQ(read_access_token_claims("a.b.c"), std::nullopt);
  EXPECT_EQ(read_access_token_claims(std::string(kMaxJwtLength + 1, 'a')), std::nullopt);
}

}  // namespace
}  // namespace gm::atproto
