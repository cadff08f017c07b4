#include "atproto/oauth_client.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "atproto/did.h"
#include "atproto/dpop.h"
#include "atproto/http_client.h"
#include "atproto/jwt.h"
#include "util/base64url.h"
#include "util/sha256.h"
#include "util/text.h"

namespace gm::atproto::oauth {
namespace {

using nlohmann::json;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct GroupFree {
  void operator()(EC_GROUP* g) const { EC_GROUP_free(g); }
};

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A URL as an origin: scheme://host[:port] and nothing after it.
bool is_origin_url(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return false;
  return url.find_first_of("/?#", scheme_end + 3) == std::string_view::npos;
}

std::string_view without_trailing_slash(std::string_view url) {
  while (url.size() > 1 && url.back() == '/') url.remove_suffix(1);
  return url;
}

// The URL up to its query or fragment (a DPoP proof's htu).
std::string_view without_query(std::string_view url) { return url.substr(0, url.find_first_of("?#")); }

bool has_string(const json& object, const char* member, std::string_view value) {
  auto it = object.find(member);
  if (it == object.end() || !it->is_array()) return false;
  return std::any_of(it->begin(), it->end(), [&](const json& v) { return v.is_string() && v.get_ref<const std::string&>() == value; });
}

Result<json> parse_object(std::string_view text, std::string_view what) {
  if (text.size() > kMaxOAuthDocumentBytes) {
    return limit_error(std::string(what) + " is larger than " + std::to_string(kMaxOAuthDocumentBytes) + " bytes");
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return error(std::string(what) + " is not a JSON object");
  return j;
}

// "<error>: <error_description>" of an OAuth error answer, printable; or the HTTP status.
std::string oauth_error_text(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  std::string out = "HTTP " + std::to_string(r.status);
  if (!j.is_object()) return out;
  if (const std::string* e = string_claim(j, "error")) out += ": " + printable(*e, 100);
  if (const std::string* d = string_claim(j, "error_description")) out += ": " + printable(*d, 300);
  return out;
}

HttpOptions call_options() {
  HttpOptions options;
  options.timeout = kOAuthCallTimeout;
  options.max_response_bytes = kMaxOAuthDocumentBytes;
  options.headers.push_back("Accept: application/json");
  return options;
}

// GET of a metadata document: 200 and its body, or why not.
Result<std::string> fetch_document(const std::string& url, std::string_view what) {
  GM_ASSIGN_OR_RETURN(HttpResult r, http_get(url, call_options()));
  if (r.status != 200) return error(std::string(what) + " at " + url + ": HTTP " + std::to_string(r.status));
  return std::move(r.body);
}

// POST of a form to the authorization server with a DPoP proof; a use_dpop_nonce answer
// is retried once with the nonce it brought. `nonce` becomes the server's latest.
Result<HttpResult> post_with_dpop(const std::string& url, const FormFields& fields, const SigningKey& key,
                                  std::string& nonce) {
  for (int attempt = 0;; ++attempt) {
    GM_ASSIGN_OR_RETURN(std::string proof, dpop_proof(key, "POST", url, nonce, unix_now()));
    HttpOptions options = call_options();
    options.headers.push_back("DPoP: " + proof);
    GM_ASSIGN_OR_RETURN(HttpResult r, http_post_form(url, fields, options));
    std::string sent_nonce = nonce;
    if (auto it = r.headers.find("dpop-nonce"); it != r.headers.end() && !it->second.empty()) {
      if (it->second.size() > 1024) return error("POST " + url + ": a DPoP-Nonce of more than 1024 bytes");
      nonce = it->second;
    }
    const bool wants_nonce = (r.status == 400 || r.status == 401) && [&] {
      json j = json::parse(r.body, nullptr, false);
      const std::string* e = j.is_object() ? string_claim(j, "error") : nullptr;
      return e != nullptr && *e == "use_dpop_nonce";
    }();
    if (!wants_nonce) return r;
    if (attempt > 0 || nonce == sent_nonce) {
      return error("POST " + url + ": the authorization server keeps asking for a DPoP nonce (use_dpop_nonce)");
    }
  }
}

}  // namespace

// ---- Keys and proofs.

struct SigningKey::Impl {
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey;
  PublicKey public_key;
};

Result<SigningKey> SigningKey::generate() {
  auto impl = std::make_shared<Impl>();
  impl->pkey.reset(EVP_EC_gen("P-256"));
  if (!impl->pkey) return error("could not generate a P-256 key (OpenSSL)");
  std::array<unsigned char, 65> point{};
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(impl->pkey.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(), point.size(),
                                      &len) != 1) {
    return error("could not read the new P-256 key's public point (OpenSSL)");
  }
  GM_ASSIGN_OR_RETURN(impl->public_key, parse_sec1(Curve::kP256, ByteView(point.data(), len)));
  return SigningKey(std::move(impl));
}

PublicKey SigningKey::public_key() const { return impl_->public_key; }

json SigningKey::public_jwk() const {
  const Bytes point = uncompressed_point(impl_->public_key);  // 04 || x || y
  return {{"kty", "EC"},
          {"crv", "P-256"},
          {"x", base64url_encode(ByteView(point.data() + 1, 32))},
          {"y", base64url_encode(ByteView(point.data() + 33, 32))}};
}

Result<std::string> SigningKey::sign_jws(json header, const json& payload) const {
  header["alg"] = "ES256";
  const std::string input = base64url_encode(as_bytes(dump(header))) + "." + base64url_encode(as_bytes(dump(payload)));

  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t der_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &der_len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    return error("could not sign (OpenSSL)");
  }
  Bytes der(der_len);
  if (EVP_DigestSign(ctx.get(), der.data(), &der_len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    return error("could not sign (OpenSSL)");
  }
  // OpenSSL gives DER; atproto wants 64 bytes r||s with s <= n/2 (keys.h).
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, SigFree> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  std::unique_ptr<EC_GROUP, GroupFree> group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  if (!sig || !group) return error("could not read OpenSSL's signature");
  const BIGNUM* order = EC_GROUP_get0_order(group.get());
  std::unique_ptr<BIGNUM, BnFree> half(BN_dup(order));
  std::unique_ptr<BIGNUM, BnFree> s(BN_dup(ECDSA_SIG_get0_s(sig.get())));
  if (!half || !s || BN_rshift1(half.get(), half.get()) != 1) return error("out of memory signing");
  if (BN_cmp(s.get(), half.get()) > 0 && BN_sub(s.get(), order, s.get()) != 1) return error("out of memory signing");
  std::array<unsigned char, 64> compact{};
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), compact.data(), 32) != 32 ||
      BN_bn2binpad(s.get(), compact.data() + 32, 32) != 32) {
    return error("could not encode the signature");
  }
  return input + "." + base64url_encode(ByteView(compact.data(), compact.size()));
}

