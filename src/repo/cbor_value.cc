#include "repo/cbor_value.h"

#include <cbor.h>

#include <cmath>
#include <string>

#include "util/utf8.h"

namespace gm::repo {
namespace {

// One token as reported by a libcbor callback.
struct Token {
  enum class Kind : uint8_t { kNone, kValue, kArrayStart, kMapStart, kUnsupported } kind = Kind::kNone;
  CborValue::Kind value_kind = CborValue::Kind::kNull;
  uint64_t number = 0;  // uint / negint value, or collection size
  double real = 0;
  bool boolean = false;
  std::string_view str;
  const char* unsupported = nullptr;
};

Token& tok(void* ctx) { return *static_cast<Token*>(ctx); }
void set_uint(void* c, uint64_t v) { tok(c) = {Token::Kind::kValue, CborValue::Kind::kUint, v}; }
void set_negint(void* c, uint64_t v) { tok(c) = {Token::Kind::kValue, CborValue::Kind::kNegint, v}; }
void on_u8(void* c, uint8_t v) { set_uint(c, v); }
void on_u16(void* c, uint16_t v) { set_uint(c, v); }
void on_u32(void* c, uint32_t v) { set_uint(c, v); }
void on_u64(void* c, uint64_t v) { set_uint(c, v); }
void on_n8(void* c, uint8_t v) { set_negint(c, v); }
void on_n16(void* c, uint16_t v) { set_negint(c, v); }
void on_n32(void* c, uint32_t v) { set_negint(c, v); }
void on_n64(void* c, uint64_t v) { set_negint(c, v); }
void on_string(void* c, cbor_data p, size_t n, CborValue::Kind k) {
  tok(c) = {Token::Kind::kValue, k};
  tok(c).str = std::string_view(reinterpret_cast<const char*>(p), n);
}
void on_bytes(void* c, cbor_data p, size_t n) { on_string(c, p, n, CborValue::Kind::kBytes); }
void on_text(void* c, cbor_data p, size_t n) { on_string(c, p, n, CborValue::Kind::kText); }
void on_array(void* c, size_t n) { tok(c) = {Token::Kind::kArrayStart, CborValue::Kind::kArray, n}; }
void on_map(void* c, size_t n) { tok(c) = {Token::Kind::kMapStart, CborValue::Kind::kMap, n}; }
void set_float(void* c, double v) {
  tok(c) = {Token::Kind::kValue, CborValue::Kind::kFloat};
  tok(c).real = v;
}
void on_f16(void* c, float v) { set_float(c, v); }
void on_f64(void* c, double v) { set_float(c, v); }
void on_undef(void* c) { tok(c) = {Token::Kind::kValue, CborValue::Kind::kUndefined}; }
void on_null(void* c) { tok(c) = {Token::Kind::kValue, CborValue::Kind::kNull}; }
void on_bool(void* c, bool v) {
  tok(c) = {Token::Kind::kValue, CborValue::Kind::kBool};
  tok(c).boolean = v;
}
void unsupported(void* c, const char* what) {
  tok(c) = {};
  tok(c).kind = Token::Kind::kUnsupported;
  tok(c).unsupported = what;
}
void on_indef_string(void* c) { unsupported(c, "indefinite-length string"); }
void on_indef_array(void* c) { unsupported(c, "indefinite-length array"); }
void on_indef_map(void* c) { unsupported(c, "indefinite-length map"); }
void on_tag(void* c, uint64_t) { unsupported(c, "tag"); }
void on_break(void* c) { unsupported(c, "break"); }

const cbor_callbacks kCallbacks = [] {
  cbor_callbacks cb = cbor_empty_callbacks;
  cb.uint8 = on_u8;
  cb.uint16 = on_u16;
  cb.uint32 = on_u32;
  cb.uint64 = on_u64;
  cb.negint8 = on_n8;
  cb.negint16 = on_n16;
  cb.negint32 = on_n32;
  cb.negint64 = on_n64;
  cb.byte_string = on_bytes;
  cb.byte_string_start = on_indef_string;
  cb.string = on_text;
  cb.string_start = on_indef_string;
  cb.array_start = on_array;
  cb.indef_array_start = on_indef_array;
  cb.map_start = on_map;
  cb.indef_map_start = on_indef_map;
  cb.tag = on_tag;
  cb.float2 = on_f16;
  cb.float4 = on_f16;
  cb.float8 = on_f64;
  cb.undefined = on_undef;
  cb.null = on_null;
  cb.boolean = on_bool;
  cb.indef_break = on_break;
  return cb;
}();

class CborParser {
 public:
  explicit CborParser(ByteView frame) : frame_(frame) {}

  Result<CborValue> parse_one() {
    CborValue value;
    GM_TRY(parse(value, 0));
    if (pos_ != frame_.size()) {
      return error(std::to_string(frame_.size() - pos_) + " trailing bytes after the CBOR item at offset " +
                   std::to_string(pos_));
    }
    return value;
  }

