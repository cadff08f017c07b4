#include "atproto/keys.h"

#include <gtest/gtest.h>

#include "atproto/testing.h"
#include "util/hex.h"
#include "util/sha256.h"

namespace gm::atproto {
namespace {

using testing::hex_bytes;
using testing::TestSigner;
using testing::vectors;

TEST(Keys, EveryVectorKeyParsesInEveryForm) {
  ASSERT_EQ(vectors()["keys"].size(), 5u);
  for (const auto& k : vectors()["keys"]) {
    SCOPED_TRACE(k["name"].get<std::string>());
    Curve curve = testing::vector_curve(k);
    EXPECT_EQ(jwt_alg(curve), k["jwt_alg"].get<std::string>());
    Bytes compressed = hex_bytes(k["public_key_compressed_hex"]);
    Bytes uncompressed = hex_bytes(k["public_key_uncompressed_hex"]);

    auto from_multikey = parse_multikey(k["multikey"].get<std::string>());
    ASSERT_TRUE(from_multikey.ok()) << from_multikey.error().message;
    EXPECT_EQ(from_multikey->curve, curve);
    EXPECT_EQ(from_multikey->sec1, compressed);
    EXPECT_EQ(uncompressed_point(*from_multikey), uncompressed);
    EXPECT_EQ(multikey(*from_multikey), k["multikey"].get<std::string>());
    EXPECT_EQ(did_key(*from_multikey), k["did_key"].get<std::string>());

    auto from_did_key = parse_did_key(k["did_key"].get<std::string>());
    ASSERT_TRUE(from_did_key.ok()) << from_did_key.error().message;
    EXPECT_EQ(*from_did_key, *from_multikey);

    auto legacy = parse_legacy_multibase(curve, k["legacy_publicKeyMultibase"].get<std::string>());
    ASSERT_TRUE(legacy.ok()) << legacy.error().message;
    EXPECT_EQ(legacy->sec1, uncompressed);
    EXPECT_EQ(compressed_point(*legacy), compressed);
    EXPECT_EQ(multikey(*legacy), k["multikey"].get<std::string>());
  }
}

TEST(Keys, SpecExamples) {
  auto p256 = parse_multikey("zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo");
  ASSERT_TRUE(p256.ok()) << p256.error().message;
  EXPECT_EQ(p256->curve, Curve::kP256);
  auto k256 = parse_multikey("zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc");
  ASSERT_TRUE(k256.ok()) << k256.error().message;
  EXPECT_EQ(k256->curve, Curve::kSecp256k1);
}

TEST(Keys, Base58) {
  EXPECT_EQ(base58btc_encode(as_bytes("hello world")), "StV1DL6CwTryKyV");
  Bytes zeros = {0, 0, 1};
  EXPECT_EQ(base58btc_encode(zeros), "112");
  auto back = base58btc_decode("112");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, zeros);
  EXPECT_EQ(base58btc_decode("").value(), Bytes{});
  EXPECT_FALSE(base58btc_decode("0OIl").ok());
  EXPECT_FALSE(base58btc_decode(std::string(kMaxBase58Length + 1, '2')).ok());
}

TEST(Keys, BadKeyTextIsRefused) {
  const auto& alice = testing::vector_key("alice atproto signing key (k256)");
  std::string mk = alice["multikey"];
  EXPECT_FALSE(parse_multikey("").ok());
  EXPECT_FALSE(parse_multikey(mk.substr(1)).ok());                 // no 'z'
  EXPECT_FALSE(parse_multikey("u" + mk.substr(1)).ok());           // other multibase
  EXPECT_FALSE(parse_multikey(mk.substr(0, mk.size() - 2)).ok());  // truncated
  EXPECT_FALSE(parse_multikey(mk + "1").ok());                     // too long
  EXPECT_FALSE(parse_multikey("z0" + mk.substr(2)).ok());          // not base58
  EXPECT_FALSE(parse_did_key(mk).ok());                            // no did:key: prefix
  EXPECT_FALSE(parse_did_key("did:key:").ok());
  EXPECT_FALSE(parse_multikey(alice["legacy_publicKeyMultibase"].get<std::string>()).ok());  // no codec
  EXPECT_FALSE(parse_legacy_multibase(Curve::kSecp256k1, mk).ok());                          // compressed, with codec

  // Unknown multicodec (ed25519-pub, 0xed 0x01) with a 32-byte key.
  Bytes ed = {0xed, 0x01};
  ed.resize(34, 7);
  auto unknown = parse_multikey("z" + base58btc_encode(ed));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("secp256k1"), std::string::npos);

  // A point off the curve: y + 1.
  Bytes off = hex_bytes(alice["public_key_uncompressed_hex"]);
  off[64] ^= 1;
  EXPECT_FALSE(parse_sec1(Curve::kSecp256k1, off).ok());
  auto off_legacy = parse_legacy_multibase(Curve::kSecp256k1, "z" + base58btc_encode(off));
  ASSERT_FALSE(off_legacy.ok());
  EXPECT_NE(off_legacy.error().message.find("not a point"), std::string::npos) << off_legacy.error().message;
  // The secp256k1 point is not on P-256.
  EXPECT_FALSE(parse_legacy_multibase(Curve::kP256, alice["legacy_publicKeyMultibase"].get<std::string>()).ok());
  EXPECT_FALSE(parse_sec1(Curve::kP256, Bytes{0x00}).ok());  // infinity
  Bytes x_not_on_curve(33, 0);
  x_not_on_curve[0] = 0x02;
  x_not_on_curve[32] = 5;  // x = 5: y^2 = 125 + 7 = 132 is not a square mod p for secp256k1
  EXPECT_FALSE(parse_sec1(Curve::kSecp256k1, x_not_on_curve).ok());
}

