// Column encodings (spec/automerge.md §1.5, §1.6): RLE over uLEB / sLEB / strings,
// delta, boolean, and the value-metadata + raw-value pair; and the canonical
// encoders whose output the reference implementation reproduces byte for byte.
//
// RLE layout: a sequence of runs, each starting with an sLEB n:
//   n > 0   one value follows and repeats n times
//   n < 0   |n| values follow, each once (a literal run)
//   n = 0   a uLEB k follows: k nulls
// Delta columns RLE-encode the differences between successive non-null values.
// Boolean columns are uLEB run lengths alternating false, true, false, ...
//
// Decoders are iterators over untrusted bytes: next() yields one row; once the
// data is exhausted every further row reads as null (an absent column is all
// null). A malformed column makes next() return false and error() say why.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "automerge/leb.h"
#include "automerge/types.h"

namespace gm::automerge {

// Column spec: id << 4 | deflate << 3 | type.
enum class ColumnType : uint8_t {
  kGroup = 0,
  kActor = 1,
  kUleb = 2,
  kDelta = 3,
  kBoolean = 4,
  kString = 5,
  kValueMeta = 6,
  kValue = 7,
};

constexpr uint32_t column_spec(uint32_t id, ColumnType type) { return id << 4 | static_cast<uint32_t>(type); }
constexpr uint32_t kDeflateBit = 8;

// One entry of a chunk's column metadata.
struct ColumnInfo {
  uint32_t spec = 0;
  ByteView data;
  uint32_t id() const { return spec >> 4; }
  ColumnType type() const { return static_cast<ColumnType>(spec & 7); }
  bool deflated() const { return (spec & kDeflateBit) != 0; }
};

struct ColumnError {
  std::optional<Error> error;
  bool ok() const { return !error.has_value(); }
};

// RLE decoder; T is uint64_t (uLEB), int64_t (sLEB) or std::string_view.
template <class T>
class RleDecoder {
 public:
  explicit RleDecoder(ByteView data) : data_(data) {}
  // Sets *out to the next row (nullopt for null). False on malformed data.
  bool next(std::optional<T>* out);
  bool done() const { return remaining_ == 0 && pos_ >= data_.size(); }
  const std::optional<Error>& error() const { return error_; }

 private:
  bool read_value(T* out);
  bool fail(const char* what);

  ByteView data_;
  size_t pos_ = 0;
  enum class Run { kNone, kRepeat, kLiteral, kNull } run_ = Run::kNone;
  uint64_t remaining_ = 0;
  T repeated_{};
  std::optional<Error> error_;
};

using UlebDecoder = RleDecoder<uint64_t>;
using SlebDecoder = RleDecoder<int64_t>;
using StringDecoder = RleDecoder<std::string_view>;

class DeltaDecoder {
 public:
  explicit DeltaDecoder(ByteView data) : rle_(data) {}
  bool next(std::optional<int64_t>* out);
  bool done() const { return rle_.done(); }
  const std::optional<Error>& error() const { return error_ ? error_ : rle_.error(); }

 private:
  SlebDecoder rle_;
  int64_t last_ = 0;
  std::optional<Error> error_;
};

class BooleanDecoder {
 public:
  explicit BooleanDecoder(ByteView data) : data_(data) {}
  bool next(bool* out);
  bool done() const { return remaining_ == 0 && pos_ >= data_.size(); }
  const std::optional<Error>& error() const { return error_; }

 private:
  ByteView data_;
  size_t pos_ = 0;
  uint64_t remaining_ = 0;
  bool value_ = true;  // flips before the first run, which counts falses
  std::optional<Error> error_;
};

// Value metadata (RLE uLEB of length << 4 | type) plus the raw bytes column.
class ValueDecoder {
 public:
  ValueDecoder(ByteView meta, ByteView raw) : meta_(meta), raw_(raw) {}
  bool next(Value* out);
  bool done() const { return meta_.done(); }
  const std::optional<Error>& error() const { return error_ ? error_ : meta_.error(); }

