#include "atproto/keys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <array>
#include <memory>
#include <nlohmann/json.hpp>

#include "util/base58.h"
#include "util/base64url.h"
#include "util/sha256.h"

namespace gm::atproto {

namespace {

constexpr std::array<uint8_t, 2> kSecp256k1Codec = {0xe7, 0x01};  // varint of 0xe7
constexpr std::array<uint8_t, 2> kP256Codec = {0x80, 0x24};       // varint of 0x1200

struct GroupFree {
  void operator()(EC_GROUP* g) const { EC_GROUP_free(g); }
};
struct PointFree {
  void operator()(EC_POINT* p) const { EC_POINT_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using GroupPtr = std::unique_ptr<EC_GROUP, GroupFree>;
using PointPtr = std::unique_ptr<EC_POINT, PointFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

int curve_nid(Curve curve) { return curve == Curve::kSecp256k1 ? NID_secp256k1 : NID_X9_62_prime256v1; }
// OpenSSL's provider name of the group.
const char* curve_group_name(Curve curve) { return curve == Curve::kSecp256k1 ? "secp256k1" : "prime256v1"; }

GroupPtr new_group(Curve curve) {
  GroupPtr g(EC_GROUP_new_by_curve_name(curve_nid(curve)));
  if (!g) std::abort();  // an OpenSSL build without these curves cannot run this server
  return g;
}

// Decodes and validates a SEC1 point; null if it is not a finite point on the curve.
PointPtr decode_point(const EC_GROUP* group, ByteView sec1) {
  PointPtr p(EC_POINT_new(group));
  if (!p) std::abort();
  if (EC_POINT_oct2point(group, p.get(), sec1.data(), sec1.size(), nullptr) != 1) return nullptr;
  if (EC_POINT_is_at_infinity(group, p.get()) || EC_POINT_is_on_curve(group, p.get(), nullptr) != 1) return nullptr;
  return p;
}

Bytes encode_point(const PublicKey& key, point_conversion_form_t form) {
  GroupPtr group = new_group(key.curve);
  PointPtr p = decode_point(group.get(), key.sec1);
  if (!p) return {};  // a PublicKey not made by parse_*: nothing sensible to return
  Bytes out(form == POINT_CONVERSION_COMPRESSED ? 33 : 65);
  if (EC_POINT_point2oct(group.get(), p.get(), form, out.data(), out.size(), nullptr) != out.size()) return {};
  return out;
}

// Private-key-free EVP_PKEY for verification.
std::unique_ptr<EVP_PKEY, PkeyFree> new_public_pkey(const PublicKey& key) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(curve_group_name(key.curve)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(key.sec1.data()),
                                        key.sec1.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* pkey = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) return nullptr;
  return std::unique_ptr<EVP_PKEY, PkeyFree>(pkey);
}

Result<PublicKey> parse_z_base58(std::string_view multibase, std::string_view what) {
  if (multibase.empty() || multibase[0] != 'z') {
    return error(std::string(what) + " must start with 'z' (multibase base58btc)");
  }
  auto bytes = base58btc_decode(multibase.substr(1));
  if (!bytes.ok()) return context(std::string(what), bytes.error());
  return PublicKey{Curve::kSecp256k1, std::move(bytes).value()};  // curve decided by the caller
}

}  // namespace

std::string_view curve_name(Curve curve) { return curve == Curve::kSecp256k1 ? "secp256k1" : "P-256"; }

std::string_view jwt_alg(Curve curve) { return curve == Curve::kSecp256k1 ? "ES256K" : "ES256"; }

std::optional<Curve> curve_for_jwt_alg(std::string_view alg) {
  if (alg == "ES256K") return Curve::kSecp256k1;
  if (alg == "ES256") return Curve::kP256;
  return std::nullopt;
}

Result<Bytes> base58btc_decode(std::string_view text) {
  if (text.size() > kMaxBase58Length) {
    return error("base58 text is longer than " + std::to_string(kMaxBase58Length) + " characters");
  }
  return base58_decode(text);
}

std::string base58btc_encode(ByteView bytes) { return base58_encode(bytes); }

Result<PublicKey> parse_sec1(Curve curve, ByteView sec1) {
  bool compressed = sec1.size() == 33 && (sec1[0] == 0x02 || sec1[0] == 0x03);
  bool uncompressed = sec1.size() == 65 && sec1[0] == 0x04;
  if (!compressed && !uncompressed) {
    return error("public key is not a " + std::string(curve_name(curve)) +
                 " point (expected 33 bytes starting 02/03 or 65 bytes starting 04, got " +
                 std::to_string(sec1.size()) + " bytes)");
  }
  GroupPtr group = new_group(curve);
  if (!decode_point(group.get(), sec1)) {
    return error("public key is not a point on the " + std::string(curve_name(curve)) + " curve");
  }
  return PublicKey{curve, Bytes(sec1.begin(), sec1.end())};
}

Result<PublicKey> parse_multikey(std::string_view multibase) {
  GM_ASSIGN_OR_RETURN(PublicKey raw, parse_z_base58(multibase, "multikey"));
  const Bytes& b = raw.sec1;
  Curve curve;
  if (b.size() >= 2 && b[0] == kSecp256k1Codec[0] && b[1] == kSecp256k1Codec[1]) {
    curve = Curve::kSecp256k1;
  } else if (b.size() >= 2 && b[0] == kP256Codec[0] && b[1] == kP256Codec[1]) {
    curve = Curve::kP256;
  } else {
    return error("multikey is not a secp256k1 (e7 01) or P-256 (80 24) public key");
  }
  ByteView point(b.data() + 2, b.size() - 2);
  if (point.size() != 33) {
    return error("multikey must hold a 33-byte compressed point, got " + std::to_string(point.size()) + " bytes");
  }
  auto key = parse_sec1(curve, point);
  if (!key.ok()) return context("multikey", key.error());
  return key;
}

Result<PublicKey> parse_did_key(std::string_view did_key) {
  constexpr std::string_view kPrefix = "did:key:";
  if (did_key.substr(0, kPrefix.size()) != kPrefix) return error("not a did:key (must start with \"did:key:\")");
  return parse_multikey(did_key.substr(kPrefix.size()));
}

Result<PublicKey> parse_legacy_multibase(Curve curve, std::string_view multibase) {
  GM_ASSIGN_OR_RETURN(PublicKey raw, parse_z_base58(multibase, "legacy publicKeyMultibase"));
  if (raw.sec1.size() != 65 || raw.sec1[0] != 0x04) {
    return error("legacy publicKeyMultibase must hold a 65-byte uncompressed point, got " +
                 std::to_string(raw.sec1.size()) + " bytes");
  }
  auto key = parse_sec1(curve, raw.sec1);
  if (!key.ok()) return context("legacy publicKeyMultibase", key.error());
  return key;
}

Bytes compressed_point(const PublicKey& key) { return encode_point(key, POINT_CONVERSION_COMPRESSED); }

Bytes uncompressed_point(const PublicKey& key) { return encode_point(key, POINT_CONVERSION_UNCOMPRESSED); }

std::string multikey(const PublicKey& key) {
  Bytes b(key.curve == Curve::kSecp256k1 ? kSecp256k1Codec.begin() : kP256Codec.begin(),
          key.curve == Curve::kSecp256k1 ? kSecp256k1Codec.end() : kP256Codec.end());
  append(b, compressed_point(key));
  return "z" + base58btc_encode(b);
}

std::string did_key(const PublicKey& key) { return "did:key:" + multikey(key); }

Status verify_ecdsa_sha256(const PublicKey& key, ByteView message, ByteView signature) {
  if (signature.size() != 64) {
    return error("signature is not 64 bytes (DER?): atproto signatures are raw r||s, got " +
                 std::to_string(signature.size()) + " bytes");
  }
  GroupPtr group = new_group(key.curve);
  BnPtr r(BN_bin2bn(signature.data(), 32, nullptr));
  BnPtr s(BN_bin2bn(signature.data() + 32, 32, nullptr));
  BnPtr half_order(BN_dup(EC_GROUP_get0_order(group.get())));
  if (!r || !s || !half_order || BN_rshift1(half_order.get(), half_order.get()) != 1) std::abort();
  // A high-S signature verifies mathematically, but atproto allows one encoding only.
  if (BN_cmp(s.get(), half_order.get()) > 0) {
    return error("high-S signature: atproto requires s <= n/2 (low-S); re-sign with a current library");
  }
  if (BN_is_zero(r.get()) || BN_is_zero(s.get())) return error("bad signature: r or s is zero");

  // OpenSSL's verifier takes DER, so the checked r and s are re-encoded (the caller's bytes never are).
  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  if (!sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) std::abort();
  r.release();
  s.release();
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) std::abort();
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> der_owner(der, [](unsigned char* p) { OPENSSL_free(p); });

