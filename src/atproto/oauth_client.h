// The server as an atproto OAuth client, for one purpose: proving that the person in
// front of the owner's console is the owner (docs/console.md "Sign in with atproto").
// The atproto OAuth profile (atproto specs/oauth), public client
// (token_endpoint_auth_method "none"):
//
//   discover   owner DID → DID document → PDS → GET <pds>/.well-known/oauth-protected-resource
//              → authorization_servers[0] = issuer → GET <issuer>/.well-known/oauth-authorization-server
//   PAR        POST <pushed_authorization_request_endpoint> (form): client_id, response_type=code,
//              redirect_uri, scope, state, code_challenge (S256 of the PKCE verifier),
//              code_challenge_method=S256, login_hint; header DPoP: a proof (below)
//              → 201 {"request_uri", "expires_in"}
//   browser    → <authorization_endpoint>?client_id=…&request_uri=… → the PDS's pages
//              → <redirect_uri>?code=…&state=…&iss=<issuer>   (or ?error=…&state=…)
//   token      POST <token_endpoint> (form): grant_type=authorization_code, code, redirect_uri,
//              client_id, code_verifier; header DPoP → {"access_token", "token_type": "DPoP",
//              "sub": <DID>, "scope", …}
//
// DPoP (RFC 9449): every call to the authorization server carries a proof, a compact JWS
//   header  {"alg":"ES256","typ":"dpop+jwt","jwk":<the login's public P-256 key>}
//   payload {"jti":<random>,"htm":<method>,"htu":<URL without query or fragment>,"iat":<unix s>,
//            "nonce"?:<the server's last DPoP-Nonce>,"ath"?:<b64url SHA-256 of an access token>}
// signed with a key made for this one login. A server that wants a fresh nonce answers
// 400 {"error":"use_dpop_nonce"} with a DPoP-Nonce header: the call is made once more
// with it. Signatures are atproto's form: 64 bytes r||s, low-S (keys.h).
//
// Every HTTP call has a timeout and a size cap (kOAuthCallTimeout, kMaxOAuthDocumentBytes)
// and follows the URL policy of http_client.h (https, or http to loopback for tests).
// The network functions block: call them on worker threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "atproto/keys.h"
#include "atproto/resolver.h"
#include "util/result.h"

namespace gm::atproto::oauth {

inline constexpr std::chrono::milliseconds kOAuthCallTimeout{5000};
inline constexpr size_t kMaxOAuthDocumentBytes = 64 * 1024;

// ---- Keys and proofs (no I/O).

// A P-256 private key made for one login (the DPoP key), never stored.
class SigningKey {
 public:
  static Result<SigningKey> generate();
  // The public half as a JWK {"kty":"EC","crv":"P-256","x","y"}.
  nlohmann::json public_jwk() const;
  PublicKey public_key() const;
  // A compact JWS of `header` (alg ES256 is set here) and `payload`, signed over
  // SHA-256 with a 64-byte low-S r||s signature.
  Result<std::string> sign_jws(nlohmann::json header, const nlohmann::json& payload) const;

 private:
  struct Impl;
  explicit SigningKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// `bytes` random bytes, base64url.
Result<std::string> random_token(size_t bytes);

// PKCE (RFC 7636): a verifier of 32 random bytes (43 characters) and its S256 challenge,
// base64url(SHA-256(verifier)).
Result<std::string> new_pkce_verifier();
std::string pkce_s256_challenge(std::string_view verifier);

// A DPoP proof for `method` `url` (its query and fragment are left out of htu).
// `nonce` and `access_token` (→ ath) are included when not empty.
Result<std::string> dpop_proof(const SigningKey& key, std::string_view method, std::string_view url,
                               std::string_view nonce, int64_t now, std::string_view access_token = {});

// ---- Metadata (no I/O): what the documents must say.

// The authorization server the owner's PDS names, from its protected-resource metadata
// (`json_text` fetched from <pds>/.well-known/oauth-protected-resource): `resource` must
// be the PDS's own URL, `authorization_servers` exactly one issuer URL, allowed by the URL
// policy and without path, query or fragment.
Result<std::string> parse_protected_resource_metadata(std::string_view json_text, std::string_view pds_url);

struct AuthServerMetadata {
  std::string issuer;
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string par_endpoint;  // pushed_authorization_request_endpoint
};

// An authorization server's metadata (`json_text` from
// <issuer>/.well-known/oauth-authorization-server), checked against what this client
// needs: issuer equal to `expected_issuer`; the three endpoints present and allowed by the
// URL policy; response type "code", grant type authorization_code, PKCE S256, client auth
// "none", scope "atproto", DPoP with ES256, the `iss` response parameter, and client
// metadata documents supported. Errors say which member was wrong.
Result<AuthServerMetadata> parse_auth_server_metadata(std::string_view json_text, std::string_view expected_issuer);

// ---- The flow (blocking HTTP).

// Who this client is: its client_id (a client metadata URL, or the atproto loopback
// form "http://localhost?redirect_uri=…&scope=…") and the redirect URI it registered.
struct ClientIdentity {
  std::string client_id;
  std::string redirect_uri;
  std::string scope = "atproto";
};

// The loopback development form (atproto specs/oauth "Localhost Client Development"):
// client_id http://localhost?redirect_uri=<redirect_uri, encoded>&scope=<scope, encoded>.
ClientIdentity loopback_client(std::string_view redirect_uri, std::string_view scope = "atproto");

// Where a DID's logins go: its PDS and that PDS's authorization server.
struct Discovery {
  std::string pds_url;
  AuthServerMetadata server;
};
// `refresh` reads the DID document afresh rather than from the resolver's cache. An
// issuer or endpoint on this machine (localhost, 127.0.0.1, [::1]) is refused unless the
// PDS is on it too.
Result<Discovery> discover(DidResolver& resolver, std::string_view did, bool refresh = false);

// What a pushed authorization request gives back.
struct PushedRequest {
  std::string request_uri;
  std::string dpop_nonce;  // the server's latest, for the token request
};
Result<PushedRequest> push_authorization_request(const AuthServerMetadata& server, const ClientIdentity& client,
                                                 const SigningKey& key, std::string_view state,
                                                 std::string_view code_challenge, std::string_view login_hint,
                                                 std::string dpop_nonce);

// The browser's way to the authorization server: <authorization_endpoint>?client_id=…&request_uri=….
std::string authorization_url(const AuthServerMetadata& server, const ClientIdentity& client,
                              std::string_view request_uri);

// What the token response says about who signed in. The access and refresh tokens are
// not kept: this client proves identity only, and never calls the PDS with them.
struct SignedIn {
  std::string sub;    // the account's DID
  std::string scope;  // as granted
};
// The authorization code for tokens; checks token_type "DPoP", `sub` a DID, `scope`
// holding "atproto", and an access token present.
Result<SignedIn> exchange_code(const AuthServerMetadata& server, const ClientIdentity& client, const SigningKey& key,
                               std::string_view code, std::string_view code_verifier, std::string dpop_nonce);

// Reads a token endpoint's answer (no I/O): the checks of exchange_code.
Result<SignedIn> parse_token_response(std::string_view json_text);

}  // namespace gm::atproto::oauth
