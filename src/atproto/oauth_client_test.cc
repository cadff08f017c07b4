#include "atproto/oauth_client.h"

#include <gtest/gtest.h>

#include "atproto/dpop.h"
#include "atproto/http_test_server.h"
#include "atproto/jwt.h"
#include "atproto/keys.h"
#include "util/base64url.h"

namespace gm::atproto::oauth {
namespace {

using nlohmann::json;
using testing::TestHttpServer;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(OAuthKeys, JwsVerifiesWithTheProjectsVerifier) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok()) << key.error().message;
  for (int i = 0; i < 50; ++i) {  // about half of raw ECDSA signatures are high-S: all must come out low
    auto token = key->sign_jws({{"typ", "JWT"}}, {{"n", i}});
    ASSERT_TRUE(token.ok()) << token.error().message;
    auto jwt = parse_compact_jwt(*token);
    ASSERT_TRUE(jwt.ok()) << jwt.error().message;
    EXPECT_EQ(jwt->header.at("alg"), "ES256");
    EXPECT_EQ(jwt->payload.at("n"), i);
    ASSERT_EQ(jwt->signature.size(), 64u);
    Status v = verify_ecdsa_sha256(key->public_key(), as_bytes(jwt->signing_input), jwt->signature);
    EXPECT_TRUE(v.ok()) << v.error().message;
  }
}

TEST(OAuthKeys, PublicJwkIsTheKey) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  const json jwk = key->public_jwk();
  EXPECT_EQ(jwk.size(), 4u);  // kty, crv, x, y: never d
  auto parsed = parse_ec_jwk(jwk);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(compressed_point(*parsed), compressed_point(key->public_key()));
  auto other = SigningKey::generate();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->public_jwk(), jwk);
}

TEST(OAuthKeys, DpopProofPassesTheDpopVerifier) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  const int64_t now = 1767225600;
  auto proof = dpop_proof(*key, "POST", "https://pds.example.com/oauth/par?x=1#f", "nonce-1", now, "the-token");
  ASSERT_TRUE(proof.ok()) << proof.error().message;
  auto verified = verify_dpop_proof(*proof, "POST", "https://pds.example.com/oauth/par", "the-token", now + 1);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->jkt, *jwk_thumbprint(key->public_jwk()));
  auto jwt = parse_compact_jwt(*proof);
  ASSERT_TRUE(jwt.ok());
  EXPECT_EQ(jwt->header.at("typ"), "dpop+jwt");
  EXPECT_EQ(jwt->payload.at("htu"), "https://pds.example.com/oauth/par");
  EXPECT_EQ(jwt->payload.at("htm"), "POST");
  EXPECT_EQ(jwt->payload.at("nonce"), "nonce-1");
  EXPECT_EQ(jwt->payload.at("iat"), now);
  EXPECT_GE(jwt->payload.at("jti").get<std::string>().size(), 16u);
  // No nonce, no access token: neither claim.
  auto bare = dpop_proof(*key, "GET", "https://pds.example.com/x", "", now);
  ASSERT_TRUE(bare.ok());
  auto bare_jwt = parse_compact_jwt(*bare);
  EXPECT_FALSE(bare_jwt->payload.contains("nonce"));
  EXPECT_FALSE(bare_jwt->payload.contains("ath"));
  EXPECT_NE(bare_jwt->payload.at("jti"), jwt->payload.at("jti"));
}

// RFC 7636 appendix B.
TEST(OAuthPkce, Rfc7636AppendixB) {
  EXPECT_EQ(pkce_s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  auto v = new_pkce_verifier();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 43u);  // 32 bytes; RFC 7636 wants 43 to 128 characters
  EXPECT_TRUE(base64url_decode(*v).ok());
}

TEST(OAuthClient, LoopbackClientId) {
  ClientIdentity c = loopback_client("http://127.0.0.1:3031/console/oauth/callback");
  EXPECT_EQ(c.client_id,
            "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A3031%2Fconsole%2Foauth%2Fcallback&scope=atproto");
  EXPECT_EQ(c.redirect_uri, "http://127.0.0.1:3031/console/oauth/callback");
  AuthServerMetadata m;
  m.authorization_endpoint = "https://pds.example.com/oauth/authorize";
  EXPECT_EQ(authorization_url(m, c, "urn:ietf:params:oauth:request_uri:req-1"),
            "https://pds.example.com/oauth/authorize?client_id=" +
                percent_encode(c.client_id) + "&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Areq-1");
}

// ---- Metadata.

