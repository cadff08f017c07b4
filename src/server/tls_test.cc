#include "server/tls.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace gm::server {
namespace {

// A P-256 key and a certificate for it, self-signed unless an issuer is given, as PEM.
struct Made {
  std::string cert_pem;
  std::string key_pem;
  std::string encrypted_key_pem;
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Made() {
    EVP_PKEY_free(key);
    X509_free(cert);
  }
};

std::string pem_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  std::string out(mem->data, mem->length);
  BIO_free(bio);
  return out;
}

std::string pem_of(EVP_PKEY* key, const char* passphrase = nullptr) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (passphrase != nullptr) {
    PEM_write_bio_PrivateKey(bio, key, EVP_aes_256_cbc(), reinterpret_cast<const unsigned char*>(passphrase),
                             static_cast<int>(std::strlen(passphrase)), nullptr, nullptr);
  } else {
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  }
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  std::string out(mem->data, mem->length);
  BIO_free(bio);
  return out;
}

void make(Made& m, const char* cn, const Made* issuer = nullptr) {
  m.key = EVP_EC_gen("P-256");
  ASSERT_NE(m.key, nullptr);
  m.cert = X509_new();
  X509_set_version(m.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(m.cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(m.cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(m.cert), 3600L * 24 * 30);
  X509_set_pubkey(m.cert, m.key);
  X509_NAME* name = X509_get_subject_name(m.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(m.cert, issuer != nullptr ? X509_get_subject_name(issuer->cert) : name);
  ASSERT_GT(X509_sign(m.cert, issuer != nullptr ? issuer->key : m.key, EVP_sha256()), 0);
  m.cert_pem = pem_of(m.cert);
  m.key_pem = pem_of(m.key);
  m.encrypted_key_pem = pem_of(m.key, "secret");
}

class TlsLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gm-tls-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    make(ca_, "Test CA");
    make(server_, "localhost", &ca_);
    make(other_, "other");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // The error message of loading `cert` and `key` (texts), which must fail.
  std::string refusal(const std::string& cert, const std::string& key) {
    auto loaded = load_tls_context(write("cert.pem", cert), write("key.pem", key));
    EXPECT_FALSE(loaded.ok());
    return loaded.ok() ? std::string() : loaded.error().message;
  }

  std::string dir_;
  Made ca_, server_, other_;
};

TEST_F(TlsLoad, LoadsACertificateItsChainAndItsKey) {
  auto loaded = load_tls_context(write("cert.pem", server_.cert_pem + ca_.cert_pem), write("key.pem", server_.key_pem));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_NE(loaded->context, nullptr);
  EXPECT_EQ(loaded->certificate.subject, "CN=localhost");
  EXPECT_EQ(loaded->certificate.chain_length, 1u);
  EXPECT_GT(loaded->certificate.seconds_left, 29 * 86400);
  EXPECT_EQ(loaded->certificate.sha256.size(), 32u * 3 - 1);  // "AB:CD:…", as node's fingerprint256
  EXPECT_NE(describe(loaded->certificate).find("CN=localhost"), std::string::npos);

  auto alone = load_tls_context(write("self.pem", other_.cert_pem), write("self.key", other_.key_pem));
  ASSERT_TRUE(alone.ok()) << alone.error().message;
  EXPECT_EQ(alone->certificate.chain_length, 0u);
}

TEST_F(TlsLoad, MissingOrEmptyFilesAreNamed) {
  auto missing = load_tls_context(dir_ + "/nope.pem", write("key.pem", server_.key_pem));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find(dir_ + "/nope.pem"), std::string::npos) << missing.error().message;
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos) << missing.error().message;

  auto missing_key = load_tls_context(write("cert.pem", server_.cert_pem), dir_ + "/nokey.pem");
  ASSERT_FALSE(missing_key.ok());
  EXPECT_NE(missing_key.error().message.find("TLS key " + dir_ + "/nokey.pem"), std::string::npos);

  EXPECT_NE(refusal("", server_.key_pem).find("empty"), std::string::npos);
}

TEST_F(TlsLoad, SaysWhatIsWrongWithTheFiles) {
  const std::string garbage = refusal("hello, not a certificate\n", server_.key_pem);
  EXPECT_NE(garbage.find("TLS certificate " + dir_ + "/cert.pem"), std::string::npos) << garbage;
  EXPECT_NE(garbage.find("no PEM certificate"), std::string::npos) << garbage;

  const std::string swapped = refusal(server_.key_pem, server_.cert_pem);
  EXPECT_NE(swapped.find("swapped"), std::string::npos) << swapped;

  const std::string cert_as_key = refusal(server_.cert_pem, server_.cert_pem);
  EXPECT_NE(cert_as_key.find("TLS key"), std::string::npos) << cert_as_key;
  EXPECT_NE(cert_as_key.find("not a private key"), std::string::npos) << cert_as_key;

  const std::string not_its_key = refusal(server_.cert_pem, other_.key_pem);
  EXPECT_NE(not_its_key.find("does not belong to the certificate"), std::string::npos) << not_its_key;

  const std::string encrypted = refusal(server_.cert_pem, server_.encrypted_key_pem);
  EXPECT_NE(encrypted.find("encrypted"), std::string::npos) << encrypted;

  // A chain certificate cut short.
  std::string broken_chain = ca_.cert_pem;
  broken_chain.erase(broken_chain.size() / 2, 40);
  const std::string chain = refusal(server_.cert_pem + broken_chain, server_.key_pem);
  EXPECT_NE(chain.find("certificate 2"), std::string::npos) << chain;
}

}  // namespace
}  // namespace gm::server
