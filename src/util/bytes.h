// Byte buffers and views used across every part.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gm {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView as_bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
inline std::string_view as_string(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
inline void append(Bytes& out, ByteView b) { out.insert(out.end(), b.begin(), b.end()); }

}  // namespace gm
