// CBOR (RFC 8949) as automerge-repo messages use it: a decoder of untrusted bytes into a
// small value tree, and a writer of minimal CBOR. message.h maps messages to and from
// these; what clients send, and so what is accepted here, is described there.
//
// Usage:
//   gm::Result<gm::repo::CborValue> v = gm::repo::decode_cbor(frame);  // one whole item
//   if (v.ok() && v->kind == gm::repo::CborValue::Kind::kMap) ...      // v->str views `frame`
//   gm::repo::CborEncoder e;
//   e.map(1);
//   e.field("type", "leave");
//   gm::Bytes out = e.take();
//
// Decoding: libcbor's streaming decoder reads one item header (or one whole definite
// string) at a time, with bounds checks against the buffer; a small recursive-descent
// parser on top builds the CborValue tree, enforcing the nesting and item limits before
// anything is allocated. Rejected, with an Error naming the problem and byte offset:
// nesting deeper than kMaxNesting, more than kMaxItems items, invalid UTF-8 in text,
// indefinite-length items, tags, truncated or malformed items, a count larger than the
// bytes left could hold, and bytes after the item.
//
// Encoding writes headers of minimal length with libcbor's header writers.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "util/bytes.h"
#include "util/result.h"

namespace gm::repo {

inline constexpr size_t kMaxNesting = 16;
inline constexpr size_t kMaxItems = 65536;

struct CborValue {
  enum class Kind : uint8_t { kUint, kNegint, kBytes, kText, kArray, kMap, kFloat, kBool, kNull, kUndefined };
  Kind kind = Kind::kNull;
  bool boolean = false;
  uint64_t uint = 0;  // kUint: the value; kNegint: the value is -1 - uint
  double number = 0;  // kFloat
  std::string_view str;  // kBytes, kText: view into the decoded bytes
  std::vector<CborValue> items;  // kArray: items; kMap: key, value, key, value, …
};

// "unsigned integer", "text string", "map", …: for error messages.
const char* kind_name(CborValue::Kind k);

// Decodes `bytes` as exactly one CBOR item. The tree's strings point into `bytes`.
Result<CborValue> decode_cbor(ByteView bytes);

class CborEncoder {
 public:
  void map(size_t n);
  void array(size_t n);
  void text(std::string_view s);
  void bytes(ByteView b);
  // Only the head of a byte string of `n` bytes, for a caller that puts them elsewhere.
  void bytes_head(size_t n);
  size_t size() const { return out_.size(); }
  void uint(uint64_t v);
  void boolean(bool v);
  // Integral values as integers (smaller, and what cbor-x does below 2^32),
  // everything else as float64.
  void number(double v);
  void field(std::string_view key, std::string_view value) {
    text(key);
    text(value);
  }
  Bytes take() { return std::move(out_); }
  void reserve(size_t n) { out_.reserve(n); }

 private:
  Bytes out_;
};

}  // namespace gm::repo