TEST(Keys, VerifySignatures) {
  for (const char* name : {"alice atproto signing key (k256)", "bob atproto signing key (p256)"}) {
    SCOPED_TRACE(name);
    const auto& v = testing::vector_key(name);
    TestSigner signer = TestSigner::from_vector(v);
    PublicKey key = *parse_multikey(v["multikey"].get<std::string>());
    Bytes message = {'h', 'e', 'l', 'l', 'o'};
    Bytes sig = signer.sign(message);
    EXPECT_TRUE(verify_ecdsa_sha256(key, message, sig).ok());
    // The uncompressed form of the same key verifies too.
    PublicKey legacy = *parse_legacy_multibase(key.curve, v["legacy_publicKeyMultibase"].get<std::string>());
    EXPECT_TRUE(verify_ecdsa_sha256(legacy, message, sig).ok());

    Bytes other_message = {'h', 'e', 'l', 'l', 'O'};
    auto bad = verify_ecdsa_sha256(key, other_message, sig);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("bad signature"), std::string::npos);

    auto high = verify_ecdsa_sha256(key, message, signer.sign(message, /*high_s=*/true));
    ASSERT_FALSE(high.ok());
    EXPECT_NE(high.error().message.find("high-S signature"), std::string::npos);

    Bytes der(70, 0x30);
    auto der_result = verify_ecdsa_sha256(key, message, der);
    ASSERT_FALSE(der_result.ok());
    EXPECT_NE(der_result.error().message.find("signature is not 64 bytes (DER?)"), std::string::npos);

    Bytes zeros(64, 0);
    EXPECT_FALSE(verify_ecdsa_sha256(key, message, zeros).ok());
    Bytes all_ff(64, 0xff);  // r, s >= n
    EXPECT_FALSE(verify_ecdsa_sha256(key, message, all_ff).ok());
    EXPECT_FALSE(verify_ecdsa_sha256(key, message, Bytes{}).ok());
  }
}

TEST(Keys, GeneratedKeysSignAndVerify) {
  for (Curve curve : {Curve::kP256, Curve::kSecp256k1}) {
    TestSigner signer = TestSigner::generate(curve);
    Bytes message(1000, 0x5a);
    for (int i = 0; i < 20; ++i) {
      message[0] = static_cast<uint8_t>(i);
      EXPECT_TRUE(verify_ecdsa_sha256(signer.public_key(), message, signer.sign(message)).ok());
    }
    // A key of the other curve with the same bytes does not exist or does not verify.
    PublicKey wrong_curve = signer.public_key();
    wrong_curve.curve = curve == Curve::kP256 ? Curve::kSecp256k1 : Curve::kP256;
    EXPECT_FALSE(verify_ecdsa_sha256(wrong_curve, message, signer.sign(message)).ok());
  }
}

TEST(Keys, Jwk) {
  TestSigner signer = TestSigner::generate(Curve::kP256);
  nlohmann::json jwk = signer.public_jwk();
  auto key = parse_ec_jwk(jwk);
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(compressed_point(*key), compressed_point(signer.public_key()));

  TestSigner k = TestSigner::generate(Curve::kSecp256k1);
  auto k_key = parse_ec_jwk(k.public_jwk());
  ASSERT_TRUE(k_key.ok());
  EXPECT_EQ(k_key->curve, Curve::kSecp256k1);

  auto refused = [](nlohmann::json j) { return !parse_ec_jwk(j).ok() && !jwk_thumbprint(j).ok(); };
  EXPECT_TRUE(refused(nlohmann::json::array()));
  nlohmann::json j = jwk;
  j["kty"] = "RSA";
  EXPECT_TRUE(refused(j));
  j = jwk;
  j["crv"] = "P-384";
  EXPECT_TRUE(refused(j));
  j = jwk;
  j["crv"] = "secp256k1";  // a P-256 point is not on secp256k1
  EXPECT_TRUE(refused(j));
  j = jwk;
  j["x"] = 5;
  EXPECT_TRUE(refused(j));
  j = jwk;
  j["x"] = j["x"].get<std::string>() + "=";
  EXPECT_TRUE(refused(j));
  j = jwk;
  j["y"] = base64url_encode(Bytes(31, 1));
  EXPECT_TRUE(refused(j));
  j = jwk;
  j["d"] = base64url_encode(Bytes(32, 1));
  EXPECT_TRUE(refused(j));
  j = jwk;
  j.erase("y");
  EXPECT_TRUE(refused(j));
}

TEST(Keys, JwkThumbprintRfc7638) {
  // RFC 7638 §3.1 is an RSA key; this checks the EC form of the same construction:
  // SHA-256 of the members crv, kty, x, y in that order, no spaces, other members ignored.
  TestSigner signer = TestSigner::generate(Curve::kP256);
  nlohmann::json jwk = signer.public_jwk();
  std::string canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" + jwk["x"].get<std::string>() + "\",\"y\":\"" +
                          jwk["y"].get<std::string>() + "\"}";
  Sha256Digest d = sha256(as_bytes(canonical));
  auto t = jwk_thumbprint(jwk);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, base64url_encode(ByteView(d.data(), d.size())));
  jwk["alg"] = "ES256";
  jwk["use"] = "sig";
  EXPECT_EQ(jwk_thumbprint(jwk).value(), *t);

  // A published EC example (RFC 7517 A.1's P-256 key); its thumbprint was computed
  // independently with python hashlib over the canonical JSON.
  nlohmann::json rfc = {{"kty", "EC"},
                        {"crv", "P-256"},
                        {"x", "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"},
                        {"y", "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
                        {"use", "enc"},
                        {"kid", "1"}};
  EXPECT_EQ(jwk_thumbprint(rfc).value(), "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s");
}

}  // namespace
}  // namespace gm::atproto
