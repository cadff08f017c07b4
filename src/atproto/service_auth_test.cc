#include "atproto/service_auth.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "atproto/did.h"
#include "atproto/testing.h"
#include "util/base64url.h"

namespace gm::atproto {
namespace {

using testing::TestSigner;
using testing::vectors;

constexpr int64_t T = 1767225600;

// What our message must contain for each reason the vectors give (so the text loosely
// matches the vector's reason; a new reason in the vectors fails until it is added here).
const std::map<std::string, std::vector<std::string>>& reason_words() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"expired", {"expired"}},
      {"aud not accepted", {"aud not accepted", "is not this server"}},
      {"lxm missing or wrong", {"lxm"}},
      {"high-S signature", {"high-S signature"}},
      {"signature not 64-byte r||s", {"signature is not 64 bytes (DER?)"}},
      {"bad signature", {"bad signature"}},
      {"alg does not match key curve", {"does not match key curve"}},
      {"typ at+jwt not a service token", {"typ \"at+jwt\"", "not a service-auth token"}},
      {"kid must be absent or \"#atproto\"", {"kid must be absent or \"#atproto\""}},
      {"iss must be a bare DID (no fragment)", {"must be a bare DID (no #fragment"}},
      {"iat in the future", {"iat in the future"}},
      {"lifetime exp-iat out of range", {"lifetime exp-iat", "out of range"}},
      {"jti missing", {"jti missing"}},
      {"exp/iat missing or not integers", {"iat missing or not an integer"}},
      {"iss is not the server owner", {"is not the owner"}},
      {"DID resolution failed", {"DID resolution failed"}},
      {"malformed: need three base64url segments", {"malformed", "need three base64url segments"}},
      {"replayed jti", {"replayed jti"}},
  };
  return m;
}

// The fake network of the vectors: the #atproto key of `did`'s document, as the resolver
// would produce it by fetching did_document_url(did) and parsing what it serves.
Result<PublicKey> resolve_key(const std::string& did) {
  GM_ASSIGN_OR_RETURN(std::string url, did_document_url(did, kDefaultPlcUrl));
  const auto& routes = vectors()["fake_network"]["routes"];
  for (const auto& [route, body] : routes.items()) {
    // The routes list the PLC paths percent-encoded, as @atproto/identity asks for them.
    std::string encoded = url;
    for (size_t i = encoded.find("/did:"); i != std::string::npos && (i = encoded.find(':', i)) != std::string::npos;) {
      encoded.replace(i, 1, "%3A");
    }
    if (route != url && route != encoded) continue;
    GM_ASSIGN_OR_RETURN(DidDocument doc, parse_did_document(body.dump(), did));
    return atproto_signing_key(doc);
  }
  return error("DID resolution failed: " + url + " answered 404");
}

ServiceAuthPolicy policy_for(const nlohmann::json& context) {
  ServiceAuthPolicy p;
  p.owner_did = context["owner_did"];
  p.audiences = context["accepted_aud"].get<std::vector<std::string>>();
  p.lxm = context["lxm"];
  p.leeway_seconds = vectors()["meta"]["strict_policy"]["leeway_s"];
  p.max_lifetime_seconds = vectors()["meta"]["strict_policy"]["max_lifetime_s"];
  return p;
}

// The whole strict flow, as the server runs it; `seen` is the replay cache.
Status verify_fully(const std::string& token, const ServiceAuthPolicy& policy, int64_t now,
                    std::set<std::pair<std::string, std::string>>* seen = nullptr) {
  GM_ASSIGN_OR_RETURN(ServiceAuthToken t, check_service_auth_claims(token, policy, now));
  GM_ASSIGN_OR_RETURN(PublicKey key, resolve_key(t.iss));
  GM_TRY(verify_service_auth_signature(t, key));
  if (seen && !seen->insert({t.iss, t.jti}).second) return error("replayed jti " + t.jti);
  return Status::Ok();
}

void expect_reason(const std::string& message, const std::string& reason) {
  auto it = reason_words().find(reason);
  ASSERT_NE(it, reason_words().end()) << "vector reason not mapped: " << reason;
  for (const std::string& w : it->second) EXPECT_NE(message.find(w), std::string::npos) << message << " / " << w;
}

