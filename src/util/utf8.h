// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800–U+DFFF), nothing
// past U+10FFFF. What the reference Automerge requires of strings in changes and
// documents, what CBOR text must be, and what JSON writers accept.
#pragma once

#include <cstddef>
#include <string_view>

namespace gm {

// Length (1–4) of the valid sequence at the start of `s`, or 0 if `s` is empty or does
// not start with one.
size_t utf8_sequence_length(std::string_view s);

bool is_valid_utf8(std::string_view s);

}  // namespace gm
