#include "auth/session_token.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace gm::auth {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kNow = 1700000000;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "gm-auth-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string verify_error(const TokenKey& key, std::string_view token, int64_t now = kNow) {
  auto r = verify_session_token(key, token, now);
  return r.ok() ? "" : r.error().message;
}

// Pinned against an independent HKDF + HMAC computation (Python hashlib), so the
// key derivation and format cannot drift unnoticed.
TEST(SessionToken, KnownAnswer) {
  TokenKey key = TokenKey::from_secret("correct horse battery staple");
  SessionClaims c;
  c.group = "xyz.groundmist.library";
  c.issued_at = kNow;
  c.expires_at = kNow + 86400;
  c.token_id = "AAAAAAAAAAAAAAAAAAAAAA";
  c.owner_did = "did:plc:abc";
  const std::string expected =
      "gms1.eyJ2IjoxLCJncnAiOiJ4eXouZ3JvdW5kbWlzdC5saWJyYXJ5IiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwODY0MDAsImp0aSI6"
      "IkFBQUFBQUFBQUFBQUFBQUFBQUFBQUEiLCJzdWIiOiJkaWQ6cGxjOmFiYyJ9.eE9E1nO7vKt_66sqtNeAZp3nyytx2Cfg_7LnK_x39g8";
  EXPECT_EQ(mint_session_token(key, c), expected);
  auto back = verify_session_token(key, expected, kNow + 10);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, c);
}

// Session ids are typed after `sessions revoke`: none may look like an option.
TEST(SessionToken, IdsNeverStartWithADash) {
  for (int i = 0; i < 5000; ++i) {
    const std::string id = new_session_claims("xyz.groundmist.library", 60).token_id;
    ASSERT_FALSE(id.empty());
    ASSERT_NE(id[0], '-') << id;
  }
}

TEST(SessionToken, RoundTripKeepsEveryClaim) {
  TokenKey key = TokenKey::from_secret("s");
  SessionClaims c = new_session_claims("xyz.groundmist.notebook.essay", 3600, kNow);
  EXPECT_EQ(c.token_id.size(), 22u);
  c.grant_id = "grant-7";
  c.extra["aud"] = "did:web:sync.example.com";
  std::string token = mint_session_token(key, c);
  EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."), std::string::npos);
  auto back = verify_session_token(key, token, kNow);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, c);
  EXPECT_NE(new_session_claims("a.b", 1, kNow).token_id, new_session_claims("a.b", 1, kNow).token_id);
}

TEST(SessionToken, RejectsForgeriesSayingWhy) {
  TokenKey key = TokenKey::from_secret("server secret");
  std::string token = mint_session_token(key, new_session_claims("xyz.groundmist.library", 3600, kNow));
  // Another server's key.
  EXPECT_NE(verify_error(TokenKey::from_secret("other secret"), token).find("signature is invalid"), std::string::npos);
  // Claims edited (group swapped) while keeping the signature.
  std::string forged = mint_session_token(TokenKey::from_secret("x"), new_session_claims("xyz.other.app", 3600, kNow));
  std::string spliced = forged.substr(0, forged.rfind('.')) + token.substr(token.rfind('.'));
  EXPECT_NE(verify_error(key, spliced).find("signature is invalid"), std::string::npos);
  // Signature truncated.
  EXPECT_NE(verify_error(key, token.substr(0, token.size() - 2)).find("malformed"), std::string::npos);
  // Every single-character change of the signature part is caught.
  std::string flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify_session_token(key, flipped, kNow).ok());
}

TEST(SessionToken, ExpiryAndClock) {
  TokenKey key = TokenKey::from_secret("s");
  std::string token = mint_session_token(key, new_session_claims("a.b", 60, kNow));
  EXPECT_TRUE(verify_session_token(key, token, kNow + 59).ok());
  std::string e = verify_error(key, token, kNow + 60);
  EXPECT_EQ(e, "session token expired at 2023-11-14T22:14:20Z (now 2023-11-14T22:14:20Z); get a new one");
  EXPECT_TRUE(verify_session_token(key, token, kNow - kClockSkewSeconds).ok());
  EXPECT_NE(verify_error(key, token, kNow - kClockSkewSeconds - 1).find("not valid yet"), std::string::npos);
}