json good_server_metadata() {
  return {{"issuer", "https://pds.example.com"},
          {"authorization_endpoint", "https://pds.example.com/oauth/authorize"},
          {"token_endpoint", "https://pds.example.com/oauth/token"},
          {"pushed_authorization_request_endpoint", "https://pds.example.com/oauth/par"},
          {"response_types_supported", {"code"}},
          {"grant_types_supported", {"authorization_code", "refresh_token"}},
          {"code_challenge_methods_supported", {"S256"}},
          {"token_endpoint_auth_methods_supported", {"none", "private_key_jwt"}},
          {"scopes_supported", {"atproto", "transition:generic"}},
          {"dpop_signing_alg_values_supported", {"ES256K", "ES256"}},
          {"authorization_response_iss_parameter_supported", true},
          {"client_id_metadata_document_supported", true},
          {"require_pushed_authorization_requests", true}};
}

TEST(OAuthMetadata, GoodServerMetadata) {
  auto m = parse_auth_server_metadata(good_server_metadata().dump(), "https://pds.example.com");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->issuer, "https://pds.example.com");
  EXPECT_EQ(m->par_endpoint, "https://pds.example.com/oauth/par");
  EXPECT_EQ(m->token_endpoint, "https://pds.example.com/oauth/token");
  EXPECT_EQ(m->authorization_endpoint, "https://pds.example.com/oauth/authorize");
  // Loopback http, as the reference PDS runs in the tests.
  json local = good_server_metadata();
  local["issuer"] = "http://localhost:2583";
  local["pushed_authorization_request_endpoint"] = "http://localhost:2583/oauth/par";
  EXPECT_TRUE(parse_auth_server_metadata(local.dump(), "http://localhost:2583").ok());
}

TEST(OAuthMetadata, ServerMetadataFailures) {
  struct Case {
    const char* name;
    std::function<void(json&)> change;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"other issuer", [](json& j) { j["issuer"] = "https://evil.example.com"; }, "issuer"},
      {"no issuer", [](json& j) { j.erase("issuer"); }, "issuer"},
      {"no PAR endpoint", [](json& j) { j.erase("pushed_authorization_request_endpoint"); },
       "pushed_authorization_request_endpoint"},
      {"no token endpoint", [](json& j) { j.erase("token_endpoint"); }, "token_endpoint"},
      {"no authorization endpoint", [](json& j) { j["authorization_endpoint"] = 5; }, "authorization_endpoint"},
      {"http endpoint", [](json& j) { j["token_endpoint"] = "http://pds.example.com/oauth/token"; }, "http"},
      {"other scheme", [](json& j) { j["authorization_endpoint"] = "javascript:alert(1)"; }, "authorization_endpoint"},
      {"no ES256", [](json& j) { j["dpop_signing_alg_values_supported"] = {"ES256K"}; }, "ES256"},
      {"no DPoP algs", [](json& j) { j.erase("dpop_signing_alg_values_supported"); }, "dpop_signing_alg"},
      {"no S256", [](json& j) { j["code_challenge_methods_supported"] = {"plain"}; }, "S256"},
      {"no public clients", [](json& j) { j["token_endpoint_auth_methods_supported"] = {"private_key_jwt"}; }, "none"},
      {"no atproto scope", [](json& j) { j["scopes_supported"] = {"openid"}; }, "atproto"},
      {"no code", [](json& j) { j["response_types_supported"] = {"token"}; }, "code"},
      {"no iss parameter", [](json& j) { j["authorization_response_iss_parameter_supported"] = false; }, "iss"},
      {"no client metadata documents", [](json& j) { j.erase("client_id_metadata_document_supported"); },
       "client_id_metadata_document_supported"},
  };
  for (const Case& c : cases) {
    json j = good_server_metadata();
    c.change(j);
    auto m = parse_auth_server_metadata(j.dump(), "https://pds.example.com");
    ASSERT_FALSE(m.ok()) << c.name;
    EXPECT_TRUE(contains(m.error().message, c.says)) << c.name << ": " << m.error().message;
  }
  EXPECT_FALSE(parse_auth_server_metadata("[]", "https://pds.example.com").ok());
  EXPECT_FALSE(parse_auth_server_metadata("{", "https://pds.example.com").ok());
  auto big = parse_auth_server_metadata(std::string(kMaxOAuthDocumentBytes + 1, ' '), "https://pds.example.com");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, ErrorCode::kOverLimit);
}

