#include "automerge/leb.h"

namespace gm::automerge {

void put_uleb(Bytes& out, uint64_t value) {
  do {
    uint8_t b = value & 0x7f;
    value >>= 7;
    if (value != 0) b |= 0x80;
    out.push_back(b);
  } while (value != 0);
}

void put_sleb(Bytes& out, int64_t value) {
  while (true) {
    uint8_t b = value & 0x7f;
    value >>= 7;  // arithmetic shift
    bool done = (value == 0 && !(b & 0x40)) || (value == -1 && (b & 0x40));
    if (!done) b |= 0x80;
    out.push_back(b);
    if (done) return;
  }
}

size_t uleb_size(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

bool read_uleb(ByteView data, size_t* pos, uint64_t* out) {
  uint64_t result = 0;
  size_t p = *pos;
  for (unsigned shift = 0;; shift += 7) {
    if (p >= data.size()) return false;
    uint8_t b = data[p++];
    if (shift == 63 && (b & 0x7e) != 0) return false;  // more than 64 bits
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (b == 0 && shift != 0) return false;  // overlong: trailing zero group
      *out = result;
      *pos = p;
      return true;
    }
    if (shift == 63) return false;
  }
}

bool read_sleb(ByteView data, size_t* pos, int64_t* out) {
  uint64_t result = 0;
  size_t p = *pos;
  uint8_t prev = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (p >= data.size()) return false;
    uint8_t b = data[p++];
    if (shift == 63) {
      // The tenth byte holds only the sign: 0x00 or 0x7f, and no continuation.
      if (b != 0x00 && b != 0x7f) return false;
    }
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (shift != 0) {
        // Shortest form: a final 0x00 after a group with bit 6 clear, or 0x7f after
        // one with bit 6 set, adds nothing.
        if ((b == 0x00 && !(prev & 0x40)) || (b == 0x7f && (prev & 0x40))) return false;
      }
      if (shift + 7 < 64 && (b & 0x40)) result |= ~uint64_t{0} << (shift + 7);
      *out = static_cast<int64_t>(result);
      *pos = p;
      return true;
    }
    if (shift == 63) return false;
    prev = b;
  }
}

Error Reader::fail(const std::string& message) const {
  return error(message + " at byte " + std::to_string(base_ + pos_));
}

Result<uint8_t> Reader::byte() {
  if (pos_ >= data_.size()) return fail("unexpected end of data");
  return data_[pos_++];
}

Result<uint64_t> Reader::uleb(const char* what) {
  uint64_t v;
  size_t p = pos_;
  if (!read_uleb(data_, &p, &v)) return fail(std::string("truncated or invalid uLEB128 ") + what);
  pos_ = p;
  return v;
}

Result<int64_t> Reader::sleb(const char* what) {
  int64_t v;
  size_t p = pos_;
  if (!read_sleb(data_, &p, &v)) return fail(std::string("truncated or invalid sLEB128 ") + what);
  pos_ = p;
  return v;
}

Result<size_t> Reader::count(const char* what, size_t min_item_size) {
  GM_ASSIGN_OR_RETURN(uint64_t n, uleb(what));
  if (min_item_size > 0 && n > remaining() / min_item_size) {
    return fail(std::string(what) + " " + std::to_string(n) + " exceeds the remaining " +
                std::to_string(remaining()) + " bytes");
  }
  return static_cast<size_t>(n);
}

Result<ByteView> Reader::bytes(size_t n, const char* what) {
  if (n > remaining()) {
    return fail(std::string(what) + " needs " + std::to_string(n) + " bytes but only " + std::to_string(remaining()) +
                " remain");
  }
  ByteView out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Result<ByteView> Reader::length_prefixed(const char* what) {
  GM_ASSIGN_OR_RETURN(uint64_t n, uleb(what));
  if (n > remaining()) {
    return fail(std::string(what) + " length " + std::to_string(n) + " exceeds the remaining " +
                std::to_string(remaining()) + " bytes");
  }
  return bytes(static_cast<size_t>(n), what);
}

}  // namespace gm::automerge
