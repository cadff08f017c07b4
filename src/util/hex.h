#pragma once

#include "util/bytes.h"
#include "util/result.h"

namespace gm {

std::string to_hex(ByteView bytes);
// Lowercase or uppercase hex, even length.
Result<Bytes> from_hex(std::string_view hex);

}  // namespace gm
