// One outgoing message whose middle part may be shared with other messages: an
// ephemeral message relayed to many sockets holds its payload once, however many
// queues it waits in. The bytes are own[0, at) ‖ *shared ‖ own[at, end).
#pragma once

#include <memory>

#include "util/bytes.h"

namespace gm {

struct Frame {
  Bytes own;
  std::shared_ptr<const Bytes> shared;
  size_t at = 0;

  Frame() = default;
  Frame(Bytes bytes) : own(std::move(bytes)) {}  // NOLINT: a whole message is a frame
  Frame(Bytes own_bytes, std::shared_ptr<const Bytes> middle, size_t middle_at)
      : own(std::move(own_bytes)), shared(std::move(middle)), at(middle_at) {}

  size_t size() const { return own.size() + (shared ? shared->size() : 0); }
  Bytes flatten() const {
    if (!shared) return own;
    Bytes out(own.begin(), own.begin() + static_cast<std::ptrdiff_t>(at));
    append(out, *shared);
    out.insert(out.end(), own.begin() + static_cast<std::ptrdiff_t>(at), own.end());
    return out;
  }
};

}  // namespace gm
