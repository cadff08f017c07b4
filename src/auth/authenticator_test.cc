#include "auth/authenticator.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "atproto/did.h"
#include "atproto/dpop.h"
#include "atproto/testing.h"
#include "repo/document_id.h"
#include "util/sha256.h"

namespace gm::auth {
namespace {
namespace fs = std::filesystem;
using atproto::testing::TestSigner;

constexpr int64_t kT = 1767225600;  // the vectors' fixed time
constexpr const char* kOwner = "did:plc:torlb4mwutoyjwu4svnruovp";
constexpr const char* kHost = "sync.groundmist.test";
constexpr const char* kGroup = "xyz.groundmist.library";
const std::string kDocUrl = "automerge:" + repo::new_document_id();

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("authenticator_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    store_ = std::move(StateStore::open(dir_)).value();
    alice_ = TestSigner::from_vector(atproto::testing::vector_key("alice atproto signing key (k256)"));
    options_.owner_did = kOwner;
    options_.public_host = kHost;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Authenticator make() {
    return Authenticator(options_, *store_, TokenKey::from_secret("test secret"), [this](bool refresh) {
      ++key_fetches_;
      if (refresh) ++refreshes_;
      return Result<atproto::PublicKey>(alice_.public_key());
    });
  }

  std::string service_token(nlohmann::json overrides = nlohmann::json::object(), int64_t iat = kT) {
    nlohmann::json payload = {{"iat", iat},
                              {"iss", kOwner},
                              {"aud", std::string("did:web:") + kHost + "#groundmist_sync"},
                              {"exp", iat + 60},
                              {"lxm", "xyz.groundmist.sync.authenticate"},
                              {"jti", "jti-" + std::to_string(next_jti_++)}};
    for (auto& [k, v] : overrides.items()) payload[k] = v;
    return alice_.sign_jwt({{"typ", "JWT"}, {"alg", "ES256K"}}, payload);
  }

  LoginRequest request(const std::string& authorization, std::string body = "") {
    LoginRequest r;
    r.path = "/authenticate";
    r.authorization = authorization;
    r.origin = "https://library.groundmist.xyz";
    r.address = "192.0.2.7";
    r.body = body.empty() ? nlohmann::json({{"lexiconAuthorityDomain", kGroup}, {"rootDocUrl", nullptr}}).dump()
                          : body;
    return r;
  }

  fs::path dir_;
  std::unique_ptr<StateStore> store_;
  TestSigner alice_;
  AuthenticatorOptions options_;
  int key_fetches_ = 0;
  int refreshes_ = 0;
  int next_jti_ = 0;
};

TEST_F(AuthenticatorTest, ServiceAuthGivesASessionTokenForTheGroup) {
  Authenticator auth = make();
  LoginResponse r = auth.login(request("Bearer " + service_token()), kT + 5);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["result"], "OK");
  EXPECT_TRUE(r.body["rootDocUrl"].is_null());
  EXPECT_EQ(r.body["expiresAt"], "2026-01-02T00:00:05Z");
  auto claims = verify_session_token(TokenKey::from_secret("test secret"), r.body["token"].get<std::string>(), kT + 6);
  ASSERT_TRUE(claims.ok()) << claims.error().message;
  EXPECT_EQ(claims->group, kGroup);
  EXPECT_EQ(*claims->owner_did, kOwner);
  auto sessions = store_->list_sessions(kT + 6, false);
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ((*sessions)[0].id, claims->token_id);
  EXPECT_EQ((*sessions)[0].origin, "https://library.groundmist.xyz");
  EXPECT_EQ((*sessions)[0].kind, "service-auth");
}

TEST_F(AuthenticatorTest, TheVectorsTokenVerifiesAndIsNotAcceptedTwice) {
  Authenticator auth = make();
  const std::string token = atproto::testing::vectors()["service_auth_jwts"][0]["token"];
  EXPECT_EQ(auth.login(request("Bearer " + token), kT + 5).status, 200);
  LoginResponse again = auth.login(request("Bearer " + token), kT + 6);
  EXPECT_EQ(again.status, 401);
  EXPECT_NE(again.body["message"].get<std::string>().find("replayed"), std::string::npos) << again.body.dump();
  EXPECT_NE(again.www_authenticate.find("Bearer error=\"invalid_token\""), std::string::npos) << again.www_authenticate;
}

TEST_F(AuthenticatorTest, RefusalsNameTheCheck) {
  Authenticator auth = make();
  auto message = [&](const std::string& authorization, int64_t now = kT + 5) {
    LoginResponse r = auth.login(request(authorization), now);
    EXPECT_EQ(r.status, 401) << r.body.dump();
    return r.body["message"].get<std::string>();
  };
  EXPECT_NE(message("").find("no Authorization"), std::string::npos);
  EXPECT_NE(message("Basic abc").find("Bearer"), std::string::npos);
  EXPECT_NE(message("Bearer " + service_token(), kT + 200).find("expired"), std::string::npos);
  EXPECT_NE(message("Bearer " + service_token({{"aud", "did:web:evil.example#groundmist_sync"}})).find("aud"),
            std::string::npos);
  EXPECT_NE(message("Bearer " + service_token({{"iss", "did:plc:tqipppck3hpypsoltak6qtgi"}})).find("owner"),
            std::string::npos);
  EXPECT_NE(message("Bearer " + service_token({{"lxm", "com.atproto.repo.putRecord"}})).find("lxm"),
            std::string::npos);
  // Signed by someone else: the owner's document is fetched again once (rotation).
  TestSigner mallory = TestSigner::generate(atproto::Curve::kSecp256k1);
  const int before = refreshes_;
  std::string forged = mallory.sign_jwt({{"typ", "JWT"}, {"alg", "ES256K"}},
                                        {{"iat", kT},
                                         {"iss", kOwner},
                                         {"aud", std::string("did:web:") + kHost},
                                         {"exp", kT + 60},
                                         {"lxm", "xyz.groundmist.sync.authenticate"},
                                         {"jti", "forged"}});
  EXPECT_NE(message("Bearer " + forged).find("signature"), std::string::npos);
  EXPECT_EQ(refreshes_, before + 1);
  EXPECT_TRUE(store_->list_sessions(kT, true)->empty());
}

TEST_F(AuthenticatorTest, MalformedBodiesAre400) {
  Authenticator auth = make();
  const std::string bearer = "Bearer " + service_token();
  for (const char* body : {"not json", "[]", "{}", R"({"lexiconAuthorityDomain": 5})",
                           R"({"lexiconAuthorityDomain": "../etc"})", R"({"lexiconAuthorityDomain": ".x.y"})",
                           R"({"lexiconAuthorityDomain": "xyz.groundmist.library", "rootDocUrl": 1})",
                           R"({"lexiconAuthorityDomain": "xyz.groundmist.library", "rootDocUrl": "https://x"})",
                           R"({"lexiconAuthorityDomain": "xyz.groundmist.library", "rootDocUrl": "automerge:abc"})"}) {
    LoginResponse r = auth.login(request(bearer, body), kT + 5);
    EXPECT_EQ(r.status, 400) << body << " → " << r.body.dump();
    EXPECT_EQ(r.body["error"], "invalid_request");
  }
}

// Scopes beyond the app's group wait for the owner as one request; once approved, the
// next login's token carries them with their grant; revoking the grant makes them fall.
TEST_F(AuthenticatorTest, ScopesWaitForTheOwnerThenComeInTheToken) {
  Authenticator auth = make();
  auto body = [](nlohmann::json scopes) {
    return nlohmann::json({{"lexiconAuthorityDomain", kGroup}, {"scopes", scopes}}).dump();
  };
  const nlohmann::json asked = {"xyz.groundmist.notebook:read", {{"nsid", "xyz.groundmist.library"}, {"access", "write"}}};
  LoginResponse first = auth.login(request("Bearer " + service_token(), body(asked)), kT + 5);
  ASSERT_EQ(first.status, 200) << first.body.dump();
  EXPECT_EQ(first.body["scopes"]["granted"], nlohmann::json({"xyz.groundmist.library:write"}));
  EXPECT_EQ(first.body["scopes"]["pending"], nlohmann::json({"xyz.groundmist.notebook:read"}));
  const std::string id = first.body["scopes"]["request"];
  auto claims = verify_session_token(TokenKey::from_secret("test secret"), first.body["token"].get<std::string>(), kT + 5);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->extra.count("scp"), 0u);
  // Asking again is the same request.
  EXPECT_EQ(auth.login(request("Bearer " + service_token(), body(asked)), kT + 6).body["scopes"]["request"], id);

