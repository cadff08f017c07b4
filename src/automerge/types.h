// The data model shared by every layer of the engine: hashes, actors, op ids,
// values and ops (spec/automerge.md §1.1, §1.6, §1.8).
#pragma once

#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/bytes.h"
#include "util/hex.h"
#include "util/result.h"

namespace gm::automerge {

// SHA-256 of a change chunk; ordered by raw bytes, as heads lists are.
struct ChangeHash {
  std::array<uint8_t, 32> bytes{};

  auto operator<=>(const ChangeHash&) const = default;
  std::string hex() const { return to_hex(bytes); }
  static Result<ChangeHash> from_hex(std::string_view hex);
  static ChangeHash from_bytes(ByteView b);  // b.size() must be 32
};

struct ChangeHashHasher {
  size_t operator()(const ChangeHash& h) const {
    size_t v;
    static_assert(sizeof(v) <= 32);
    __builtin_memcpy(&v, h.bytes.data(), sizeof(v));
    return v;
  }
};

// Actor ids are arbitrary byte strings, ordered lexicographically as unsigned bytes.
using ActorId = Bytes;

// An operation id: (counter, actor). `actor` is an index into some actor table (a
// change's or a document's, depending on context). Counter 0 never names an op; it
// stands for the root object (as an ObjId) and HEAD (as an ElemId).
struct OpId {
  uint64_t counter = 0;
  uint32_t actor = 0;

  bool operator==(const OpId&) const = default;
  bool is_root() const { return counter == 0; }
};

// The largest op counter: the reference keeps counters in 32 bits, and refuses a change
// or document chunk that names a larger one (npm 3.5.0: "counter too large" for a
// change, "delta value out of domain" for a document).
inline constexpr uint64_t kMaxOpCounter = UINT32_MAX;

enum class Action : uint64_t {
  kMakeMap = 0,
  kSet = 1,
  kMakeList = 2,
  kDelete = 3,
  kMakeText = 4,
  kIncrement = 5,
  kMakeTable = 6,
  kMark = 7,
};

// Value type codes of the value-metadata column (§1.6).
enum class ValueType : uint8_t {
  kNull = 0,
  kFalse = 1,
  kTrue = 2,
  kUint = 3,
  kInt = 4,
  kF64 = 5,
  kString = 6,
  kBytes = 7,
  kCounter = 8,
  kTimestamp = 9,
  // 10..15: unknown types, preserved as raw bytes.
};

struct Value {
  uint8_t type = 0;  // a ValueType, or 10..15 for unknown types
  uint64_t uint_value = 0;
  int64_t int_value = 0;  // int, counter, timestamp
  double f64_value = 0;
  std::string bytes;  // string (UTF-8), bytes, unknown raw

  static Value of(ValueType type) {
    Value v;
    v.type = static_cast<uint8_t>(type);
    return v;
  }
  static Value string(std::string s) {
    Value v = of(ValueType::kString);
    v.bytes = std::move(s);
    return v;
  }
  // An int, or with `type` a counter or timestamp (the other 64-bit signed kinds).
  static Value integer(int64_t n, ValueType type = ValueType::kInt) {
    Value v = of(type);
    v.int_value = n;
    return v;
  }

  ValueType kind() const { return static_cast<ValueType>(type); }
  // Whether the value is bytes in `bytes` (string, bytes, unknown types), not a scalar.
  bool has_bytes() const { return kind() == ValueType::kString || kind() == ValueType::kBytes || type >= 10; }
  bool operator==(const Value& o) const {
    return type == o.type && uint_value == o.uint_value && int_value == o.int_value &&
           (f64_value == o.f64_value || (f64_value != f64_value && o.f64_value != o.f64_value)) && bytes == o.bytes;
  }
};

// A scalar value (uint, int, counter, timestamp, f64) as one 64-bit word, as compact
// stores keep it: the integer's bits, or the f64's. 0 for the other types.
// Whether values of this type (a ValueType code) are numbers kept as 64 bits
// (scalar_bits), with no bytes.
inline bool is_scalar_type(uint8_t type) {
  switch (static_cast<ValueType>(type)) {
    case ValueType::kUint:
    case ValueType::kInt:
    case ValueType::kCounter:
    case ValueType::kTimestamp:
    case ValueType::kF64:
      return true;
    default:
      return false;
  }
}

inline uint64_t scalar_bits(const Value& v) {
  switch (v.kind()) {
    case ValueType::kUint:
      return v.uint_value;
    case ValueType::kInt:
    case ValueType::kCounter:
    case ValueType::kTimestamp:
      return static_cast<uint64_t>(v.int_value);
    case ValueType::kF64:
      return std::bit_cast<uint64_t>(v.f64_value);
    default:
      return 0;
  }
}

// The inverse: sets the field of v's type (v.type already set) from `bits`.
inline void set_scalar_bits(Value& v, uint64_t bits) {
  switch (v.kind()) {
    case ValueType::kUint:
      v.uint_value = bits;
      break;
    case ValueType::kInt:
    case ValueType::kCounter:
    case ValueType::kTimestamp:
      v.int_value = static_cast<int64_t>(bits);
      break;
    case ValueType::kF64:
      v.f64_value = std::bit_cast<double>(bits);
      break;
    default:
      break;
  }
}

// A map key or a sequence element id. For a map op `elem` is unset; for a sequence
// op `key` is empty and `elem` names the element (counter 0 = HEAD).
struct Key {
  std::optional<std::string> map_key;
  OpId elem;
  bool is_map() const { return map_key.has_value(); }
  bool operator==(const Key&) const = default;
};

struct Op {
  OpId id;   // in a change, implied by position (startOp + i, author)
  OpId obj;  // counter 0 = root map
  Key key;
  bool insert = false;
  uint64_t action = 1;  // an Action; unknown codes are kept as they are
  Value value;
  std::vector<OpId> pred;  // in a change: preds; in a document: succs
  bool expand = false;
  std::optional<std::string> mark_name;
};

}  // namespace gm::automerge
