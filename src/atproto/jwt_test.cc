#include "atproto/jwt.h"

#include <gtest/gtest.h>

#include "atproto/testing.h"
#include "util/base64url.h"

namespace gm::atproto {
namespace {

std::string b64(std::string_view s) { return base64url_encode(as_bytes(s)); }

std::string error_of(std::string_view token) {
  auto r = parse_compact_jwt(token);
  return r.ok() ? "" : r.error().message;
}

TEST(Jwt, ParsesEveryVectorToken) {
  for (const auto& v : testing::vectors()["service_auth_jwts"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    std::string token = v["token"];
    auto jwt = parse_compact_jwt(token);
    if (v["name"] == "alg-none") {  // empty signature segment
      ASSERT_FALSE(jwt.ok());
      EXPECT_NE(jwt.error().message.find("alg none"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(jwt.ok()) << jwt.error().message;
    EXPECT_EQ(jwt->header, v["header"]);
    EXPECT_EQ(jwt->payload, v["payload"]);
    EXPECT_EQ(jwt->signing_input, token.substr(0, token.rfind('.')));
    EXPECT_EQ(jwt->signature.size(), v["name"] == "der-signature" ? 70u : 64u);
  }
}

TEST(Jwt, KeepsTheSigningInputVerbatim) {
  // Whitespace and member order as sent; a re-serialisation would differ.
  std::string header = "{ \"alg\" : \"ES256\",\n \"typ\":\"JWT\" }";
  std::string payload = "{\"z\":1, \"a\":\"\\u00e9\"}";
  std::string token = b64(header) + "." + b64(payload) + "." + b64("sig");
  auto jwt = parse_compact_jwt(token);
  ASSERT_TRUE(jwt.ok()) << jwt.error().message;
  EXPECT_EQ(jwt->signing_input, b64(header) + "." + b64(payload));
  EXPECT_EQ(jwt->payload["a"], "\xc3\xa9");
  EXPECT_EQ(as_string(jwt->signature), "sig");
}

TEST(Jwt, RefusesMalformedTokens) {
  std::string h = b64("{\"alg\":\"ES256\"}");
  std::string p = b64("{\"iss\":\"did:plc:x\"}");
  std::string s = b64("signature");
  EXPECT_EQ(error_of(h + "." + p + "." + s), "");
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty"},
      {h, "three"},
      {h + "." + p, "three"},
      {h + "." + p + "." + s + "." + s, "three"},
      {h + ".." + s, "empty"},
      {"." + p + "." + s, "empty"},
      {h + "." + p + ".", "alg none"},
      {h + "=." + p + "." + s, "header is not base64url"},
      {h + "." + p + "+." + s, "payload is not base64url"},
      {h + "." + p + "." + s + "=", "signature is not base64url"},
      {h + " ." + p + "." + s, "base64url"},
      {b64("not json") + "." + p + "." + s, "header is not a JSON object"},
      {b64("[]") + "." + p + "." + s, "header is not a JSON object"},
      {b64("null") + "." + p + "." + s, "header is not a JSON object"},
      {h + "." + b64("42") + "." + s, "payload is not a JSON object"},
      {h + "." + b64("{\"a\":1") + "." + s, "payload is not a JSON object"},
      {h + "." + b64("{\"a\":1} {}") + "." + s, "payload is not a JSON object"},
      {b64("{\"alg\":\"ES256\",\"alg\":\"none\"}") + "." + p + "." + s, "repeats the member \"alg\""},
      {h + "." + b64("{\"a\":\"\xc0\x80\"}") + "." + s, "payload is not a JSON object"},
  };
  for (const auto& [token, expect] : cases) {
    std::string message = error_of(token);
    EXPECT_NE(message.find(expect), std::string::npos) << token << ": \"" << message << "\"";
    EXPECT_EQ(message.rfind("malformed JWT: ", 0), 0u) << message;
  }
}

TEST(Jwt, LengthCap) {
  std::string h = b64("{\"alg\":\"ES256\"}");
  std::string s = b64("signature");
  auto token_of_length = [&](size_t n) {
    std::string pad(n, 'x');
    std::string token;
    for (size_t len = n; len > 0; --len) {  // find a payload that makes the token exactly n long
      token = h + "." + b64("{\"p\":\"" + pad.substr(0, len) + "\"}") + "." + s;
      if (token.size() <= n) break;
    }
    return token;
  };
  std::string at_cap = token_of_length(kMaxJwtLength);
  ASSERT_LE(at_cap.size(), kMaxJwtLength);
  EXPECT_EQ(error_of(at_cap), "");
  EXPECT_NE(error_of(std::string(kMaxJwtLength + 1, 'a')).find("longer than"), std::string::npos);
  EXPECT_NE(error_of(std::string(1 << 20, '.')).find("longer than"), std::string::npos);
}

TEST(Jwt, UniqueJsonObject) {
  EXPECT_TRUE(parse_unique_json_object("{\"a\":{\"a\":1,\"b\":[{\"a\":2}]},\"b\":2}", "x").ok());
  EXPECT_FALSE(parse_unique_json_object("{\"a\":1,\"b\":2,\"a\":1}", "x").ok());
  EXPECT_FALSE(parse_unique_json_object("", "x").ok());
  EXPECT_FALSE(parse_unique_json_object(std::string(5000, '['), "x").ok());
}

}  // namespace
}  // namespace gm::atproto