  ASSERT_TRUE(*store_->set_grant_status(id, GrantStatus::approved, kT + 7));
  LoginResponse second = auth.login(request("Bearer " + service_token(), body({"xyz.groundmist.notebook.pages:read"})), kT + 8);
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(second.body["scopes"]["granted"], nlohmann::json({"xyz.groundmist.notebook.pages:read"}));
  EXPECT_FALSE(second.body["scopes"].contains("request"));
  claims = verify_session_token(TokenKey::from_secret("test secret"), second.body["token"].get<std::string>(), kT + 8);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->extra["scp"], "xyz.groundmist.notebook.pages:read@" + id);
  auto carried = decode_scope_claim(claims->extra["scp"]);
  ASSERT_TRUE(carried.ok());
  EXPECT_EQ(store_->revocation_state(kT + 9)->standing(*carried).size(), 1u);
  ASSERT_TRUE(*store_->set_grant_status(id, GrantStatus::revoked, kT + 9));
  EXPECT_TRUE(store_->revocation_state(kT + 10)->standing(*carried).empty());

  // Another origin has no grant: its own request.
  LoginRequest other = request("Bearer " + service_token(), body({"xyz.groundmist.notebook:read"}));
  other.origin = "https://other.example";
  LoginResponse third = auth.login(other, kT + 11);
  EXPECT_EQ(third.body["scopes"]["pending"], nlohmann::json({"xyz.groundmist.notebook:read"}));
  EXPECT_NE(third.body["scopes"]["request"], id);
  // Without an Origin (or a device) nobody could tell whom an approval is for.
  other = request("Bearer " + service_token(), body({"xyz.groundmist.notebook:read"}));
  other.origin.clear();
  LoginResponse fourth = auth.login(other, kT + 12);
  ASSERT_EQ(fourth.status, 200);
  EXPECT_EQ(fourth.body["scopes"]["refused"], nlohmann::json({"xyz.groundmist.notebook:read"}));
  // Malformed scopes are the app's bug.
  for (const nlohmann::json& bad : {nlohmann::json("x"), nlohmann::json({"nope"}), nlohmann::json({{{"nsid", 1}}}),
                                    nlohmann::json(std::vector<std::string>(40, "xyz.a.b:read"))}) {
    EXPECT_EQ(auth.login(request("Bearer " + service_token(), body(bad)), kT + 13).status, 400) << bad.dump();
  }
}