 private:
  Status parse(CborValue& out, size_t depth) {
    if (depth > kMaxNesting) return error("CBOR nesting deeper than " + std::to_string(kMaxNesting) + " at offset " + std::to_string(pos_));
    if (++items_ > kMaxItems) return error("more than " + std::to_string(kMaxItems) + " CBOR items");
    size_t at = pos_;
    if (at >= frame_.size()) return error("CBOR item truncated at offset " + std::to_string(at));
    Token t;
    cbor_decoder_result r = cbor_stream_decode(frame_.data() + at, frame_.size() - at, &kCallbacks, &t);
    if (r.status == CBOR_DECODER_NEDATA) return error("CBOR item truncated at offset " + std::to_string(at));
    if (r.status != CBOR_DECODER_FINISHED || t.kind == Token::Kind::kNone) {
      return error("malformed CBOR at offset " + std::to_string(at) + " (initial byte 0x" + hex_byte(frame_[at]) + ")");
    }
    if (t.kind == Token::Kind::kUnsupported) {
      return error(std::string("unsupported CBOR ") + t.unsupported + " at offset " + std::to_string(at));
    }
    pos_ += r.read;
    out.kind = t.value_kind;
    switch (t.kind) {
      case Token::Kind::kValue:
        out.uint = t.number;
        out.number = t.real;
        out.boolean = t.boolean;
        out.str = t.str;
        if (out.kind == CborValue::Kind::kText && !is_valid_utf8(out.str)) {
          return error("text string at offset " + std::to_string(at) + " is not valid UTF-8");
        }
        return Status::Ok();
      case Token::Kind::kArrayStart:
      case Token::Kind::kMapStart: {
        uint64_t count = t.number;
        if (t.kind == Token::Kind::kMapStart) {
          if (count > UINT64_MAX / 2) return error("CBOR map at offset " + std::to_string(at) + " is too large");
          count *= 2;
        }
        // Every item takes at least one byte: a larger count cannot be satisfied,
        // and checking first keeps a forged header from reserving memory.
        if (count > frame_.size() - pos_) {
          return error(std::string(kind_name(out.kind)) + " at offset " + std::to_string(at) + " declares " +
                       std::to_string(count) + " items but only " + std::to_string(frame_.size() - pos_) +
                       " bytes remain");
        }
        out.items.resize(static_cast<size_t>(count));
        for (auto& item : out.items) GM_TRY(parse(item, depth + 1));
        return Status::Ok();
      }
      default:
        return error("malformed CBOR at offset " + std::to_string(at));
    }
  }

  static std::string hex_byte(uint8_t b) {
    const char* digits = "0123456789abcdef";
    return {digits[b >> 4], digits[b & 15]};
  }

  ByteView frame_;
  size_t pos_ = 0;
  size_t items_ = 0;
};

// libcbor writes one header or simple value (at most 9 bytes) into a buffer.
template <class Fn, class Arg>
void put(Bytes& out, Fn write, Arg arg) {
  size_t used = out.size();
  out.resize(used + 9);
  size_t written = write(arg, out.data() + used, 9);
  out.resize(used + written);
}

}  // namespace

const char* kind_name(CborValue::Kind k) {
  switch (k) {
    case CborValue::Kind::kUint: return "unsigned integer";
    case CborValue::Kind::kNegint: return "negative integer";
    case CborValue::Kind::kBytes: return "byte string";
    case CborValue::Kind::kText: return "text string";
    case CborValue::Kind::kArray: return "array";
    case CborValue::Kind::kMap: return "map";
    case CborValue::Kind::kFloat: return "float";
    case CborValue::Kind::kBool: return "boolean";
    case CborValue::Kind::kNull: return "null";
    case CborValue::Kind::kUndefined: return "undefined";
  }
  return "?";
}

Result<CborValue> decode_cbor(ByteView bytes) { return CborParser(bytes).parse_one(); }

void CborEncoder::map(size_t n) { put(out_, cbor_encode_map_start, n); }
void CborEncoder::array(size_t n) { put(out_, cbor_encode_array_start, n); }
void CborEncoder::text(std::string_view s) {
  put(out_, cbor_encode_string_start, s.size());
  append(out_, as_bytes(s));
}
void CborEncoder::bytes(ByteView b) {
  bytes_head(b.size());
  append(out_, b);
}
void CborEncoder::bytes_head(size_t n) { put(out_, cbor_encode_bytestring_start, n); }
void CborEncoder::uint(uint64_t v) { put(out_, cbor_encode_uint, v); }
void CborEncoder::boolean(bool v) { put(out_, cbor_encode_bool, v); }
void CborEncoder::number(double v) {
  if (v >= 0 && v < 18446744073709551616.0 && std::floor(v) == v) return uint(static_cast<uint64_t>(v));
  put(out_, cbor_encode_double, v);
}

}  // namespace gm::repo
