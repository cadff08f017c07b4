// Native TLS (--tls-cert, --tls-key): the certificate and key the listening port serves
// HTTPS and WSS with.
//
// load_tls_context() reads both PEM files and builds a server context, or says which
// file is wrong and how: unreadable, not PEM, no certificate in it, an encrypted key
// (the server runs unattended: give it the key without a passphrase), a key that is not
// the certificate's. The context speaks TLS 1.2 and 1.3 only, with forward-secret AEAD
// ciphers for 1.2 (OpenSSL's defaults for 1.3), no renegotiation, no compression, and
// selects ALPN "http/1.1" when a client offers it (a client that offers only "h2" gets
// no ALPN answer, and may go on with HTTP/1.1 or give up).
//
// A context is shared: each connection keeps the one it began with (a shared_ptr)
// while a reload (SIGHUP) puts a new one in place for the connections that follow.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "util/result.h"

namespace gm::server {

// What a loaded certificate is, for the log.
struct TlsCertificateInfo {
  std::string subject;       // e.g. "CN=sync.example.com"
  std::string names;         // the subjectAltName entries, e.g. "DNS:sync.example.com, IP:127.0.0.1"
  std::string not_after;     // e.g. "Jun  1 12:00:00 2026 GMT"
  int64_t seconds_left = 0;  // until not_after; negative once expired
  int64_t not_after_unix = 0;
  std::string sha256;        // fingerprint, hex pairs separated by ':'
  size_t chain_length = 0;   // certificates after the leaf in the cert file
};

struct TlsContext {
  std::shared_ptr<boost::asio::ssl::context> context;
  TlsCertificateInfo certificate;
};

Result<TlsContext> load_tls_context(const std::string& cert_file, const std::string& key_file);

// What a certificate is (`chain_length`: the certificates that came after it); also for
// `doctor`, which looks at the certificate a context serves or a server presented.
TlsCertificateInfo describe_certificate(X509* leaf, size_t chain_length);

// One line for the log: subject, names, expiry, fingerprint.
std::string describe(const TlsCertificateInfo& info);

}  // namespace gm::server