Result<std::string> random_token(size_t bytes) {
  Bytes random(bytes);
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) return error("no randomness (OpenSSL)");
  return base64url_encode(random);
}

Result<std::string> new_pkce_verifier() { return random_token(32); }

std::string pkce_s256_challenge(std::string_view verifier) {
  const Sha256Digest digest = sha256(as_bytes(verifier));
  return base64url_encode(ByteView(digest.data(), digest.size()));
}

Result<std::string> dpop_proof(const SigningKey& key, std::string_view method, std::string_view url,
                               std::string_view nonce, int64_t now, std::string_view access_token) {
  GM_ASSIGN_OR_RETURN(std::string jti, random_token(16));
  json payload = {{"jti", jti}, {"htm", method}, {"htu", without_query(url)}, {"iat", now}};
  if (!nonce.empty()) payload["nonce"] = nonce;
  if (!access_token.empty()) {
    const Sha256Digest digest = sha256(as_bytes(access_token));
    payload["ath"] = base64url_encode(ByteView(digest.data(), digest.size()));
  }
  return key.sign_jws({{"typ", "dpop+jwt"}, {"jwk", key.public_jwk()}}, payload);
}

// ---- Metadata.

Result<std::string> parse_protected_resource_metadata(std::string_view json_text, std::string_view pds_url) {
  GM_ASSIGN_OR_RETURN(json j, parse_object(json_text, "the PDS's protected-resource metadata"));
  const std::string* resource = string_claim(j, "resource");
  if (!resource || without_trailing_slash(*resource) != without_trailing_slash(pds_url)) {
    return error("the PDS's protected-resource metadata names resource \"" +
                 (resource ? printable(*resource, 200) : std::string()) + "\", not the PDS " + std::string(pds_url));
  }
  auto servers = j.find("authorization_servers");
  if (servers == j.end() || !servers->is_array() || servers->size() != 1 || !(*servers)[0].is_string()) {
    return error("the PDS's protected-resource metadata must name exactly one authorization server "
                 "(authorization_servers)");
  }
  const std::string issuer = (*servers)[0].get<std::string>();
  if (Status s = check_url(issuer); !s.ok()) return context("the PDS's authorization server", s.error());
  if (!is_origin_url(issuer)) {
    return error("the PDS's authorization server \"" + printable(issuer, 200) +
                 "\" is not an origin (scheme://host[:port], nothing after it)");
  }
  return issuer;
}

