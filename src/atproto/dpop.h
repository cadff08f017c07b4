// OAuth DPoP proofs (RFC 9449) and the access tokens they accompany, as today's atproto
// OAuth apps send them to /authenticate (spec/atproto.md §1.2, §2b):
//
//   Authorization: DPoP <access token>
//   DPoP: <proof>   compact JWS (jwt.h)
//     header  {"typ":"dpop+jwt","alg":"ES256"|"ES256K","jwk":<the client's public EC key>}
//     payload {"htm":<HTTP method>,"htu":<request URL without query or fragment>,
//              "iat":<unix s>,"jti":<random>,"ath":base64url(SHA-256(access token)),"nonce"?:…}
//     signed with the private half of `jwk` (64-byte r||s, low-S, as in keys.h)
//
// A valid proof shows only that the sender holds the key the proof names; it says
// nothing about whether the access token is genuine, which a third party cannot check
// (the PDS signs it with a secret key). So this path is off by default in auth/, and when
// on, the caller also compares the token's cnf.jkt with the proof's key, its sub with the
// owner, its exp with the clock, and refuses a second use of the proof's jti.
//
// Usage:
//   GM_ASSIGN_OR_RETURN(DpopProof p, verify_dpop_proof(dpop_header, "POST", "https://host/authenticate",
//                                                      access_token, now));
//   auto claims = read_access_token_claims(access_token);
//   if (!claims || claims->cnf_jkt != p.jkt || claims->sub != owner_did || …) refuse;
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace gm::atproto {

struct DpopProof {
  std::string jkt;  // RFC 7638 thumbprint of the proof's jwk
  std::string jti;
  int64_t iat = 0;
};

// Checks, in order: form, typ dpop+jwt, alg ES256/ES256K, jwk a public EC key of alg's
// curve, the signature, htm == method, htu == url (query and fragment ignored, scheme and
// host case-insensitive, default port optional), iat within ±leeway_seconds of now, jti
// present (at most 256 characters), ath == base64url(SHA-256(access_token)).
// Errors start with "DPoP proof refused: ". Replay of jti is the caller's job.
Result<DpopProof> verify_dpop_proof(std::string_view proof, std::string_view method, std::string_view url,
                                    std::string_view access_token, int64_t now, int64_t leeway_seconds = 60);

// The claims of an access token that is a readable JWT, unverified (nobody but the PDS can
// verify it); nullopt if it is opaque. A claim of the wrong type is left empty.
struct AccessTokenClaims {
  std::optional<std::string> sub;
  std::optional<int64_t> exp;
  std::optional<std::string> cnf_jkt;
};
std::optional<AccessTokenClaims> read_access_token_claims(std::string_view access_token);

// The form of a URL that htu comparison uses: query and fragment removed, scheme and host
// lowercased, :443 / :80 dropped for https / http, empty path as "/". nullopt if `url` is
// not an absolute http(s) URL.
std::optional<std::string> normalize_htu(std::string_view url);

}  // namespace gm::atproto
