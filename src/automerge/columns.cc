#include "automerge/columns.h"

#include <cstring>

namespace gm::automerge {

namespace {

// Appends `from` to `out` and leaves `from` empty (a move when `out` is empty).
void take(Bytes& out, Bytes& from) {
  if (out.empty()) {
    out.swap(from);
  } else {
    append(out, from);
  }
  from.clear();
}

}  // namespace

namespace {

bool read_one(ByteView data, size_t* pos, uint64_t* out) { return read_uleb(data, pos, out); }
bool read_one(ByteView data, size_t* pos, int64_t* out) { return read_sleb(data, pos, out); }
bool read_one(ByteView data, size_t* pos, std::string_view* out) {
  uint64_t len;
  if (!read_uleb(data, pos, &len) || len > data.size() - *pos) return false;
  *out = as_string(data.subspan(*pos, len));
  *pos += len;
  return true;
}

void write_one(Bytes& out, uint64_t v) { put_uleb(out, v); }
void write_one(Bytes& out, int64_t v) { put_sleb(out, v); }
void write_one(Bytes& out, const std::string& v) {
  put_uleb(out, v.size());
  append(out, as_bytes(v));
}

}  // namespace

template <class T>
bool RleDecoder<T>::fail(const char* what) {
  error_ = gm::error(std::string(what) + " at column byte " + std::to_string(pos_));
  return false;
}

template <class T>
bool RleDecoder<T>::read_value(T* out) {
  if (!read_one(data_, &pos_, out)) return fail("truncated or invalid RLE value");
  return true;
}

template <class T>
bool RleDecoder<T>::next(std::optional<T>* out) {
  if (error_) return false;
  if (remaining_ == 0) {
    if (pos_ >= data_.size()) {
      *out = std::nullopt;
      return true;
    }
    int64_t n;
    if (!read_sleb(data_, &pos_, &n)) return fail("truncated or invalid RLE run header");
    if (n > 0) {
      run_ = Run::kRepeat;
      remaining_ = static_cast<uint64_t>(n);
      if (!read_value(&repeated_)) return false;
    } else if (n < 0) {
      run_ = Run::kLiteral;
      remaining_ = static_cast<uint64_t>(-(n + 1)) + 1;
    } else {
      uint64_t k;
      if (!read_uleb(data_, &pos_, &k)) return fail("truncated or invalid RLE null run");
      if (k == 0) return fail("empty RLE null run");
      run_ = Run::kNull;
      remaining_ = k;
    }
  }
  --remaining_;
  switch (run_) {
    case Run::kRepeat:
      *out = repeated_;
      return true;
    case Run::kLiteral: {
      T v;
      if (!read_value(&v)) return false;
      *out = v;
      return true;
    }
    default:
      *out = std::nullopt;
      return true;
  }
}

template class RleDecoder<uint64_t>;
template class RleDecoder<int64_t>;
template class RleDecoder<std::string_view>;

bool DeltaDecoder::next(std::optional<int64_t>* out) {
  std::optional<int64_t> d;
  if (!rle_.next(&d)) return false;
  if (!d) {
    *out = std::nullopt;
    return true;
  }
  last_ = static_cast<int64_t>(static_cast<uint64_t>(last_) + static_cast<uint64_t>(*d));
  *out = last_;
  return true;
}

bool BooleanDecoder::next(bool* out) {
  if (error_) return false;
  while (remaining_ == 0) {
    if (pos_ >= data_.size()) {
      *out = false;
      return true;
    }
    if (!read_uleb(data_, &pos_, &remaining_)) {
      error_ = gm::error("truncated or invalid boolean run at column byte " + std::to_string(pos_));
      return false;
    }
    value_ = !value_;
  }
  --remaining_;
  *out = value_;
  return true;
}

bool ValueDecoder::next(Value* out) {
  if (error_) return false;
  std::optional<uint64_t> meta;
  if (!meta_.next(&meta)) return false;
  *out = Value{};
  if (!meta) return true;  // an absent value is null
  uint64_t len = *meta >> 4;
  uint8_t type = *meta & 15;
  if (len > raw_.size() - raw_pos_) {
    error_ = gm::error("value of " + std::to_string(len) + " bytes runs past the end of the value column");
    return false;
  }
  ByteView raw = raw_.subspan(raw_pos_, len);
  raw_pos_ += len;
  out->type = type;
  size_t p = 0;
  auto bad = [&](const char* what) {
    error_ = gm::error(std::string("invalid ") + what + " value in value column");
    return false;
  };
  switch (static_cast<ValueType>(type)) {
    case ValueType::kNull:
    case ValueType::kFalse:
    case ValueType::kTrue:
      if (len != 0) return bad("null/boolean");
      return true;
    case ValueType::kUint:
      if (!read_uleb(raw, &p, &out->uint_value) || p != len) return bad("uint");
      return true;
    case ValueType::kInt:
    case ValueType::kCounter:
    case ValueType::kTimestamp:
      if (!read_sleb(raw, &p, &out->int_value) || p != len) return bad("int");
      return true;
    case ValueType::kF64:
      if (len != 8) return bad("f64");
      {
        uint64_t bits = 0;
        for (int i = 7; i >= 0; --i) bits = bits << 8 | raw[i];
        std::memcpy(&out->f64_value, &bits, 8);
      }
      return true;
    default:  // string, bytes, unknown types: raw bytes
      out->bytes.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
      return true;
  }
}

template <class T>
void RleEncoder<T>::write_value(const T& v) {
  write_one(buf_, v);
}

template <class T>
void RleEncoder<T>::flush() {
  switch (state_) {
    case State::kEmpty:
    case State::kInitialNulls:
      break;
    case State::kNulls:
      put_sleb(buf_, 0);
      put_uleb(buf_, count_);
      break;
    case State::kLone:
      put_sleb(buf_, -1);
      write_value(value_);
      break;
    case State::kRun:
      put_sleb(buf_, static_cast<int64_t>(count_));
      write_value(value_);
      break;
    case State::kLiteral:
      put_sleb(buf_, -static_cast<int64_t>(literal_.size() + 1));
      for (const T& v : literal_) write_value(v);
      write_value(value_);
      literal_.clear();
      break;
  }
}

template <class T>
void RleEncoder<T>::append_null_slow() {
  switch (state_) {
    case State::kEmpty:
      state_ = State::kInitialNulls;
      count_ = 1;
      return;
    case State::kInitialNulls:
    case State::kNulls:
      ++count_;
      return;
    default:
      flush();
      state_ = State::kNulls;
      count_ = 1;
      return;
  }
}

template <class T>
void RleEncoder<T>::append_value_slow(const T& v) {
  switch (state_) {
    case State::kEmpty:
      state_ = State::kLone;
      value_ = v;
      return;
    case State::kInitialNulls:
      // Leading nulls are written once a value follows them.
      put_sleb(buf_, 0);
      put_uleb(buf_, count_);
      state_ = State::kLone;
      value_ = v;
      return;
    case State::kNulls:
      flush();
      state_ = State::kLone;
      value_ = v;
      return;
    case State::kLone:
      if (v == value_) {
        state_ = State::kRun;
        count_ = 2;
      } else {
        literal_.push_back(value_);
        value_ = v;
        state_ = State::kLiteral;
      }
      return;
    case State::kRun:
      if (v == value_) {
        ++count_;
      } else {
        flush();
        state_ = State::kLone;
        value_ = v;
      }
      return;
    case State::kLiteral:
      if (v == value_) {
        put_sleb(buf_, -static_cast<int64_t>(literal_.size()));
        for (const T& x : literal_) write_value(x);
        literal_.clear();
        state_ = State::kRun;
        count_ = 2;
      } else {
        literal_.push_back(value_);
        value_ = v;
      }
      return;
  }
}

template <class T>
void RleEncoder<T>::finish(Bytes& out) {
  flush();
  take(out, buf_);
  state_ = State::kEmpty;
}

template class RleEncoder<uint64_t>;
template class RleEncoder<int64_t>;
template class RleEncoder<std::string>;

void BooleanEncoder::flip() {
  put_uleb(buf_, count_);
  value_ = !value_;
  count_ = 1;
}

void BooleanEncoder::finish(Bytes& out) {
  if (any_) put_uleb(buf_, count_);
  take(out, buf_);
  any_ = false;
  value_ = false;
  count_ = 0;
}

void encode_value_raw(const Value& v, Bytes& raw) {
  switch (v.kind()) {
    case ValueType::kNull:
    case ValueType::kFalse:
    case ValueType::kTrue:
      return;
    case ValueType::kUint:
      put_uleb(raw, v.uint_value);
      return;
    case ValueType::kInt:
    case ValueType::kCounter:
    case ValueType::kTimestamp:
      put_sleb(raw, v.int_value);
      return;
    case ValueType::kF64: {
      uint64_t bits;
      std::memcpy(&bits, &v.f64_value, 8);
      for (int i = 0; i < 8; ++i) raw.push_back(static_cast<uint8_t>(bits >> (8 * i)));
      return;
    }
    default:
      append(raw, as_bytes(v.bytes));
      return;
  }
}

void ValueEncoder::append(const Value& v) {
  size_t before = raw_.size();
  encode_value_raw(v, raw_);
  meta_.append_value(static_cast<uint64_t>(raw_.size() - before) << 4 | v.type);
}

void ValueEncoder::finish(Bytes& meta, Bytes& raw) {
  meta_.finish(meta);
  take(raw, raw_);
}

Result<std::vector<ColumnInfo>> read_column_metadata(Reader& r) {
  GM_ASSIGN_OR_RETURN(size_t n, r.count("column count", 2));
  std::vector<ColumnInfo> columns;
  columns.reserve(n);
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    GM_ASSIGN_OR_RETURN(uint64_t spec, r.uleb("column spec"));
    GM_ASSIGN_OR_RETURN(uint64_t len, r.uleb("column length"));
    if (spec > UINT32_MAX) return r.fail("column spec " + std::to_string(spec) + " does not fit 32 bits");
    if (!columns.empty()) {
      uint32_t prev = columns.back().spec & ~kDeflateBit;
      uint32_t cur = static_cast<uint32_t>(spec) & ~kDeflateBit;
      if (cur <= prev) return r.fail("columns out of order or repeated (spec " + std::to_string(spec) + ")");
    }
    total += len;
    if (len > r.remaining() || total > UINT32_MAX * uint64_t{16}) {
      return r.fail("column length " + std::to_string(len) + " exceeds the data");
    }
    ColumnInfo c;
    c.spec = static_cast<uint32_t>(spec);
    c.data = ByteView(static_cast<const uint8_t*>(nullptr), static_cast<size_t>(len));  // sliced later
    columns.push_back(c);
  }
  return columns;
}