TEST(SessionToken, VersionAndShape) {
  TokenKey key = TokenKey::from_secret("s");
  std::string token = mint_session_token(key, new_session_claims("a.b", 60, kNow));
  std::string v2 = "gms2" + token.substr(4);
  EXPECT_EQ(verify_error(key, v2), "session token version 2 is not supported (this server reads version 1)");
  EXPECT_NE(verify_error(key, "").find("empty"), std::string::npos);
  EXPECT_NE(verify_error(key, "gms1.abc").find("3 parts"), std::string::npos);
  EXPECT_NE(verify_error(key, token + ".x").find("3 parts"), std::string::npos);
  EXPECT_NE(verify_error(key, "gmsx.a.b").find("bad version"), std::string::npos);
  EXPECT_NE(verify_error(key, "eyJhbGciOiJIUzI1NiJ9.eyJkaWQiOiJ4In0.sig").find("looks like a JWT"), std::string::npos);
  EXPECT_NE(verify_error(key, std::string(5000, 'g')).find("longer than"), std::string::npos);
}

TEST(SessionToken, AuthenticButBadClaimsAreMalformed) {
  // Sign arbitrary claims with the real key to reach the claim checks.
  TokenKey key = TokenKey::from_secret("s");
  SessionClaims c = new_session_claims("", 60, kNow);
  EXPECT_NE(verify_error(key, mint_session_token(key, c)).find("claim \"grp\" is empty"), std::string::npos);
}

TEST(TokenKey, SecretFromEnvironmentWins) {
  TempDir tmp;
  auto a = load_token_key(tmp.path(), std::string_view("abc"));
  auto b = load_token_key(tmp.path(), std::string_view("abc"));
  auto c = load_token_key(tmp.path(), std::string_view("abd"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(std::equal(a->bytes().begin(), a->bytes().end(), b->bytes().begin()));
  EXPECT_FALSE(std::equal(a->bytes().begin(), a->bytes().end(), c->bytes().begin()));
  EXPECT_EQ(a->source(), "GROUNDMIST_SYNC_SECRET_KEY");
  EXPECT_FALSE(fs::exists(secret_key_path(tmp.path())));
}

TEST(TokenKey, KeyFileCreatedOnceWithMode0600) {
  TempDir tmp;
  auto first = load_token_key(tmp.path(), std::nullopt);
  ASSERT_TRUE(first.ok()) << first.error().message;
  fs::path path = secret_key_path(tmp.path());
  EXPECT_EQ(first->source(), path.string());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  // An empty secret counts as unset.
  auto second = load_token_key(tmp.path(), std::string_view(""));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(std::equal(first->bytes().begin(), first->bytes().end(), second->bytes().begin()));
  std::string token = mint_session_token(*first, new_session_claims("a.b", 60, kNow));
  EXPECT_TRUE(verify_session_token(*second, token, kNow).ok());
  // No temp files left beside it.
  for (const auto& e : fs::directory_iterator(path.parent_path())) EXPECT_EQ(e.path(), path);
}

TEST(TokenKey, RefusesUnsafeOrDamagedKeyFile) {
  TempDir tmp;
  ASSERT_TRUE(load_token_key(tmp.path(), std::nullopt).ok());
  fs::path path = secret_key_path(tmp.path());
  ::chmod(path.c_str(), 0644);
  auto open_key = load_token_key(tmp.path(), std::nullopt);
  ASSERT_FALSE(open_key.ok());
  EXPECT_NE(open_key.error().message.find("readable by other users (mode 0644); run: chmod 600"), std::string::npos)
      << open_key.error().message;
  ::chmod(path.c_str(), 0600);
  fs::resize_file(path, 10);
  auto short_key = load_token_key(tmp.path(), std::nullopt);
  ASSERT_FALSE(short_key.ok());
  EXPECT_NE(short_key.error().message.find("holds 10 bytes, expected 32"), std::string::npos);
}

TEST(Duration, Parses) {
  EXPECT_EQ(parse_duration("90").value(), 90);
  EXPECT_EQ(parse_duration("90s").value(), 90);
  EXPECT_EQ(parse_duration("15m").value(), 900);
  EXPECT_EQ(parse_duration("12h").value(), 43200);
  EXPECT_EQ(parse_duration("30d").value(), 2592000);
  EXPECT_EQ(parse_duration("2w").value(), 1209600);
  for (const char* bad : {"", "d", "-5m", "1.5h", "5y", "0", "99999999999999w"}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace gm::auth