TEST(OAuthMetadata, ProtectedResource) {
  const std::string pds = "https://pds.example.com";
  auto good = parse_protected_resource_metadata(
      R"({"resource":"https://pds.example.com","authorization_servers":["https://entryway.example.com"]})", pds);
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(*good, "https://entryway.example.com");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"resource":"https://other.example.com","authorization_servers":["https://a.example.com"]})", "resource"},
      {R"({"resource":"https://pds.example.com"})", "exactly one"},
      {R"({"resource":"https://pds.example.com","authorization_servers":[]})", "exactly one"},
      {R"({"resource":"https://pds.example.com","authorization_servers":["https://a.example.com","https://b.example.com"]})",
       "exactly one"},
      {R"({"resource":"https://pds.example.com","authorization_servers":["http://a.example.com"]})", "http"},
      {R"({"resource":"https://pds.example.com","authorization_servers":["https://a.example.com/path"]})", "origin"},
      {R"("x")", "JSON object"},
  };
  for (const auto& [text, says] : bad) {
    auto r = parse_protected_resource_metadata(text, pds);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_TRUE(contains(r.error().message, says)) << text << ": " << r.error().message;
  }
}

TEST(OAuthMetadata, TokenResponse) {
  auto ok = parse_token_response(
      R"({"access_token":"at","token_type":"DPoP","sub":"did:plc:abc","scope":"atproto transition:generic","expires_in":3600})");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->sub, "did:plc:abc");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"token_type":"DPoP","sub":"did:plc:abc","scope":"atproto"})", "access_token"},
      {R"({"access_token":"at","token_type":"Bearer","sub":"did:plc:abc","scope":"atproto"})", "DPoP"},
      {R"({"access_token":"at","token_type":"DPoP","sub":"alice.test","scope":"atproto"})", "sub"},
      {R"({"access_token":"at","token_type":"DPoP","scope":"atproto"})", "sub"},
      {R"({"access_token":"at","token_type":"DPoP","sub":"did:plc:abc","scope":"atprotox transition:generic"})",
       "scope"},
  };
  for (const auto& [text, says] : bad) {
    auto r = parse_token_response(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_TRUE(contains(r.error().message, says)) << text << ": " << r.error().message;
  }
}

// ---- PAR against a server that wants a DPoP nonce first (as the reference PDS does).

TEST(OAuthFlow, ParRetriesOnceWithTheServersNonce) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  int calls = 0;
  std::string seen_body;
  TestHttpServer server([&](const TestHttpServer::Request& req) -> std::optional<std::string> {
    ++calls;
    auto proof = parse_compact_jwt(req.headers.at("dpop"));
    EXPECT_TRUE(proof.ok());
    if (!proof->payload.contains("nonce")) {
      return TestHttpServer::response(400, R"({"error":"use_dpop_nonce","error_description":"nonce"})",
                                      "application/json", "DPoP-Nonce: n-1\r\n");
    }
    EXPECT_EQ(proof->payload.at("nonce"), "n-1");
    seen_body = req.body;
    return TestHttpServer::response(201, R"({"request_uri":"urn:ietf:params:oauth:request_uri:r1","expires_in":299})",
                                    "application/json", "DPoP-Nonce: n-2\r\n");
  });
  AuthServerMetadata m;
  m.par_endpoint = server.url("/oauth/par");
  ClientIdentity client = loopback_client("http://127.0.0.1:9/cb");
  auto r = push_authorization_request(m, client, *key, "st", "ch", "did:plc:abc", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(r->request_uri, "urn:ietf:params:oauth:request_uri:r1");
  EXPECT_EQ(r->dpop_nonce, "n-2");
  EXPECT_TRUE(contains(seen_body, "code_challenge_method=S256")) << seen_body;
  EXPECT_TRUE(contains(seen_body, "login_hint=did%3Aplc%3Aabc")) << seen_body;
  EXPECT_TRUE(contains(seen_body, "state=st")) << seen_body;
}

TEST(OAuthFlow, ANonceLoopEnds) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  int calls = 0;
  TestHttpServer server([&](const TestHttpServer::Request&) -> std::optional<std::string> {
    return TestHttpServer::response(400, R"({"error":"use_dpop_nonce"})", "application/json",
                                    "DPoP-Nonce: n-" + std::to_string(++calls) + "\r\n");
  });
  AuthServerMetadata m;
  m.token_endpoint = server.url("/oauth/token");
  auto r = exchange_code(m, loopback_client("http://127.0.0.1:9/cb"), *key, "code", "verifier", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(contains(r.error().message, "use_dpop_nonce")) << r.error().message;
}

TEST(OAuthFlow, RefusalsSayWhatTheServerSaid) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  TestHttpServer server([&](const TestHttpServer::Request&) -> std::optional<std::string> {
    return TestHttpServer::response(400, R"({"error":"invalid_grant","error_description":"Code already used"})");
  });
  AuthServerMetadata m;
  m.token_endpoint = server.url("/oauth/token");
  auto r = exchange_code(m, loopback_client("http://127.0.0.1:9/cb"), *key, "code", "verifier", "");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "invalid_grant: Code already used")) << r.error().message;
}

}  // namespace
}  // namespace gm::atproto::oauth