Status slice_column_data(std::vector<ColumnInfo>& columns, Reader& r) {
  for (ColumnInfo& c : columns) {
    GM_ASSIGN_OR_RETURN(c.data, r.bytes(c.data.size(), "column data"));
  }
  return Status::Ok();
}

Result<uint64_t> count_uleb_rle_rows(ByteView data, uint64_t limit) {
  size_t pos = 0;
  uint64_t rows = 0;
  auto malformed = [&]() { return error("truncated or invalid RLE data at column byte " + std::to_string(pos)); };
  while (pos < data.size() && rows <= limit) {
    int64_t n;
    if (!read_sleb(data, &pos, &n)) return malformed();
    uint64_t run;
    uint64_t values = 0;
    if (n > 0) {
      run = static_cast<uint64_t>(n);
      values = 1;
    } else if (n < 0) {
      run = static_cast<uint64_t>(-(n + 1)) + 1;
      values = run;
    } else if (!read_uleb(data, &pos, &run)) {
      return malformed();
    }
    // A literal run's values follow it: at most one per remaining byte.
    if (values > data.size() - pos) return malformed();
    for (uint64_t i = 0; i < values; ++i) {
      uint64_t v;
      if (!read_uleb(data, &pos, &v)) return malformed();
    }
    rows = run > limit - std::min(rows, limit) ? (limit == UINT64_MAX ? limit : limit + 1) : rows + run;
  }
  return rows;
}

ByteView find_column(const std::vector<ColumnInfo>& columns, uint32_t spec) {
  for (const ColumnInfo& c : columns) {
    if ((c.spec & ~kDeflateBit) == spec) return c.data;
  }
  return {};
}

void write_columns_metadata(const std::vector<ColumnOut>& columns, Bytes& out) {
  size_t n = 0;
  for (const ColumnOut& c : columns) n += c.data.empty() ? 0 : 1;
  put_uleb(out, n);
  for (const ColumnOut& c : columns) {
    if (c.data.empty()) continue;
    put_uleb(out, c.spec);
    put_uleb(out, c.data.size());
  }
}

void write_columns_data(const std::vector<ColumnOut>& columns, Bytes& out) {
  for (const ColumnOut& c : columns) append(out, c.data);
}

}  // namespace gm::automerge
