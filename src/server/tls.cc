#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>

namespace gm::server {
namespace {

// Owners of OpenSSL objects.
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The reason of the first error OpenSSL queued ("no start line", "bad base64 decode"),
// and the queue emptied.
std::string openssl_reason() {
  const unsigned long code = ERR_peek_error();
  std::string out;
  if (code != 0) {
    const char* reason = ERR_reason_error_string(code);
    out = reason != nullptr ? reason : "error " + std::to_string(code);
  }
  ERR_clear_error();
  return out.empty() ? "unknown OpenSSL error" : out;
}

Result<std::string> read_pem_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(std::string(what) + " " + path + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return error(std::string(what) + " " + path + ": cannot read: " + std::strerror(errno));
  std::string pem = std::move(text).str();
  if (pem.empty()) return error(std::string(what) + " " + path + ": the file is empty");
  return pem;
}

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bio_text(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  return mem == nullptr ? std::string() : std::string(mem->data, mem->length);
}

// Called by OpenSSL for an encrypted key: no passphrase (never a prompt on a terminal
// the server does not have); records that one was asked for.
int no_passphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

// ALPN: HTTP/1.1 is all this server speaks.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kHttp11, sizeof kHttp11, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

TlsCertificateInfo describe_certificate(X509* leaf, size_t chain_length) {
  TlsCertificateInfo info;
  info.chain_length = chain_length;
  if (BioPtr bio(BIO_new(BIO_s_mem())); bio) {
    X509_NAME_print_ex(bio.get(), X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253);
    info.subject = bio_text(bio.get());
  }
  if (const int at = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1); at >= 0) {
    if (BioPtr bio(BIO_new(BIO_s_mem())); bio && X509V3_EXT_print(bio.get(), X509_get_ext(leaf, at), 0, 0) == 1) {
      info.names = bio_text(bio.get());
    }
  }
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
  if (BioPtr bio(BIO_new(BIO_s_mem())); bio && ASN1_TIME_print(bio.get(), not_after) == 1) {
    info.not_after = bio_text(bio.get());
  }
  if (struct tm t {}; ASN1_TIME_to_tm(not_after, &t) == 1) info.not_after_unix = static_cast<int64_t>(timegm(&t));
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, not_after) == 1) {
    info.seconds_left = int64_t{days} * 86400 + seconds;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(leaf, EVP_sha256(), md, &n) == 1) {
    static const char kHex[] = "0123456789ABCDEF";
    for (unsigned int i = 0; i < n; ++i) {
      if (i > 0) info.sha256.push_back(':');
      info.sha256.push_back(kHex[md[i] >> 4]);
      info.sha256.push_back(kHex[md[i] & 15]);
    }
  }
  return info;
}

Result<TlsContext> load_tls_context(const std::string& cert_file, const std::string& key_file) {
  namespace ssl = boost::asio::ssl;
  ERR_clear_error();
  GM_ASSIGN_OR_RETURN(std::string cert_pem, read_pem_file(cert_file, "TLS certificate"));
  GM_ASSIGN_OR_RETURN(std::string key_pem, read_pem_file(key_file, "TLS key"));
  const std::string cert_where = "TLS certificate " + cert_file + ": ";
  const std::string key_where = "TLS key " + key_file + ": ";

  // The certificate file: the server's certificate first, then the chain up to (not
  // necessarily including) the root, as certificate authorities hand them out
  // (Let's Encrypt's fullchain.pem).
  BioPtr cert_bio = memory_bio(cert_pem);
  X509Ptr leaf(PEM_read_bio_X509_AUX(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) {
    const std::string reason = openssl_reason();
    if (cert_pem.find("PRIVATE KEY-----") != std::string::npos) {
      return error(cert_where + "holds a private key, not a certificate (--tls-cert and --tls-key swapped?)");
    }
    return error(cert_where + "no PEM certificate (-----BEGIN CERTIFICATE-----) in it (" + reason + ")");
  }
  std::vector<X509Ptr> chain;
  for (;;) {
    X509Ptr next(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    if (!next) break;
    chain.push_back(std::move(next));
  }
  // The loop ends at the end of the file ("no start line"), or at a broken certificate.
  if (const unsigned long e = ERR_peek_last_error();
      e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
    return error(cert_where + "certificate " + std::to_string(chain.size() + 2) +
                 " in the file is not valid PEM (" + openssl_reason() + ")");
  }
  ERR_clear_error();

  BioPtr key_bio = memory_bio(key_pem);
  bool passphrase_asked = false;
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, &passphrase_asked));
  if (!key) {
    const std::string reason = openssl_reason();
    if (passphrase_asked) {
      return error(key_where + "the key is encrypted; the server cannot ask for a passphrase: decrypt it "
                   "(`openssl pkey -in " + key_file + " -out plain.key`) and keep that file private (0600)");
    }
    if (key_pem.find("-----BEGIN CERTIFICATE-----") != std::string::npos) {
      return error(key_where + "holds a certificate, not a private key (--tls-cert and --tls-key swapped?)");
    }
    return error(key_where + "no PEM private key (-----BEGIN PRIVATE KEY-----) in it (" + reason + ")");
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    return error(key_where + "this key does not belong to the certificate in " + cert_file +
                 " (each certificate comes with its own key)");
  }

  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  auto failed = [](const std::string& what) { return error("TLS setup: " + what + ": " + openssl_reason()); };
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) return failed("TLS 1.2 as the minimum");
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // TLS 1.2: ECDHE key exchange and AEAD ciphers only (TLS 1.3's suites are all such).
  if (SSL_CTX_set_cipher_list(native,
                              "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                              "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                              "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) {
    return failed("cipher list");
  }
  // An idle connection (most WebSockets, most of the time) gives its read and write
  // buffers back: some 34 KiB each otherwise.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  if (SSL_CTX_use_certificate(native, leaf.get()) != 1) {
    return error(cert_where + "not usable: " + openssl_reason());
  }
  for (X509Ptr& cert : chain) {
    if (SSL_CTX_add0_chain_cert(native, cert.get()) != 1) {
      return error(cert_where + "chain certificate not usable: " + openssl_reason());
    }
    cert.release();  // the context owns it now
  }
  if (SSL_CTX_use_PrivateKey(native, key.get()) != 1 || SSL_CTX_check_private_key(native) != 1) {
    return error(key_where + "not usable with the certificate in " + cert_file + ": " + openssl_reason());
  }
  return TlsContext{std::move(context), describe_certificate(leaf.get(), chain.size())};
}

std::string describe(const TlsCertificateInfo& info) {
  std::string out = info.subject.empty() ? std::string("(no subject)") : info.subject;
  if (!info.names.empty()) out += " [" + info.names + "]";
  if (info.chain_length > 0) out += " + " + std::to_string(info.chain_length) + " chain certificate(s)";
  out += ", expires " + info.not_after + ", sha256 " + info.sha256;
  return out;
}

}  // namespace gm::server