TEST_F(AuthenticatorTest, RootDocumentFirstWins) {
  Authenticator auth = make();
  auto login = [&](nlohmann::json root) {
    LoginResponse r = auth.login(
        request("Bearer " + service_token(), nlohmann::json({{"lexiconAuthorityDomain", kGroup}, {"rootDocUrl", root}}).dump()),
        kT + 5);
    EXPECT_EQ(r.status, 200) << r.body.dump();
    return r.body["rootDocUrl"];
  };
  EXPECT_TRUE(login(nullptr).is_null());
  EXPECT_EQ(login(kDocUrl), kDocUrl);
  EXPECT_EQ(login("automerge:" + repo::new_document_id()), kDocUrl);
  EXPECT_EQ(login(nullptr), kDocUrl);
}

TEST_F(AuthenticatorTest, RepeatedFailuresFromOneAddressAreSlowedDown) {
  options_.failure_burst = 5;
  options_.failure_refill_seconds = 10;
  Authenticator auth = make();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(auth.login(request("Bearer garbage"), kT).status, 401);
  LoginResponse limited = auth.login(request("Bearer garbage"), kT);
  EXPECT_EQ(limited.status, 429);
  EXPECT_GT(limited.retry_after, 0);
  EXPECT_NE(limited.body["message"].get<std::string>().find("malformed"), std::string::npos) << limited.body.dump();
  // A forged token from there is refused without fetching the owner's document again.
  TestSigner mallory = TestSigner::generate(atproto::Curve::kSecp256k1);
  const int refreshes = refreshes_;
  std::string forged = mallory.sign_jwt({{"typ", "JWT"}, {"alg", "ES256K"}},
                                        {{"iat", kT},
                                         {"iss", kOwner},
                                         {"aud", std::string("did:web:") + kHost},
                                         {"exp", kT + 60},
                                         {"lxm", "xyz.groundmist.sync.authenticate"},
                                         {"jti", "forged"}});
  EXPECT_EQ(auth.login(request("Bearer " + forged), kT).status, 429);
  EXPECT_EQ(refreshes_, refreshes);
  // The owner behind the same address (a shared proxy) still gets in.
  EXPECT_EQ(auth.login(request("Bearer " + service_token()), kT).status, 200);
  // Another address is not affected; this one gets its allowance back with time.
  LoginRequest other = request("Bearer garbage");
  other.address = "192.0.2.8";
  EXPECT_EQ(auth.login(other, kT + 5).status, 401);
  EXPECT_EQ(auth.login(request("Bearer garbage"), kT + 10).status, 401);
}