Result<AuthServerMetadata> parse_auth_server_metadata(std::string_view json_text, std::string_view expected_issuer) {
  GM_ASSIGN_OR_RETURN(json j, parse_object(json_text, "the authorization server's metadata"));
  const std::string what = "the authorization server's metadata (" + std::string(expected_issuer) + ")";
  AuthServerMetadata m;
  const std::string* issuer = string_claim(j, "issuer");
  if (!issuer || *issuer != expected_issuer) {
    return error(what + ": issuer is \"" + (issuer ? printable(*issuer, 200) : std::string()) + "\", not \"" +
                 std::string(expected_issuer) + "\"");
  }
  m.issuer = *issuer;
  struct Endpoint {
    const char* member;
    std::string* into;
  };
  for (const Endpoint& e : {Endpoint{"authorization_endpoint", &m.authorization_endpoint},
                            Endpoint{"token_endpoint", &m.token_endpoint},
                            Endpoint{"pushed_authorization_request_endpoint", &m.par_endpoint}}) {
    const std::string* url = string_claim(j, e.member);
    if (!url || url->empty()) return error(what + ": no " + e.member);
    if (Status s = check_url(*url); !s.ok()) return context(what + ": " + e.member, s.error());
    *e.into = *url;
  }
  struct Needed {
    const char* member;
    const char* value;
  };
  for (const Needed& n : {Needed{"response_types_supported", "code"},
                          Needed{"grant_types_supported", "authorization_code"},
                          Needed{"code_challenge_methods_supported", "S256"},
                          Needed{"token_endpoint_auth_methods_supported", "none"},
                          Needed{"scopes_supported", "atproto"},
                          Needed{"dpop_signing_alg_values_supported", "ES256"}}) {
    if (!has_string(j, n.member, n.value)) {
      return error(what + ": " + n.member + " does not list \"" + n.value + "\", which this client needs");
    }
  }
  for (const char* flag : {"authorization_response_iss_parameter_supported", "client_id_metadata_document_supported"}) {
    auto it = j.find(flag);
    if (it == j.end() || !it->is_boolean() || !it->get<bool>()) {
      return error(what + ": " + flag + " is not true, as the atproto OAuth profile requires");
    }
  }
  return m;
}

// ---- The flow.

ClientIdentity loopback_client(std::string_view redirect_uri, std::string_view scope) {
  ClientIdentity client;
  client.redirect_uri = std::string(redirect_uri);
  client.scope = std::string(scope);
  client.client_id = "http://localhost?redirect_uri=" + percent_encode(redirect_uri) + "&scope=" + percent_encode(scope);
  return client;
}

Result<Discovery> discover(DidResolver& resolver, std::string_view did, bool refresh) {
  GM_ASSIGN_OR_RETURN(DidDocument doc, resolver.resolve(did, refresh));
  if (doc.pds_endpoint.empty()) return error("the DID document of " + std::string(did) + " names no PDS (#atproto_pds)");
  Discovery d;
  d.pds_url = doc.pds_endpoint;
  GM_ASSIGN_OR_RETURN(std::string prm, fetch_document(d.pds_url + "/.well-known/oauth-protected-resource",
                                                      "the PDS's protected-resource metadata"));
  GM_ASSIGN_OR_RETURN(std::string issuer, parse_protected_resource_metadata(prm, d.pds_url));
  GM_ASSIGN_OR_RETURN(std::string asm_text, fetch_document(issuer + "/.well-known/oauth-authorization-server",
                                                           "the authorization server's metadata"));
  GM_ASSIGN_OR_RETURN(d.server, parse_auth_server_metadata(asm_text, issuer));
  // The URL policy lets plain http reach this machine (a development PDS here). A remote
  // PDS may not send the server there: its metadata would make it POST to whatever
  // listens on the machine's loopback and show the answer to whoever started a sign-in.
  if (!is_loopback_url(d.pds_url)) {
    for (const std::string* url : {&d.server.issuer, &d.server.authorization_endpoint, &d.server.token_endpoint,
                                   &d.server.par_endpoint}) {
      if (is_loopback_url(*url)) {
        return error("the authorization server of the PDS " + d.pds_url + " names this machine (" +
                     printable(*url, 200) + "): refused for a PDS that is not on it");
      }
    }
  }
  return d;
}

