#include "util/sha256.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace gm {

namespace {

// Looking the algorithm up and allocating a context per hash costs more than hashing
// a typical change chunk, so both are done once (per thread).
const EVP_MD* sha256_md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

EVP_MD_CTX* new_context() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, sha256_md(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL SHA-256 initialisation failed");
  }
  return ctx;
}

}  // namespace

Sha256::Sha256() : ctx_(new_context()) {}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::reset() { EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), sha256_md(), nullptr); }

void Sha256::update(ByteView data) { EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size()); }

Sha256Digest Sha256::finish() {
  Sha256Digest out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &len);
  return out;
}

Sha256Digest sha256(ByteView data) {
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context c;
  Sha256Digest out{};
  unsigned int len = 0;
  EVP_DigestInit_ex(c.ctx, sha256_md(), nullptr);
  EVP_DigestUpdate(c.ctx, data.data(), data.size());
  EVP_DigestFinal_ex(c.ctx, out.data(), &len);
  return out;
}

}  // namespace gm
