// Test helpers for the atproto tests (header-only, included by *_test.cc only): the
// shared vectors file and an OpenSSL signer that produces atproto-style signatures
// (64-byte r||s, low-S unless asked otherwise).
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

#include "atproto/keys.h"
#include "util/base64url.h"
#include "util/hex.h"

namespace gm::atproto::testing {

inline const nlohmann::json& vectors() {
  static const nlohmann::json v = [] {
    std::ifstream in(std::string(GM_SHARED_DIR) + "/spec/vectors/atproto/vectors.json");
    if (!in) throw std::runtime_error("cannot open spec/vectors/atproto/vectors.json under " GM_SHARED_DIR);
    return nlohmann::json::parse(in);
  }();
  return v;
}

inline Bytes hex_bytes(const std::string& hex) {
  auto b = from_hex(hex);
  if (!b.ok()) throw std::runtime_error("bad hex in test: " + hex);
  return *b;
}

// The vectors' key entry called `name` ("alice atproto signing key (k256)").
inline const nlohmann::json& vector_key(const std::string& name) {
  for (const auto& k : vectors()["keys"]) {
    if (k["name"] == name) return k;
  }
  throw std::runtime_error("no key named " + name);
}

inline Curve vector_curve(const nlohmann::json& key) {
  return key["curve"] == "secp256k1" ? Curve::kSecp256k1 : Curve::kP256;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// A private key, generated or from the vectors.
class TestSigner {
 public:
  static TestSigner generate(Curve curve) {
    TestSigner s;
    s.curve_ = curve;
    s.pkey_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve == Curve::kSecp256k1 ? "secp256k1" : "P-256"));
    if (!s.pkey_) throw std::runtime_error("keygen failed");
    return s;
  }

  static TestSigner from_vector(const nlohmann::json& key) {
    TestSigner s;
    s.curve_ = vector_curve(key);
    Bytes priv = hex_bytes(key["private_key_hex"]);
    Bytes pub = hex_bytes(key["public_key_uncompressed_hex"]);
    BIGNUM* d = BN_bin2bn(priv.data(), static_cast<int>(priv.size()), nullptr);
    std::unique_ptr<EVP_PKEY_CTX, void (*)(EVP_PKEY_CTX*)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr),
                                                               EVP_PKEY_CTX_free);
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                    s.curve_ == Curve::kSecp256k1 ? "secp256k1" : "prime256v1", 0);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size());
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY* pkey = nullptr;
    if (EVP_PKEY_fromdata_init(ctx.get()) != 1 || EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
      throw std::runtime_error("cannot load vector private key");
    }
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(d);
    s.pkey_.reset(pkey);
    return s;
  }

  Curve curve() const { return curve_; }

  Bytes public_uncompressed() const {
    Bytes out(65);
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(pkey_.get(), OSSL_PKEY_PARAM_PUB_KEY, out.data(), out.size(), &len) != 1) {
      throw std::runtime_error("no public key");
    }
    out.resize(len);
    if (len == 33) {  // some OpenSSL keys export compressed: expand through our parser
      auto k = parse_sec1(curve_, out);
      return uncompressed_point(*k);
    }
    return out;
  }

  PublicKey public_key() const { return *parse_sec1(curve_, public_uncompressed()); }

  // {"kty":"EC","crv":…,"x":…,"y":…}
  nlohmann::json public_jwk() const {
    Bytes pub = public_uncompressed();
    return {{"kty", "EC"},
            {"crv", curve_ == Curve::kSecp256k1 ? "secp256k1" : "P-256"},
            {"x", base64url_encode(ByteView(pub.data() + 1, 32))},
            {"y", base64url_encode(ByteView(pub.data() + 33, 32))}};
  }

  // ECDSA-SHA256 of `message` as 64 bytes r||s; low-S unless `high_s`.
  Bytes sign(ByteView message, bool high_s = false) const {
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t len = 0;
    if (EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, pkey_.get()) != 1 ||
        EVP_DigestSign(md.get(), nullptr, &len, message.data(), message.size()) != 1) {
      throw std::runtime_error("sign init failed");
    }
    Bytes der(len);
    if (EVP_DigestSign(md.get(), der.data(), &len, message.data(), message.size()) != 1) {
      throw std::runtime_error("sign failed");
    }
    const unsigned char* p = der.data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
    const BIGNUM* r = ECDSA_SIG_get0_r(sig);
    BIGNUM* s = BN_dup(ECDSA_SIG_get0_s(sig));
    EC_GROUP* group = EC_GROUP_new_by_curve_name(curve_ == Curve::kSecp256k1 ? NID_secp256k1 : NID_X9_62_prime256v1);
    const BIGNUM* n = EC_GROUP_get0_order(group);
    BIGNUM* half = BN_dup(n);
    BN_rshift1(half, half);
    bool is_high = BN_cmp(s, half) > 0;
    if (is_high != high_s) BN_sub(s, n, s);
    Bytes out(64);
    BN_bn2binpad(r, out.data(), 32);
    BN_bn2binpad(s, out.data() + 32, 32);
    BN_free(half);
    BN_free(s);
    EC_GROUP_free(group);
    ECDSA_SIG_free(sig);
    return out;
  }

  // A compact JWS of `header` and `payload` (serialised by nlohmann, as any client may).
  std::string sign_jwt(const nlohmann::json& header, const nlohmann::json& payload, bool high_s = false) const {
    std::string input = base64url_encode(as_bytes(header.dump())) + "." + base64url_encode(as_bytes(payload.dump()));
    Bytes sig = sign(as_bytes(input), high_s);
    return input + "." + base64url_encode(sig);
  }

 private:
  Curve curve_ = Curve::kP256;
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey_;
};

}  // namespace gm::atproto::testing
