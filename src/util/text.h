// Text that came from a client, made safe to store, print and put in JSON.
//
// Usage: session.origin = gm::printable(req.origin, 256);
//
// A client's header or claim may hold any bytes: invalid UTF-8 (which makes a JSON
// writer throw), terminal control sequences (C0, DEL and C1, 0x9b being CSI on some
// terminals), or far too much. printable() keeps valid UTF-8 text, turns every invalid
// byte and control character into '?', and cuts at `max_bytes` on a character boundary,
// marking the cut with "…".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gm {

std::string printable(std::string_view text, size_t max_bytes);
// ASCII letters in lower case, other bytes as they are (no locale): NSID authorities,
// JWT alg and typ, URL schemes.
std::string ascii_lower(std::string_view text);

}  // namespace gm
