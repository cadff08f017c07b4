// DIDs and DID documents as atproto uses them (spec/atproto.md §3; atproto specs/did).
//
// Syntax: "did:" method ":" identifier, method = [a-z]+, identifier = [A-Za-z0-9._:%-]+
// not ending in ':' or '%', whole DID at most 2048 characters. atproto supports two
// methods:
//   did:plc:<24 chars of base32 [a-z2-7]>      document at <plc directory>/<did>
//   did:web:<hostname>                          document at https://<hostname>/.well-known/did.json
// A did:web names a hostname only (no path). A port, written "%3A<port>", is allowed only
// for local development hosts (localhost, 127.0.0.1), which are fetched over http.
//
// A DID document is JSON (at most kMaxDidDocumentBytes). What we read from it:
//   id                   must equal the DID that was resolved
//   alsoKnownAs[]        the first "at://<handle>" entry is the claimed handle (unverified)
//   verificationMethod[] the first entry with id "#atproto" or "<did>#atproto" is the
//                        signing key: type "Multikey" with controller <did> and a
//                        multikey publicKeyMultibase, or (legacy) type
//                        EcdsaSecp256k1VerificationKey2019 / EcdsaSecp256r1VerificationKey2019
//                        with an uncompressed-point publicKeyMultibase
//   service[]            the first entry with id "#atproto_pds" or "<did>#atproto_pds" and
//                        type AtprotoPersonalDataServer: serviceEndpoint, an http(s) origin
//
// Usage:
//   GM_ASSIGN_OR_RETURN(std::string url, did_document_url(did, "https://plc.directory"));
//   … fetch url …
//   GM_ASSIGN_OR_RETURN(DidDocument doc, parse_did_document(body, did));
//   GM_ASSIGN_OR_RETURN(PublicKey key, atproto_signing_key(doc));
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "atproto/keys.h"
#include "util/result.h"

namespace gm::atproto {

inline constexpr size_t kMaxDidLength = 2048;
inline constexpr size_t kMaxDidDocumentBytes = 64 * 1024;
inline constexpr std::string_view kDefaultPlcUrl = "https://plc.directory";

bool is_did(std::string_view s);
bool is_atproto_did(std::string_view s);

// URL of the DID document of an atproto DID (did:plc at `plc_url`, without a trailing
// slash needed; did:web at its host).
Result<std::string> did_document_url(std::string_view did, std::string_view plc_url);

struct DidDocument {
  std::string id;
  std::optional<PublicKey> atproto_key;
  // Why atproto_key is empty: no #atproto method, or what was wrong with it.
  std::string atproto_key_error;
  std::string pds_endpoint;           // "https://pds.example.com" (no trailing slash); empty if none valid
  std::optional<std::string> handle;  // lowercased, from the first at:// alsoKnownAs; not verified
};

// Errors only for a document that is not usable at all (too large, not a JSON object, id
// not `expected_did`); a missing or bad key or PDS leaves that field empty.
Result<DidDocument> parse_did_document(std::string_view json_text, std::string_view expected_did);
// The document's #atproto key, or an error saying why there is none.
Result<PublicKey> atproto_signing_key(const DidDocument& doc);

// The server's own identity. `public_host` is how clients reach it: "sync.example.com",
// or "localhost:3031" in development (→ did:web:localhost%3A3031, endpoint http://…).
std::string service_did(std::string_view public_host);
nlohmann::json service_did_document(std::string_view public_host);
// The service id inside that document and the audiences it accepts by default:
// "<service_did>#groundmist_sync" and the bare "<service_did>" (spec/atproto.md §2d).
inline constexpr std::string_view kServiceFragment = "#groundmist_sync";
std::vector<std::string> default_service_audiences(std::string_view public_host);

}  // namespace gm::atproto