  auto pkey = new_public_pkey(key);
  if (!pkey) return error("bad signature: the public key is not usable on " + std::string(curve_name(key.curve)));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  if (!md || EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1) std::abort();
  int rc = EVP_DigestVerify(md.get(), der, static_cast<size_t>(der_len), message.data(), message.size());
  if (rc != 1)
    return error("bad signature: it does not verify with the " + std::string(curve_name(key.curve)) + " key");
  return Status::Ok();
}

Result<PublicKey> parse_ec_jwk(const nlohmann::json& jwk) {
  if (!jwk.is_object()) return error("jwk is not a JSON object");
  auto text = [&](const char* name) -> std::optional<std::string> {
    auto it = jwk.find(name);
    if (it == jwk.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  if (jwk.contains("d")) return error("jwk contains a private key (\"d\"); send the public key only");
  if (text("kty") != "EC") return error("jwk kty must be \"EC\"");
  auto crv = text("crv");
  Curve curve;
  if (crv == "P-256") {
    curve = Curve::kP256;
  } else if (crv == "secp256k1") {
    curve = Curve::kSecp256k1;
  } else {
    return error("jwk crv must be \"P-256\" or \"secp256k1\"");
  }
  auto x_text = text("x");
  auto y_text = text("y");
  if (!x_text || !y_text) return error("jwk x and y must be strings");
  auto x = base64url_decode(*x_text);
  auto y = base64url_decode(*y_text);
  if (!x.ok() || !y.ok() || x->size() != 32 || y->size() != 32) {
    return error("jwk x and y must each be 32 bytes of base64url");
  }
  Bytes sec1 = {0x04};
  append(sec1, *x);
  append(sec1, *y);
  auto key = parse_sec1(curve, sec1);
  if (!key.ok()) return context("jwk", key.error());
  return key;
}

Result<std::string> jwk_thumbprint(const nlohmann::json& jwk) {
  GM_TRY(parse_ec_jwk(jwk));
  // The members are validated base64url / fixed names, so no JSON escaping is needed.
  std::string canonical = "{\"crv\":\"" + jwk["crv"].get<std::string>() + "\",\"kty\":\"EC\",\"x\":\"" +
                          jwk["x"].get<std::string>() + "\",\"y\":\"" + jwk["y"].get<std::string>() + "\"}";
  Sha256Digest digest = sha256(as_bytes(canonical));
  return base64url_encode(ByteView(digest.data(), digest.size()));
}

}  // namespace gm::atproto