TEST_F(AuthenticatorTest, AnIpv6SubnetSharesOneAllowance) {
  EXPECT_EQ(limiter_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(limiter_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
  EXPECT_EQ(limiter_key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(limiter_key("::ffff:192.0.2.7"), "::ffff:192.0.2.7");
  options_.failure_burst = 3;
  Authenticator auth = make();
  for (int i = 0; i < 3; ++i) {
    LoginRequest r = request("Bearer garbage");
    r.address = "2001:db8:1:2::" + std::to_string(i + 1);
    EXPECT_EQ(auth.login(r, kT).status, 401);
  }
  LoginRequest r = request("Bearer garbage");
  r.address = "2001:db8:1:2::ffff";
  EXPECT_EQ(auth.login(r, kT).status, 429);
}

TEST_F(AuthenticatorTest, WithoutOwnerOrPublicHostNothingIsAccepted) {
  options_.owner_did.clear();
  EXPECT_EQ(make().login(request("Bearer " + service_token()), kT + 5).body["error"], "no_owner");
  options_.owner_did = kOwner;
  options_.public_host.clear();
  EXPECT_EQ(make().login(request("Bearer " + service_token()), kT + 5).body["error"], "not_configured");
}

TEST_F(AuthenticatorTest, RevokeAllRefusesCredentialsIssuedBeforeIt) {
  options_.revoked_before = [] { return kT + 10; };
  Authenticator auth = make();
  LoginResponse old = auth.login(request("Bearer " + service_token({}, kT + 5)), kT + 20);
  EXPECT_EQ(old.status, 401);
  EXPECT_NE(old.body["message"].get<std::string>().find("revoked"), std::string::npos) << old.body.dump();
  EXPECT_EQ(auth.login(request("Bearer " + service_token({}, kT + 10)), kT + 20).status, 200);
}

TEST_F(AuthenticatorTest, AnUnreachableDirectoryIsTheServersProblem) {
  Authenticator auth(options_, *store_, TokenKey::from_secret("test secret"),
                     [](bool) -> Result<atproto::PublicKey> { return error("https://plc.example: HTTP 500"); });
  options_.failure_burst = 2;
  for (int i = 0; i < 5; ++i) {
    LoginResponse r = auth.login(request("Bearer " + service_token()), kT + 5);
    EXPECT_EQ(r.status, 503) << r.body.dump();  // never 429: not counted against the client
    EXPECT_EQ(r.body["message"].get<std::string>().find("plc.example"), std::string::npos);
  }
}

// --- DPoP: today's OAuth apps -------------------------------------------------------

class DpopTest : public AuthenticatorTest {
 protected:
  void SetUp() override {
    AuthenticatorTest::SetUp();
    options_.allow_oauth_dpop = true;
    device_ = TestSigner::generate(atproto::Curve::kP256);
  }
  std::string access_token(const std::string& sub = kOwner) {
    TestSigner pds = TestSigner::generate(atproto::Curve::kP256);
    const std::string jkt = *atproto::jwk_thumbprint(device_.public_jwk());
    return pds.sign_jwt({{"typ", "at+jwt"}, {"alg", "ES256"}},
                        {{"sub", sub}, {"exp", kT + 3600}, {"iat", kT}, {"cnf", {{"jkt", jkt}}}});
  }
  std::string proof(const std::string& token, nlohmann::json overrides = nlohmann::json::object(),
                    const TestSigner* key = nullptr) {
    const TestSigner& signer = key ? *key : device_;
    const Sha256Digest ath = sha256(as_bytes(token));
    nlohmann::json payload = {{"htm", "POST"},
                              {"htu", std::string("https://") + kHost + "/authenticate"},
                              {"iat", kT},
                              {"jti", "p" + std::to_string(next_jti_++)},
                              {"ath", base64url_encode(ByteView(ath.data(), ath.size()))}};
    for (auto& [k, v] : overrides.items()) payload[k] = v;
    return signer.sign_jwt({{"typ", "dpop+jwt"}, {"alg", "ES256"}, {"jwk", signer.public_jwk()}}, payload);
  }
  LoginRequest dpop_request(const std::string& token, const std::string& dpop) {
    LoginRequest r = request("DPoP " + token);
    r.dpop = dpop;
    return r;
  }
  TestSigner device_;
};

TEST_F(DpopTest, AnUnknownDeviceWaitsForTheOwnersApproval) {
  Authenticator auth = make();
  const std::string token = access_token();
  LoginResponse first = auth.login(dpop_request(token, proof(token)), kT + 1);
  ASSERT_EQ(first.status, 401) << first.body.dump();
  EXPECT_EQ(first.body["error"], "approval_required");
  const std::string code = first.body["device"];
  EXPECT_EQ(code.size(), 9u);
  EXPECT_EQ(first.www_authenticate.rfind("DPoP ", 0), 0u);
  // Asking again: the same pending device.
  EXPECT_EQ(auth.login(dpop_request(token, proof(token)), kT + 2).body["device"], code);

  ASSERT_TRUE(*store_->set_device_status(code, DeviceStatus::approved, kT + 3));
  LoginResponse ok = auth.login(dpop_request(token, proof(token)), kT + 4);
  ASSERT_EQ(ok.status, 200) << ok.body.dump();
  EXPECT_EQ((*store_->list_sessions(kT + 4, false))[0].device, code);

  ASSERT_TRUE(*store_->set_device_status(code, DeviceStatus::revoked, kT + 5));
  EXPECT_EQ(auth.login(dpop_request(token, proof(token)), kT + 6).body["error"], "device_revoked");
}

TEST_F(DpopTest, EveryMismatchIsRefused) {
  Authenticator auth = make();
  const std::string token = access_token();
  // Approve the device first, so that what is refused below is the check itself.
  const std::string code = auth.login(dpop_request(token, proof(token)), kT).body["device"];
  ASSERT_TRUE(*store_->set_device_status(code, DeviceStatus::approved, kT));
  auto refused = [&](const LoginRequest& r, const char* why) {
    LoginResponse res = auth.login(r, kT + 1);
    EXPECT_EQ(res.status, 401) << why << ": " << res.body.dump();
  };
  refused(dpop_request(token, proof(token, {{"htu", "https://evil.example/authenticate"}})), "htu");
  refused(dpop_request(token, proof(token, {{"htm", "GET"}})), "htm");
  refused(dpop_request(token, proof(token, {{"ath", "AAAA"}})), "ath");
  refused(dpop_request(token, proof(token, {{"iat", kT - 3600}})), "old proof");
  const std::string once = proof(token);
  EXPECT_EQ(auth.login(dpop_request(token, once), kT + 1).status, 200);
  refused(dpop_request(token, once), "jti replay");
  TestSigner other = TestSigner::generate(atproto::Curve::kP256);
  refused(dpop_request(token, proof(token, {}, &other)), "other key than cnf.jkt");
  refused(dpop_request(access_token("did:plc:tqipppck3hpypsoltak6qtgi"), proof(access_token("did:plc:x"))), "sub");
  refused(dpop_request(token, ""), "no proof");
}

TEST_F(DpopTest, NewDevicesCountAsFailuresAndAreBounded) {
  options_.failure_burst = 3;
  options_.max_pending_devices = 2;
  Authenticator auth = make();
  auto ask = [&](LoginRequest r) { return auth.login(r, kT + 1); };
  std::vector<TestSigner> keys;
  for (int i = 0; i < 3; ++i) keys.push_back(TestSigner::generate(atproto::Curve::kP256));
  auto from = [&](int i, const std::string& address) {
    LoginRequest r = dpop_request("opaque-token-" + std::to_string(i), "");
    r.dpop = proof("opaque-token-" + std::to_string(i), {}, &keys[i]);
    r.address = address;
    return r;
  };
  EXPECT_EQ(ask(from(0, "192.0.2.1")).body["error"], "approval_required");
  EXPECT_EQ(ask(from(1, "192.0.2.2")).body["error"], "approval_required");
  // Full: the third is refused, and the first two stay.
  EXPECT_EQ(ask(from(2, "192.0.2.3")).body["error"], "too_many_pending");
  EXPECT_EQ(store_->list_devices()->size(), 2u);
}

TEST_F(DpopTest, OneAddressAsksForAFewDevicesAtMost) {
  Authenticator auth = make();
  for (int i = 0; i <= kPendingPerAddress; ++i) {
    TestSigner key = TestSigner::generate(atproto::Curve::kP256);
    LoginRequest r = dpop_request("opaque", "");
    r.dpop = proof("opaque", {}, &key);
    LoginResponse res = auth.login(r, kT + 1);
    EXPECT_EQ(res.body["error"], i < kPendingPerAddress ? "approval_required" : "invalid_token") << res.body.dump();
  }
  EXPECT_EQ(store_->list_devices()->size(), static_cast<size_t>(kPendingPerAddress));
}

TEST_F(DpopTest, OffUnlessEnabled) {
  options_.allow_oauth_dpop = false;
  Authenticator auth = make();
  const std::string token = access_token();
  LoginResponse r = auth.login(dpop_request(token, proof(token)), kT);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body["message"].get<std::string>().find("--allow-oauth-dpop"), std::string::npos);
  EXPECT_TRUE(store_->list_devices()->empty());
}

}  // namespace
}  // namespace gm::auth