Result<PushedRequest> push_authorization_request(const AuthServerMetadata& server, const ClientIdentity& client,
                                                 const SigningKey& key, std::string_view state,
                                                 std::string_view code_challenge, std::string_view login_hint,
                                                 std::string dpop_nonce) {
  FormFields fields = {{"client_id", client.client_id},
                       {"response_type", "code"},
                       {"redirect_uri", client.redirect_uri},
                       {"scope", client.scope},
                       {"state", std::string(state)},
                       {"code_challenge", std::string(code_challenge)},
                       {"code_challenge_method", "S256"}};
  if (!login_hint.empty()) fields.emplace_back("login_hint", std::string(login_hint));
  GM_ASSIGN_OR_RETURN(HttpResult r, post_with_dpop(server.par_endpoint, fields, key, dpop_nonce));
  if (r.status != 201 && r.status != 200) {
    return error("the authorization server refused the sign-in request for client " + client.client_id + " (PAR at " +
                 server.par_endpoint + "): " + oauth_error_text(r));
  }
  GM_ASSIGN_OR_RETURN(json j, parse_object(r.body, "the PAR answer"));
  const std::string* request_uri = string_claim(j, "request_uri");
  if (!request_uri || request_uri->empty() || request_uri->size() > 2048) {
    return error("the PAR answer from " + server.par_endpoint + " has no usable request_uri");
  }
  return PushedRequest{*request_uri, std::move(dpop_nonce)};
}

std::string authorization_url(const AuthServerMetadata& server, const ClientIdentity& client,
                              std::string_view request_uri) {
  const char joiner = server.authorization_endpoint.find('?') == std::string::npos ? '?' : '&';
  return server.authorization_endpoint + joiner + "client_id=" + percent_encode(client.client_id) +
         "&request_uri=" + percent_encode(request_uri);
}

Result<SignedIn> parse_token_response(std::string_view json_text) {
  GM_ASSIGN_OR_RETURN(json j, parse_object(json_text, "the token answer"));
  const std::string* access_token = string_claim(j, "access_token");
  if (!access_token || access_token->empty()) return error("the token answer has no access_token");
  const std::string* type = string_claim(j, "token_type");
  if (!type || ascii_lower(*type) != "dpop") {
    return error("the token answer's token_type is \"" + (type ? printable(*type, 40) : std::string()) +
                 "\", not DPoP");
  }
  const std::string* sub = string_claim(j, "sub");
  if (!sub || !is_did(*sub)) return error("the token answer's sub is not a DID");
  const std::string* scope = string_claim(j, "scope");
  bool atproto = false;
  if (scope) {
    for (size_t at = 0; at <= scope->size();) {
      size_t end = scope->find(' ', at);
      if (end == std::string::npos) end = scope->size();
      if (std::string_view(*scope).substr(at, end - at) == "atproto") atproto = true;
      at = end + 1;
    }
  }
  if (!atproto) return error("the token answer's scope does not hold \"atproto\"");
  return SignedIn{*sub, *scope};
}

Result<SignedIn> exchange_code(const AuthServerMetadata& server, const ClientIdentity& client, const SigningKey& key,
                               std::string_view code, std::string_view code_verifier, std::string dpop_nonce) {
  const FormFields fields = {{"grant_type", "authorization_code"},
                             {"code", std::string(code)},
                             {"redirect_uri", client.redirect_uri},
                             {"client_id", client.client_id},
                             {"code_verifier", std::string(code_verifier)}};
  GM_ASSIGN_OR_RETURN(HttpResult r, post_with_dpop(server.token_endpoint, fields, key, dpop_nonce));
  if (r.status != 200) {
    return error("the authorization server refused the code (token endpoint " + server.token_endpoint +
                 "): " + oauth_error_text(r));
  }
  return parse_token_response(r.body);
}

}  // namespace gm::atproto::oauth