TEST(ServiceAuth, EveryVectorGetsItsStrictVerdict) {
  const auto& jwts = vectors()["service_auth_jwts"];
  ASSERT_EQ(jwts.size(), 27u);
  int accepted = 0;
  for (const auto& v : jwts) {
    SCOPED_TRACE(v["name"].get<std::string>());
    const auto& expected = v["expected"]["strict"];
    Status s = verify_fully(v["token"], policy_for(v["context"]), v["context"]["now"]);
    if (expected["result"] == "accept") {
      EXPECT_TRUE(s.ok()) << s.error().message;
      ++accepted;
    } else {
      ASSERT_EQ(expected["result"], "reject");
      ASSERT_FALSE(s.ok());
      if (expected.contains("reason")) expect_reason(s.error().message, expected["reason"]);
    }
  }
  EXPECT_EQ(accepted, 5);
}

TEST(ServiceAuth, ClaimsOfAValidToken) {
  const auto& v = vectors()["service_auth_jwts"][0];
  ASSERT_EQ(v["name"], "valid-es256k-plc");
  auto t = check_service_auth_claims(v["token"].get<std::string>(), policy_for(v["context"]), T + 5);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->alg, "ES256K");
  EXPECT_EQ(t->iss, v["payload"]["iss"]);
  EXPECT_EQ(t->aud, v["payload"]["aud"]);
  EXPECT_EQ(t->lxm, kAuthenticateLxm);
  EXPECT_EQ(t->jti, v["payload"]["jti"]);
  EXPECT_EQ(t->iat, T);
  EXPECT_EQ(t->exp, T + 60);
  EXPECT_EQ(t->jwt.header, v["header"]);
  EXPECT_EQ(t->jwt.payload, v["payload"]);
  std::string token = v["token"];
  EXPECT_EQ(t->jwt.signing_input, token.substr(0, token.rfind('.')));
}

TEST(ServiceAuth, ReplaySequence) {
  const auto& seq = vectors()["replay_sequence"];
  const nlohmann::json* vector = nullptr;
  for (const auto& v : vectors()["service_auth_jwts"]) {
    if (v["name"] == seq["token_name"]) vector = &v;
  }
  ASSERT_NE(vector, nullptr);
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& expected : seq["results"]) {
    Status s = verify_fully((*vector)["token"], policy_for((*vector)["context"]), (*vector)["context"]["now"], &seen);
    if (expected["result"] == "accept") {
      EXPECT_TRUE(s.ok()) << s.error().message;
    } else {
      ASSERT_FALSE(s.ok());
      expect_reason(s.error().message, expected["reason"]);
    }
  }
}

TEST(ServiceAuth, RealCreateServiceJwtSample) {
  const auto& v = vectors()["service_auth_jwts"][0];
  Status s = verify_fully(vectors()["create_service_jwt_sample"]["token"], policy_for(v["context"]), T + 5);
  EXPECT_TRUE(s.ok()) << s.error().message;
}

// Tokens for claim checks: the signature is never looked at by check_service_auth_claims.
std::string unsigned_token(const nlohmann::json& header, const nlohmann::json& payload) {
  return base64url_encode(as_bytes(header.dump())) + "." + base64url_encode(as_bytes(payload.dump())) + "." +
         base64url_encode(Bytes(64, 1));
}

const std::string kOwner = "did:plc:torlb4mwutoyjwu4svnruovp";

ServiceAuthPolicy test_policy() {
  ServiceAuthPolicy p;
  p.owner_did = kOwner;
  p.audiences = default_service_audiences("sync.groundmist.test");
  return p;
}

nlohmann::json good_header() { return {{"typ", "JWT"}, {"alg", "ES256K"}}; }
nlohmann::json good_payload() {
  return {{"iat", T},
          {"iss", kOwner},
          {"aud", "did:web:sync.groundmist.test#groundmist_sync"},
          {"exp", T + 60},
          {"lxm", "xyz.groundmist.sync.authenticate"},
          {"jti", "f00d"}};
}

std::string claims_error(const nlohmann::json& header, const nlohmann::json& payload, int64_t now = T + 5,
                         const ServiceAuthPolicy& policy = test_policy()) {
  auto t = check_service_auth_claims(unsigned_token(header, payload), policy, now);
  return t.ok() ? "" : t.error().message;
}

