// LEB128 integers and a bounds-checked byte reader (spec/automerge.md §1.1).
//
// uLEB128: 7 data bits per byte, least significant group first, high bit set on
// every byte but the last. sLEB128: the same, two's complement, sign taken from
// bit 6 of the last byte. Both must be in their shortest form and fit 64 bits;
// anything else is an error, as in the reference implementation.
#pragma once

#include <cstdint>

#include "util/bytes.h"
#include "util/result.h"

namespace gm::automerge {

void put_uleb(Bytes& out, uint64_t value);
void put_sleb(Bytes& out, int64_t value);
size_t uleb_size(uint64_t value);

// Decodes at data[*pos], advancing *pos. These return false on truncated, overlong
// or out-of-range input and leave *pos unspecified; Reader wraps them with messages.
bool read_uleb(ByteView data, size_t* pos, uint64_t* out);
bool read_sleb(ByteView data, size_t* pos, int64_t* out);

// Sequential reader over untrusted bytes. Every read is bounds-checked and fails
// with an Error naming the byte offset (relative to `base_offset`, so nested
// readers can report positions in the enclosing buffer).
class Reader {
 public:
  explicit Reader(ByteView data, size_t base_offset = 0) : data_(data), base_(base_offset) {}

  bool done() const { return pos_ >= data_.size(); }
  size_t pos() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  ByteView rest() const { return data_.subspan(pos_); }

  Result<uint8_t> byte();
  Result<uint64_t> uleb(const char* what);
  Result<int64_t> sleb(const char* what);
  // A uLEB that must fit in size_t and not exceed the remaining bytes times `unit`
  // (a count of items each at least `unit` bytes long): rejects absurd counts early.
  Result<size_t> count(const char* what, size_t min_item_size = 1);
  Result<ByteView> bytes(size_t n, const char* what);
  // uLEB length followed by that many bytes.
  Result<ByteView> length_prefixed(const char* what);

  Error fail(const std::string& message) const;

 private:
  ByteView data_;
  size_t base_;
  size_t pos_ = 0;
};

}  // namespace gm::automerge
