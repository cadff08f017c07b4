#pragma once

#include <array>

#include "util/bytes.h"

namespace gm {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental SHA-256 (OpenSSL).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  // Starts a new hash, reusing the context.
  void reset();
  void update(ByteView data);
  Sha256Digest finish();

 private:
  void* ctx_;
};

Sha256Digest sha256(ByteView data);

}  // namespace gm