TEST(ServiceAuth, ClaimBoundaries) {
  EXPECT_EQ(claims_error(good_header(), good_payload()), "");
  // exp + leeway is the last accepted second.
  EXPECT_EQ(claims_error(good_header(), good_payload(), T + 90), "");
  EXPECT_NE(claims_error(good_header(), good_payload(), T + 91).find("expired"), std::string::npos);
  // iat up to leeway ahead.
  EXPECT_EQ(claims_error(good_header(), good_payload(), T - 30), "");
  EXPECT_NE(claims_error(good_header(), good_payload(), T - 31).find("iat in the future"), std::string::npos);
  nlohmann::json p = good_payload();
  p["exp"] = T + 3600;
  EXPECT_EQ(claims_error(good_header(), p), "");
  p["exp"] = T + 3601;
  EXPECT_NE(claims_error(good_header(), p).find("lifetime"), std::string::npos);
  p["exp"] = T;
  EXPECT_NE(claims_error(good_header(), p, T).find("lifetime"), std::string::npos);
  p["exp"] = T - 10;
  EXPECT_NE(claims_error(good_header(), p, T).find("lifetime"), std::string::npos);
  // typ absent, kid #atproto, bare aud: accepted.
  nlohmann::json h = good_header();
  h.erase("typ");
  h["kid"] = "#atproto";
  p = good_payload();
  p["aud"] = "did:web:sync.groundmist.test";
  EXPECT_EQ(claims_error(h, p), "");
}

TEST(ServiceAuth, WrongTypesAndValues) {
  struct Case {
    const char* what;
    nlohmann::json header;
    nlohmann::json payload;
    const char* expect;
  };
  auto with = [](nlohmann::json j, const char* key, nlohmann::json value) {
    if (value.is_discarded()) {
      j.erase(key);
    } else {
      j[key] = std::move(value);
    }
    return j;
  };
  const nlohmann::json kErase = nlohmann::json::value_t::discarded;
  const Case cases[] = {
      {"alg none", with(good_header(), "alg", "none"), good_payload(), "alg none not accepted"},
      {"alg NONE", with(good_header(), "alg", "NONE"), good_payload(), "alg none not accepted"},
      {"alg HS256", with(good_header(), "alg", "HS256"), good_payload(), "not accepted"},
      {"alg RS256", with(good_header(), "alg", "RS256"), good_payload(), "not accepted"},
      {"alg missing", with(good_header(), "alg", kErase), good_payload(), "no alg"},
      {"alg number", with(good_header(), "alg", 7), good_payload(), "no alg"},
      {"typ dpop", with(good_header(), "typ", "dpop+jwt"), good_payload(), "typ"},
      {"typ refresh", with(good_header(), "typ", "refresh+jwt"), good_payload(), "typ"},
      {"typ number", with(good_header(), "typ", 1), good_payload(), "typ"},
      {"kid absolute", with(good_header(), "kid", kOwner + "#atproto"), good_payload(), "kid"},
      {"kid array", with(good_header(), "kid", nlohmann::json::array()), good_payload(), "kid"},
      {"crit", with(good_header(), "crit", {"b64"}), good_payload(), "crit"},
      {"iss missing", good_header(), with(good_payload(), "iss", kErase), "iss missing"},
      {"iss number", good_header(), with(good_payload(), "iss", 5), "iss missing"},
      {"iss not did", good_header(), with(good_payload(), "iss", "alice.example.com"), "is not a DID"},
      {"aud array", good_header(), with(good_payload(), "aud", {"did:web:sync.groundmist.test"}), "aud missing"},
      {"aud other", good_header(), with(good_payload(), "aud", "did:web:sync.groundmist.test#other"),
       "not this server"},
      {"aud case", good_header(), with(good_payload(), "aud", "did:web:SYNC.groundmist.test"), "not this server"},
      {"lxm missing", good_header(), with(good_payload(), "lxm", kErase), "lxm missing"},
      {"lxm number", good_header(), with(good_payload(), "lxm", 1), "lxm"},
      {"lxm star", good_header(), with(good_payload(), "lxm", "*"), "lxm"},
      {"exp float", good_header(), with(good_payload(), "exp", 1767225660.5), "exp missing or not an integer"},
      {"exp string", good_header(), with(good_payload(), "exp", "1767225660"), "exp missing or not an integer"},
      {"exp huge", good_header(), with(good_payload(), "exp", 1e300), "exp missing"},
      {"exp u64", good_header(), with(good_payload(), "exp", UINT64_MAX), "exp missing"},
      {"exp negative", good_header(), with(good_payload(), "exp", -1), "exp missing"},
      {"iat null", good_header(), with(good_payload(), "iat", nullptr), "iat missing"},
      {"jti empty", good_header(), with(good_payload(), "jti", ""), "jti missing"},
      {"jti number", good_header(), with(good_payload(), "jti", 12), "jti missing"},
      {"jti long", good_header(), with(good_payload(), "jti", std::string(300, 'a')), "jti longer"},
      {"not owner", good_header(), with(good_payload(), "iss", "did:plc:tqipppck3hpypsoltak6qtgi"), "not the owner"},
  };
  for (const Case& c : cases) {
    std::string message = claims_error(c.header, c.payload);
    EXPECT_NE(message.find(c.expect), std::string::npos) << c.what << ": \"" << message << "\"";
  }
  ServiceAuthPolicy no_owner = test_policy();
  no_owner.owner_did.clear();
  EXPECT_NE(claims_error(good_header(), good_payload(), T + 5, no_owner).find("no owner"), std::string::npos);
  ServiceAuthPolicy no_aud = test_policy();
  no_aud.audiences.clear();
  EXPECT_NE(claims_error(good_header(), good_payload(), T + 5, no_aud).find("not this server"), std::string::npos);
}

