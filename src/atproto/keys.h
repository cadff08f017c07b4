// atproto public keys and their signatures (spec/atproto.md §2a "Getting the key",
// "Signature format"; atproto specs/cryptography).
//
// Two curves: secp256k1 ("k256", JWT alg ES256K) and NIST P-256 ("p256", alg ES256).
// Text forms of a public key that this file reads:
//   multikey     "z" + base58btc( varint multicodec | 33-byte compressed SEC1 point )
//                multicodec varint e7 01 = secp256k1-pub (0xe7), 80 24 = p256-pub (0x1200)
//                e.g. zQ3sh… (k256), zDna… (p256)
//   did:key      "did:key:" + multikey
//   legacy       "z" + base58btc( 65-byte uncompressed SEC1 point ), no multicodec; the
//                curve comes from the verification method's type (EcdsaSecp256k1VerificationKey2019
//                or EcdsaSecp256r1VerificationKey2019), only in old did:web documents
//   EC JWK       {"kty":"EC","crv":"P-256"|"secp256k1","x":b64url(32),"y":b64url(32)} (DPoP proofs)
// Every parsed point is checked to lie on its curve.
//
// Signatures are what atproto mandates for both curves: ECDSA over SHA-256 of the
// message, sent as exactly 64 bytes r||s (not DER), with s <= n/2 ("low-S"), so that a
// signature has one valid encoding. The reference verifier is laxer (it accepts DER and
// high-S); we are not.
//
// Usage:
//   GM_ASSIGN_OR_RETURN(gm::atproto::PublicKey key, gm::atproto::parse_did_key("did:key:zQ3sh…"));
//   GM_TRY(gm::atproto::verify_ecdsa_sha256(key, gm::as_bytes(signing_input), signature));
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/result.h"

namespace gm::atproto {

enum class Curve { kSecp256k1, kP256 };

struct PublicKey {
  Curve curve = Curve::kSecp256k1;
  Bytes sec1;  // compressed (33 bytes, 02/03 prefix) or uncompressed (65 bytes, 04 prefix) point
  bool operator==(const PublicKey&) const = default;  // compares encodings: normalise first
};

// "secp256k1" / "P-256", for messages.
std::string_view curve_name(Curve curve);
// "ES256K" / "ES256"
std::string_view jwt_alg(Curve curve);
// The curve whose JWT alg is `alg`, if it is one of the two.
std::optional<Curve> curve_for_jwt_alg(std::string_view alg);

// Base58 with the Bitcoin alphabet (what multibase "z" means). Decoding refuses
// characters outside the alphabet and inputs over kMaxBase58Length characters.
inline constexpr size_t kMaxBase58Length = 256;
Result<Bytes> base58btc_decode(std::string_view text);
std::string base58btc_encode(ByteView bytes);

Result<PublicKey> parse_multikey(std::string_view multibase);
Result<PublicKey> parse_did_key(std::string_view did_key);
Result<PublicKey> parse_legacy_multibase(Curve curve, std::string_view multibase);
// A SEC1 point (33 or 65 bytes) on `curve`.
Result<PublicKey> parse_sec1(Curve curve, ByteView sec1);

// The same key in the other encodings (the point was validated when parsed).
Bytes compressed_point(const PublicKey& key);
Bytes uncompressed_point(const PublicKey& key);
// "z…" multikey and "did:key:z…" of the key (always the compressed form).
std::string multikey(const PublicKey& key);
std::string did_key(const PublicKey& key);

// Verifies an atproto signature (see the top of this file). Errors:
//   "signature is not 64 bytes (DER?) …", "high-S signature …", "bad signature …".
Status verify_ecdsa_sha256(const PublicKey& key, ByteView message, ByteView signature);

// EC public JWK → key. Refuses other key types and curves, x/y that are not exactly 32
// bytes of strict base64url, points off the curve, and a JWK carrying a private part "d".
Result<PublicKey> parse_ec_jwk(const nlohmann::json& jwk);
// RFC 7638 thumbprint of an EC JWK: base64url(SHA-256('{"crv":…,"kty":"EC","x":…,"y":…}'))
// with exactly those members in that order and no whitespace. The JWK must be valid for
// parse_ec_jwk.
Result<std::string> jwk_thumbprint(const nlohmann::json& jwk);

}  // namespace gm::atproto
