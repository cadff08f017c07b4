#include "atproto/did.h"

#include <gtest/gtest.h>

#include "atproto/testing.h"

namespace gm::atproto {
namespace {

using testing::hex_bytes;
using testing::vectors;

const nlohmann::json* identity_for(const std::string& did) {
  for (const auto& id : vectors()["identities"]) {
    if (id["did"] == did) return &id;
  }
  return nullptr;
}

TEST(Did, Syntax) {
  for (const char* good : {"did:plc:torlb4mwutoyjwu4svnruovp", "did:web:example.com", "did:key:zQ3shjFzbu4xx6u5",
                           "did:method:val:two", "did:m:a%3Ab", "did:web:localhost%3A1234", "did:x:A.b_c-d"}) {
    EXPECT_TRUE(is_did(good)) << good;
  }
  for (const char* bad :
       {"", "did:", "did:plc:", "did::abc", "DID:plc:abc", "did:PLC:abc", "did:pl1:abc", "did:plc:abc:", "did:plc:abc%",
        "did:plc:ab#c", "did:plc:a/b", "did:plc:a b", "did:plc:a?b", "plc:abc"}) {
    EXPECT_FALSE(is_did(bad)) << bad;
  }
  EXPECT_TRUE(is_did("did:x:" + std::string(kMaxDidLength - 6, 'a')));
  EXPECT_FALSE(is_did("did:x:" + std::string(kMaxDidLength - 5, 'a')));
}

TEST(Did, AtprotoDids) {
  for (const char* good :
       {"did:plc:torlb4mwutoyjwu4svnruovp", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:web:carol.groundmist.test",
        "did:web:localhost", "did:web:localhost%3A2583", "did:web:127.0.0.1%3a8080", "did:web:sub-1.example.com"}) {
    EXPECT_TRUE(is_atproto_did(good)) << good;
  }
  for (const char* bad :
       {"did:key:zQ3shjFzbu4xx6u5bP5TYXDcGNxFNq2Y5NztNNkprCb3yN9Ka", "did:plc:torlb4mwutoyjwu4svnruov",
        "did:plc:torlb4mwutoyjwu4svnruovpp", "did:plc:TORLB4MWUTOYJWU4SVNRUOVP", "did:plc:torlb4mwutoyjwu4svnruov1",
        "did:web:example.com%3A443", "did:web:example.com:path", "did:web:-bad.com", "did:web:a..b",
        "did:web:localhost%3A", "did:web:localhost%3A99999", "did:web:localhost%2F", "did:web:exa_mple.com"}) {
    EXPECT_FALSE(is_atproto_did(bad)) << bad;
  }
}

TEST(Did, DocumentUrls) {
  for (const auto& id : vectors()["identities"]) {
    SCOPED_TRACE(id["did"].get<std::string>());
    const auto& res = id["resolution"];
    std::string expected = res.contains("plc_get_url") ? res["plc_get_url"] : res["did_web_url"];
    EXPECT_EQ(did_document_url(id["did"].get<std::string>(), kDefaultPlcUrl).value(), expected);
  }
  EXPECT_EQ(did_document_url("did:plc:torlb4mwutoyjwu4svnruovp", "http://127.0.0.1:2582/").value(),
            "http://127.0.0.1:2582/did:plc:torlb4mwutoyjwu4svnruovp");
  EXPECT_EQ(did_document_url("did:web:localhost%3A1234", kDefaultPlcUrl).value(),
            "http://localhost:1234/.well-known/did.json");
  EXPECT_EQ(did_document_url("did:web:127.0.0.1", kDefaultPlcUrl).value(), "http://127.0.0.1/.well-known/did.json");
  EXPECT_EQ(did_document_url(service_did("sync.groundmist.test"), kDefaultPlcUrl).value(),
            "https://sync.groundmist.test/.well-known/did.json");
  EXPECT_FALSE(did_document_url("did:web:example.com%3A8443", kDefaultPlcUrl).ok());
  EXPECT_FALSE(did_document_url("did:key:zQ3shjFzbu4xx6u5bP5TYXDcGNxFNq2Y5NztNNkprCb3yN9Ka", kDefaultPlcUrl).ok());
  EXPECT_FALSE(did_document_url("did:plc:torlb4mwutoyjwu4svnruovp", "plc.directory").ok());
}

void expect_identity(const DidDocument& doc, const nlohmann::json& identity, bool legacy) {
  const auto& key = testing::vector_key(identity["atproto_key"]);
  ASSERT_TRUE(doc.atproto_key.has_value()) << doc.atproto_key_error;
  EXPECT_TRUE(doc.atproto_key_error.empty());
  EXPECT_EQ(doc.atproto_key->curve, testing::vector_curve(key));
  EXPECT_EQ(doc.atproto_key->sec1,
            hex_bytes(key[legacy ? "public_key_uncompressed_hex" : "public_key_compressed_hex"].get<std::string>()));
  EXPECT_EQ(compressed_point(*doc.atproto_key), hex_bytes(key["public_key_compressed_hex"].get<std::string>()));
  EXPECT_EQ(doc.pds_endpoint, identity["pds"].get<std::string>());
  EXPECT_EQ(doc.handle, identity["handle"].get<std::string>());
}

TEST(Did, EveryFakeNetworkDocumentParses) {
  int with_key = 0;
  for (const auto& [url, body] : vectors()["fake_network"]["routes"].items()) {
    SCOPED_TRACE(url);
    std::string did = body["id"];
    auto doc = parse_did_document(body.dump(), did);
    ASSERT_TRUE(doc.ok()) << doc.error().message;
    EXPECT_EQ(doc->id, did);
    if (const nlohmann::json* identity = identity_for(did)) {
      expect_identity(*doc, *identity, false);
      ++with_key;
    } else {
      // The sync server's own document: no key, no PDS.
      EXPECT_EQ(did, "did:web:sync.groundmist.test");
      EXPECT_FALSE(doc->atproto_key.has_value());
      EXPECT_NE(doc->atproto_key_error.find("no #atproto"), std::string::npos);
      EXPECT_FALSE(atproto_signing_key(*doc).ok());
      EXPECT_TRUE(doc->pds_endpoint.empty());
    }
  }
  EXPECT_EQ(with_key, 3);
}

TEST(Did, IdentityAndLegacyDocumentsParse) {
  int legacy_docs = 0;
  for (const auto& identity : vectors()["identities"]) {
    SCOPED_TRACE(identity["label"].get<std::string>());
    std::string did = identity["did"];
    auto doc = parse_did_document(identity["did_document"].dump(2), did);
    ASSERT_TRUE(doc.ok()) << doc.error().message;
    expect_identity(*doc, identity, false);
    if (identity.contains("legacy_did_document")) {
      auto legacy = parse_did_document(identity["legacy_did_document"].dump(), did);
      ASSERT_TRUE(legacy.ok()) << legacy.error().message;
      expect_identity(*legacy, identity, true);
      ++legacy_docs;
    }
  }
  EXPECT_EQ(legacy_docs, 2);
}

nlohmann::json alice_doc() { return vectors()["identities"][0]["did_document"]; }
const std::string kAlice = "did:plc:torlb4mwutoyjwu4svnruovp";

TEST(Did, DocumentRefusals) {
  auto bad = [](const std::string& text, const std::string& did) { return !parse_did_document(text, did).ok(); };
  EXPECT_TRUE(bad(alice_doc().dump(), "did:plc:tqipppck3hpypsoltak6qtgi"));  // id mismatch
  auto mismatch = parse_did_document(alice_doc().dump(), "did:plc:tqipppck3hpypsoltak6qtgi");
  EXPECT_NE(mismatch.error().message.find("does not match"), std::string::npos);
  EXPECT_TRUE(bad("", kAlice));
  EXPECT_TRUE(bad("not json", kAlice));
  EXPECT_TRUE(bad("[1,2]", kAlice));
  EXPECT_TRUE(bad("\"did\"", kAlice));
  EXPECT_TRUE(bad("{\"id\": 5}", kAlice));
  EXPECT_TRUE(bad("{}", kAlice));
  std::string text = alice_doc().dump();
  EXPECT_TRUE(bad(text.substr(0, text.size() / 2), kAlice));  // truncated
  nlohmann::json huge = alice_doc();
  huge["padding"] = std::string(kMaxDidDocumentBytes, 'x');
  EXPECT_TRUE(bad(huge.dump(), kAlice));
  // Deep nesting within the size limit is just JSON.
  std::string deep = "{\"id\":\"" + kAlice + "\",\"x\":" + std::string(20000, '[') + std::string(20000, ']') + "}";
  EXPECT_FALSE(bad(deep, kAlice));
}

DidDocument parse_ok(const nlohmann::json& j) {
  auto doc = parse_did_document(j.dump(), kAlice);
  EXPECT_TRUE(doc.ok()) << doc.error().message;
  return doc.ok() ? *doc : DidDocument{};
}

TEST(Did, KeySelection) {
  nlohmann::json j = alice_doc();
  auto& vm = j["verificationMethod"][0];

  // Relative id works as well as the absolute one.
  vm["id"] = "#atproto";
  EXPECT_TRUE(parse_ok(j).atproto_key.has_value());

  // The controller of a Multikey must be the DID.
  vm["controller"] = "did:plc:tqipppck3hpypsoltak6qtgi";
  DidDocument d = parse_ok(j);
  EXPECT_FALSE(d.atproto_key.has_value());
  EXPECT_NE(d.atproto_key_error.find("controller"), std::string::npos) << d.atproto_key_error;
  vm.erase("controller");
  EXPECT_FALSE(parse_ok(j).atproto_key.has_value());
  vm["controller"] = kAlice;

  // Wrong types of fields: the document parses, the key does not.
  for (nlohmann::json broken : {nlohmann::json(5), nlohmann::json("zzz"), nlohmann::json(nullptr)}) {
    nlohmann::json k = j;
    k["verificationMethod"][0]["publicKeyMultibase"] = broken;
    EXPECT_FALSE(parse_ok(k).atproto_key.has_value());
  }
  nlohmann::json other_type = j;
  other_type["verificationMethod"][0]["type"] = "Ed25519VerificationKey2020";
  EXPECT_FALSE(parse_ok(other_type).atproto_key.has_value());
  nlohmann::json not_array = j;
  not_array["verificationMethod"] = "x";
  EXPECT_FALSE(parse_ok(not_array).atproto_key.has_value());
  nlohmann::json other_fragment = j;
  other_fragment["verificationMethod"][0]["id"] = kAlice + "#atproto_label";
  EXPECT_FALSE(parse_ok(other_fragment).atproto_key.has_value());
  nlohmann::json other_did = j;
  other_did["verificationMethod"][0]["id"] = "did:plc:tqipppck3hpypsoltak6qtgi#atproto";
  EXPECT_FALSE(parse_ok(other_did).atproto_key.has_value());

  // The first #atproto entry counts; entries before it with other ids are skipped.
  nlohmann::json two = j;
  nlohmann::json bob_key = vectors()["identities"][1]["did_document"]["verificationMethod"][0];
  bob_key["id"] = "#atproto";
  bob_key["controller"] = kAlice;
  nlohmann::json label = vm;
  label["id"] = "#atproto_label";
  label["publicKeyMultibase"] = bob_key["publicKeyMultibase"];
  two["verificationMethod"] = {label, "junk", vm, bob_key};
  DidDocument first = parse_ok(two);
  ASSERT_TRUE(first.atproto_key.has_value());
  EXPECT_EQ(first.atproto_key->curve, Curve::kSecp256k1);
  // A broken first #atproto entry is not replaced by a later one.
  two["verificationMethod"][2]["publicKeyMultibase"] = "zBroken";
  EXPECT_FALSE(parse_ok(two).atproto_key.has_value());
}

TEST(Did, PdsAndHandle) {
  nlohmann::json j = alice_doc();
  auto& svc = j["service"][0];
  auto pds = [&]() { return parse_ok(j).pds_endpoint; };
  svc["id"] = kAlice + "#atproto_pds";
  EXPECT_EQ(pds(), "https://pds.groundmist.test");
  svc["serviceEndpoint"] = "https://pds.example.com/";
  EXPECT_EQ(pds(), "https://pds.example.com");
  svc["serviceEndpoint"] = "http://localhost:2583";
  EXPECT_EQ(pds(), "http://localhost:2583");
  svc["serviceEndpoint"] = "http://[::1]:2583";
  EXPECT_EQ(pds(), "http://[::1]:2583");
  for (nlohmann::json bad : {nlohmann::json("https://pds.example.com/xrpc"), nlohmann::json("ftp://pds.example.com"),
                             nlohmann::json("https://user@pds.example.com"), nlohmann::json("https://"),
                             nlohmann::json("https://pds.example.com:0"), nlohmann::json("https://pds.example.com?x"),
                             nlohmann::json(5), nlohmann::json::object()}) {
    svc["serviceEndpoint"] = bad;
    EXPECT_EQ(pds(), "") << bad.dump();
  }
  svc["serviceEndpoint"] = "https://pds.groundmist.test";
  svc["type"] = "Other";
  EXPECT_EQ(pds(), "");

  nlohmann::json h = alice_doc();
  h["alsoKnownAs"] = {"https://alice.example", "at://Alice.Example.COM", "at://second.example.com"};
  EXPECT_EQ(parse_ok(h).handle, "alice.example.com");
  h["alsoKnownAs"] = {"at://not a handle", "at://second.example.com"};
  EXPECT_EQ(parse_ok(h).handle, std::nullopt);
  h["alsoKnownAs"] = {"at://localhost"};
  EXPECT_EQ(parse_ok(h).handle, std::nullopt);
  h["alsoKnownAs"] = 7;
  EXPECT_EQ(parse_ok(h).handle, std::nullopt);
}

TEST(Did, ServiceDocument) {
  const auto& expected = vectors()["service_did_document"];
  EXPECT_EQ(service_did("sync.groundmist.test"), vectors()["meta"]["service"]["did"].get<std::string>());
  EXPECT_EQ(service_did_document("sync.groundmist.test"), expected);
  EXPECT_EQ(service_did_document("Sync.Groundmist.Test"), expected);
  auto audiences = default_service_audiences("sync.groundmist.test");
  ASSERT_EQ(audiences.size(), 2u);
  EXPECT_EQ(audiences[0], vectors()["meta"]["service"]["aud"].get<std::string>());
  EXPECT_EQ(audiences[1], "did:web:sync.groundmist.test");

  EXPECT_EQ(service_did("localhost:1234"), "did:web:localhost%3A1234");
  EXPECT_TRUE(is_atproto_did(service_did("localhost:1234")));
  nlohmann::json local = service_did_document("localhost:1234");
  EXPECT_EQ(local["id"], "did:web:localhost%3A1234");
  EXPECT_EQ(local["service"][0]["serviceEndpoint"], "http://localhost:1234");
  EXPECT_EQ(service_did_document("127.0.0.1:3031")["service"][0]["serviceEndpoint"], "http://127.0.0.1:3031");
  // The server's own document parses as a DID document (no key, no PDS).
  auto own = parse_did_document(expected.dump(), "did:web:sync.groundmist.test");
  ASSERT_TRUE(own.ok());
}

}  // namespace
}  // namespace gm::atproto