 private:
  UlebDecoder meta_;
  ByteView raw_;
  size_t raw_pos_ = 0;
  std::optional<Error> error_;
};

// Canonical RLE encoder (§1.6 state machine). T as for RleDecoder, with
// std::string in place of std::string_view.
template <class T>
class RleEncoder {
 public:
  void append(const std::optional<T>& v) { v ? append_value(*v) : append_null(); }
  // The common cases (a run goes on) inline; state changes out of line.
  void append_value(const T& v) {
    if (state_ == State::kRun && v == value_) {
      ++count_;
    } else {
      append_value_slow(v);
    }
  }
  void append_null() {
    if (state_ == State::kNulls || state_ == State::kInitialNulls) {
      ++count_;
    } else {
      append_null_slow();
    }
  }
  // Appends the encoded column to `out` (nothing for an all-null column).
  void finish(Bytes& out);
  Bytes finish() {
    Bytes out;
    finish(out);
    return out;
  }

 private:
  void append_value_slow(const T& v);
  void append_null_slow();
  void write_value(const T& v);
  void flush();

  enum class State { kEmpty, kInitialNulls, kNulls, kLone, kRun, kLiteral } state_ = State::kEmpty;
  uint64_t count_ = 0;  // nulls or run length
  T value_{};           // lone value / run value / last literal value
  std::vector<T> literal_;
  Bytes buf_;
};

using UlebEncoder = RleEncoder<uint64_t>;
using SlebEncoder = RleEncoder<int64_t>;
using StringEncoder = RleEncoder<std::string>;

class DeltaEncoder {
 public:
  void append(std::optional<int64_t> v) {
    if (!v) return rle_.append_null();
    rle_.append_value(static_cast<int64_t>(static_cast<uint64_t>(*v) - static_cast<uint64_t>(last_)));
    last_ = *v;
  }
  void finish(Bytes& out) {
    rle_.finish(out);
    last_ = 0;
  }
  Bytes finish() {
    Bytes out;
    finish(out);
    return out;
  }

 private:
  SlebEncoder rle_;
  int64_t last_ = 0;
};

class BooleanEncoder {
 public:
  void append(bool v) {
    any_ = true;
    if (v == value_) {
      ++count_;
    } else {
      flip();
    }
  }
  void finish(Bytes& out);
  Bytes finish() {
    Bytes out;
    finish(out);
    return out;
  }

 private:
  void flip();
  bool value_ = false;
  uint64_t count_ = 0;
  bool any_ = false;
  Bytes buf_;
};

// Encodes values into a metadata column and a raw column.
class ValueEncoder {
 public:
  void append(const Value& v);
  void finish(Bytes& meta, Bytes& raw);

 private:
  UlebEncoder meta_;
  Bytes raw_;
};

// Raw bytes of a value (as stored in the raw column) and its metadata word.
void encode_value_raw(const Value& v, Bytes& raw);

// Column metadata: uLEB count, then (spec, length) pairs; then the data, contiguous.
// Parses the metadata from `r` and slices each column's data out of `data`, which
// starts where the column data begins. Checks the ordering rules of §1.5.
Result<std::vector<ColumnInfo>> read_column_metadata(Reader& r);
Status slice_column_data(std::vector<ColumnInfo>& columns, Reader& r);

// The rows of an RLE column of uLEB values, read from its run headers (the values are
// skipped, not decoded): a few bytes can claim 2^63 rows. Counting stops once it
// passes `limit`; the result is then some number above `limit` (at most limit + 1,
// saturating). An error if the run headers are malformed.
Result<uint64_t> count_uleb_rle_rows(ByteView data, uint64_t limit);

// Finds a column by spec (deflate bit ignored); empty data if absent.
ByteView find_column(const std::vector<ColumnInfo>& columns, uint32_t spec);

// Writes metadata and data for (spec, bytes) columns, skipping empty ones. Columns
// must already be sorted by spec.
struct ColumnOut {
  uint32_t spec;
  Bytes data;
};
void write_columns_metadata(const std::vector<ColumnOut>& columns, Bytes& out);
void write_columns_data(const std::vector<ColumnOut>& columns, Bytes& out);

}  // namespace gm::automerge