TEST(ServiceAuth, MalformedTokens) {
  std::string good = unsigned_token(good_header(), good_payload());
  auto fails = [](std::string_view token) {
    auto t = check_service_auth_claims(token, test_policy(), T + 5);
    return t.ok() ? std::string() : t.error().message;
  };
  EXPECT_EQ(fails(good), "");
  for (size_t cut : {size_t{0}, size_t{1}, size_t{10}, good.find('.'), good.find('.') + 1, good.rfind('.'),
                     good.rfind('.') + 1, good.size() - 1}) {
    EXPECT_NE(fails(good.substr(0, cut)), "") << cut;
  }
  EXPECT_NE(fails(good + "."), "");
  EXPECT_NE(fails(good + "=").find("malformed"), std::string::npos);
  EXPECT_NE(fails("a.b.c").find("malformed"), std::string::npos);
  EXPECT_NE(fails(std::string(kMaxJwtLength + 1, 'a')).find("longer than"), std::string::npos);
  std::string not_json = base64url_encode(as_bytes("{\"alg\":")) + good.substr(good.find('.'));
  EXPECT_NE(fails(not_json).find("header is not a JSON object"), std::string::npos);
  std::string array = base64url_encode(as_bytes("[1]")) + good.substr(good.find('.'));
  EXPECT_NE(fails(array).find("header is not a JSON object"), std::string::npos);
  // A repeated claim is refused: two parsers could read different values.
  std::string payload_dup = "{\"iss\":\"" + kOwner + "\",\"iss\":\"did:plc:tqipppck3hpypsoltak6qtgi\"}";
  std::string dup =
      good.substr(0, good.find('.') + 1) + base64url_encode(as_bytes(payload_dup)) + good.substr(good.rfind('.'));
  EXPECT_NE(fails(dup).find("repeats the member \"iss\""), std::string::npos) << fails(dup);
  // Nested objects may repeat names of the top level.
  nlohmann::json nested = good_payload();
  nested["extra"] = {{"iss", "x"}};
  EXPECT_EQ(fails(unsigned_token(good_header(), nested)), "");
  // Invalid UTF-8 inside a string.
  std::string bad_utf8 = std::string("{\"alg\":\"ES256K\",\"x\":\"\xff\"}");
  EXPECT_NE(fails(base64url_encode(as_bytes(bad_utf8)) + good.substr(good.find('.'))), "");
}

TEST(ServiceAuth, SignatureWithGeneratedKeys) {
  for (Curve curve : {Curve::kP256, Curve::kSecp256k1}) {
    TestSigner signer = TestSigner::generate(curve);
    TestSigner other = TestSigner::generate(curve);
    nlohmann::json header = {{"typ", "JWT"}, {"alg", std::string(jwt_alg(curve))}};
    std::string token = signer.sign_jwt(header, good_payload());
    auto t = check_service_auth_claims(token, test_policy(), T + 5);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_TRUE(verify_service_auth_signature(*t, signer.public_key()).ok());
    Status wrong = verify_service_auth_signature(*t, other.public_key());
    ASSERT_FALSE(wrong.ok());
    EXPECT_NE(wrong.error().message.find("bad signature"), std::string::npos);
    TestSigner other_curve = TestSigner::generate(curve == Curve::kP256 ? Curve::kSecp256k1 : Curve::kP256);
    Status mismatch = verify_service_auth_signature(*t, other_curve.public_key());
    ASSERT_FALSE(mismatch.ok());
    EXPECT_NE(mismatch.error().message.find("does not match key curve"), std::string::npos);

    auto high =
        check_service_auth_claims(signer.sign_jwt(header, good_payload(), /*high_s=*/true), test_policy(), T + 5);
    ASSERT_TRUE(high.ok());
    Status high_s = verify_service_auth_signature(*high, signer.public_key());
    ASSERT_FALSE(high_s.ok());
    EXPECT_NE(high_s.error().message.find("high-S signature"), std::string::npos);
  }
}

}  // namespace
}  // namespace gm::atproto
