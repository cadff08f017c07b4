#include "automerge/json_patch.h"

#include <cmath>

#include "util/utf8.h"

namespace gm::automerge {

namespace {

using Kind = JsonPatchOp::Kind;
using ObjRef = Transaction::ObjRef;
using ObjType = Transaction::ObjType;

Error op_error(ErrorCode code, size_t i, const JsonPatchOp* op, const std::string& what) {
  std::string where = "operation " + std::to_string(i);
  if (op) {
    static const char* const kNames[] = {"add", "remove", "replace", "move", "copy", "test"};
    where += " (" + std::string(kNames[static_cast<int>(op->kind)]) + " \"" + op->path_text + "\")";
  }
  return Error{where + ": " + what, code};
}

// Depth of a JSON value (1 = scalar), stopping once past `limit`; also checks
// the byte length of every string and key.
Status check_value(const nlohmann::json& root) {
  struct Item {
    const nlohmann::json* v;
    size_t depth;
  };
  std::vector<Item> stack{{&root, 1}};
  while (!stack.empty()) {
    Item it = stack.back();
    stack.pop_back();
    if (it.depth > kMaxPatchValueDepth)
      return limit_error("value nested deeper than " + std::to_string(kMaxPatchValueDepth) + " levels");
    const nlohmann::json& v = *it.v;
    if (v.is_string() && v.get_ref<const std::string&>().size() > kMaxPatchStringBytes)
      return limit_error("string longer than " + std::to_string(kMaxPatchStringBytes) + " bytes");
    if (v.is_object()) {
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (m.key().size() > kMaxPatchStringBytes)
          return limit_error("key longer than " + std::to_string(kMaxPatchStringBytes) + " bytes");
        stack.push_back({&m.value(), it.depth + 1});
      }
    } else if (v.is_array()) {
      for (const nlohmann::json& e : v) stack.push_back({&e, it.depth + 1});
    } else if (v.is_binary()) {
      return error("binary values are not JSON");
    }
  }
  return Status::Ok();
}

// The scalar a JSON number, boolean or null becomes (see the header).
Value scalar_of(const nlohmann::json& v) {
  Value out;
  if (v.is_null()) {
    out.type = static_cast<uint8_t>(ValueType::kNull);
  } else if (v.is_boolean()) {
    out.type = static_cast<uint8_t>(v.get<bool>() ? ValueType::kTrue : ValueType::kFalse);
  } else if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) {
      out.type = static_cast<uint8_t>(ValueType::kInt);
      out.int_value = static_cast<int64_t>(u);
    } else {
      out.type = static_cast<uint8_t>(ValueType::kUint);
      out.uint_value = u;
    }
  } else if (v.is_number_integer()) {
    out.type = static_cast<uint8_t>(ValueType::kInt);
    out.int_value = v.get<int64_t>();
  } else {
    const double d = v.get<double>();
    if (d == std::trunc(d) && std::fabs(d) <= 9007199254740992.0) {
      out.type = static_cast<uint8_t>(ValueType::kInt);
      out.int_value = static_cast<int64_t>(d);
    } else {
      out.type = static_cast<uint8_t>(ValueType::kF64);
      out.f64_value = d;
    }
  }
  return out;
}

// A JSON number as an exact integer, when it is one that fits int64.
std::optional<int64_t> integer_of(const nlohmann::json& v) {
  if (!v.is_number()) return std::nullopt;
  Value s = scalar_of(v);
  if (s.kind() != ValueType::kInt) return std::nullopt;
  return s.int_value;
}

// The code points of valid UTF-8 text, each as its own string.
std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s.substr(i));
    if (n == 0) n = 1;  // not reached: strings are checked before
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// An array index token: "0" or digits without a leading zero; "-" (past the end)
// only where `allow_end`. Returns the index (length for "-").
Result<size_t> array_index(const std::string& token, size_t length, bool allow_end) {
  if (token == "-") {
    if (!allow_end) return error("\"-\" names no existing element");
    return length;
  }
  if (token.empty() || token.size() > 18 || (token.size() > 1 && token[0] == '0'))
    return error("\"" + token + "\" is not an array index");
  size_t n = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return error("\"" + token + "\" is not an array index");
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (n > length || (n == length && !allow_end))
    return error("index " + token + " out of range (length " + std::to_string(length) + ")");
  return n;
}

// Applies one patch to a transaction.
class PatchWriter {
 public:
  explicit PatchWriter(Transaction& tx) : tx_(tx) {}

  Status apply(const JsonPatchOp& op) {
    switch (op.kind) {
      case Kind::kAdd:
        return write(op.path, op.value, /*must_exist=*/false);
      case Kind::kReplace:
        return write(op.path, op.value, /*must_exist=*/true);
      case Kind::kRemove:
        return remove(op.path);
      case Kind::kTest: {
        GM_ASSIGN_OR_RETURN(nlohmann::json current, read_json(op.path));
        if (current != op.value) return error(ErrorCode::kFailedPrecondition, "test failed: the value differs");
        return Status::Ok();
      }
      case Kind::kCopy: {
        GM_ASSIGN_OR_RETURN(Source src, read_source(op.from));
        GM_ASSIGN_OR_RETURN(Snapshot value, snapshot_of(src));
        return write_copy(op.path, value);
      }
      case Kind::kMove: {
        if (op.from == op.path) {
          GM_TRY(read_source(op.from));  // must exist; moving onto itself changes nothing
          return Status::Ok();
        }
        if (op.path.size() > op.from.size() && std::equal(op.from.begin(), op.from.end(), op.path.begin()))
          return error("cannot move a value into itself");
        GM_ASSIGN_OR_RETURN(Source src, read_source(op.from));
        GM_ASSIGN_OR_RETURN(Snapshot value, snapshot_of(src));
        GM_TRY(remove(op.from));
        return write_copy(op.path, value);
      }
    }
    return error("unknown operation");
  }

 private:
  // What a copy or move takes: the whole document's root, or one slot.
  struct Source {
    bool root = false;
    Transaction::Slot slot;
  };

  // The container a path's last token is in (the path must not be the root).
  Result<ObjRef> parent_of(const std::vector<std::string>& path) {
    ObjRef obj = Transaction::root();
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      GM_ASSIGN_OR_RETURN(Transaction::Slot slot, child(obj, path[i], path, i));
      if (!slot.object || tx_.type(*slot.object) == ObjType::kText)
        return error("path " + pointer(path, i + 1) + " is not an object or array");
      obj = *slot.object;
    }
    return obj;
  }

  Result<Transaction::Slot> child(ObjRef obj, const std::string& token, const std::vector<std::string>& path,
                                  size_t i) {
    if (tx_.type(obj) == ObjType::kList) {
      Result<size_t> index = array_index(token, tx_.length(obj), false);
      if (!index) return error("path " + pointer(path, i + 1) + ": " + index.error().message);
      return tx_.get(obj, *index);
    }
    std::optional<Transaction::Slot> slot = tx_.get(obj, token);
    if (!slot) return error("path " + pointer(path, i + 1) + " does not exist");
    return *slot;
  }

  static std::string pointer(const std::vector<std::string>& path, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
      out += '/';
      out += json_pointer_token(path[i]);
    }
    return "\"" + out + "\"";
  }

  Result<Source> read_source(const std::vector<std::string>& path) {
    Source s;
    if (path.empty()) {
      s.root = true;
      return s;
    }
    GM_ASSIGN_OR_RETURN(ObjRef parent, parent_of(path));
    GM_ASSIGN_OR_RETURN(s.slot, child(parent, path.back(), path, path.size() - 1));
    return s;
  }

  Result<nlohmann::json> read_json(const std::vector<std::string>& path) {
    GM_ASSIGN_OR_RETURN(Source s, read_source(path));
    if (s.root) return tx_.to_json(Transaction::root());
    return tx_.to_json(s.slot);
  }

  Status remove(const std::vector<std::string>& path) {
    if (path.empty()) return error("the root cannot be removed");
    GM_ASSIGN_OR_RETURN(ObjRef parent, parent_of(path));
    if (tx_.type(parent) == ObjType::kList) {
      Result<size_t> index = array_index(path.back(), tx_.length(parent), false);
      if (!index) return error("path " + pointer(path, path.size()) + ": " + index.error().message);
      return tx_.remove(parent, *index);
    }
    if (!tx_.get(parent, path.back())) return error("path " + pointer(path, path.size()) + " does not exist");
    return tx_.remove(parent, path.back());
  }

  // add (must_exist = false) or replace (true) of a JSON value.
  Status write(const std::vector<std::string>& path, const nlohmann::json& value, bool must_exist) {
    if (path.empty()) return write_root(value);
    GM_ASSIGN_OR_RETURN(ObjRef parent, parent_of(path));
    const std::string& key = path.back();
    if (tx_.type(parent) == ObjType::kList) {
      Result<size_t> index = array_index(key, tx_.length(parent), !must_exist);
      if (!index) return error("path " + pointer(path, path.size()) + ": " + index.error().message);
      if (!must_exist) return insert_new(parent, *index, value);
      GM_ASSIGN_OR_RETURN(Transaction::Slot slot, tx_.get(parent, *index));
      return overwrite(parent, Target{key, *index, true}, slot, value);
    }
    std::optional<Transaction::Slot> slot = tx_.get(parent, key);
    if (!slot) {
      if (must_exist) return error("path " + pointer(path, path.size()) + " does not exist");
      return put_new(parent, key, value);
    }
    // RFC 6902 §4.1: add onto an existing member replaces its value.
    return overwrite(parent, Target{key, 0, false}, *slot, value);
  }

  // The whole document: a JSON object, written member by member.
  Status write_root(const nlohmann::json& value) {
    if (!value.is_object()) return error("the root of a document must be a JSON object");
    const ObjRef root = Transaction::root();
    for (const std::string& key : tx_.keys(root)) {
      if (!value.contains(key)) GM_TRY(tx_.remove(root, key));
    }
    for (auto m = value.begin(); m != value.end(); ++m) {
      std::optional<Transaction::Slot> slot = tx_.get(root, m.key());
      if (slot) {
        GM_TRY(overwrite(root, Target{m.key(), 0, false}, *slot, m.value()));
      } else {
        GM_TRY(put_new(root, m.key(), m.value()));
      }
    }
    return Status::Ok();
  }

  // A map key or list index that holds a value.
  struct Target {
    std::string key;
    size_t index;
    bool in_list;
  };

  Status overwrite(ObjRef parent, const Target& t, const Transaction::Slot& slot, const nlohmann::json& value) {
    if (slot.object && tx_.type(*slot.object) == ObjType::kText && value.is_string())
      return splice_minimal(*slot.object, value.get_ref<const std::string&>());
    if (slot.is_counter()) {
      if (std::optional<int64_t> n = integer_of(value)) {
        // Wrapping difference, as counters wrap.
        const int64_t delta =
            static_cast<int64_t>(static_cast<uint64_t>(*n) - static_cast<uint64_t>(slot.counter_total));
        if (delta == 0) return Status::Ok();
        return t.in_list ? tx_.increment(parent, t.index, delta) : tx_.increment(parent, t.key, delta);
      }
    }
    if (!slot.object && slot.value.kind() == ValueType::kString && value.is_string()) {
      const Value v = Value::string(value.get<std::string>());
      return t.in_list ? tx_.set(parent, t.index, v) : tx_.put(parent, t.key, v);
    }
    return t.in_list ? set_new(parent, t.index, value) : put_new(parent, t.key, value);
  }

  Status splice_minimal(ObjRef text, const std::string& s) {
    const std::vector<std::string> now = tx_.text_elements(text);
    const std::vector<std::string> want = code_points(s);
    size_t prefix = 0;
    while (prefix < now.size() && prefix < want.size() && now[prefix] == want[prefix]) ++prefix;
    size_t suffix = 0;
    while (suffix < now.size() - prefix && suffix < want.size() - prefix &&
           now[now.size() - 1 - suffix] == want[want.size() - 1 - suffix])
      ++suffix;
    const size_t removed = now.size() - prefix - suffix;
    std::string inserted;
    for (size_t i = prefix; i < want.size() - suffix; ++i) inserted += want[i];
    if (removed == 0 && inserted.empty()) return Status::Ok();
    return tx_.splice_text(text, prefix, removed, inserted);
  }

  // ---- new values from JSON

  static std::optional<ObjType> object_type_of(const nlohmann::json& v) {
    if (v.is_object()) return ObjType::kMap;
    if (v.is_array()) return ObjType::kList;
    if (v.is_string()) return ObjType::kText;
    return std::nullopt;
  }

  Status put_new(ObjRef map, const std::string& key, const nlohmann::json& v) {
    std::optional<ObjType> type = object_type_of(v);
    if (!type) return tx_.put(map, key, scalar_of(v));
    GM_ASSIGN_OR_RETURN(ObjRef obj, tx_.put_object(map, key, *type));
    return fill(obj, v);
  }

  Status insert_new(ObjRef list, size_t index, const nlohmann::json& v) {
    std::optional<ObjType> type = object_type_of(v);
    if (!type) return tx_.insert(list, index, scalar_of(v));
    GM_ASSIGN_OR_RETURN(ObjRef obj, tx_.insert_object(list, index, *type));
    return fill(obj, v);
  }

  Status set_new(ObjRef list, size_t index, const nlohmann::json& v) {
    std::optional<ObjType> type = object_type_of(v);
    if (!type) return tx_.set(list, index, scalar_of(v));
    GM_ASSIGN_OR_RETURN(ObjRef obj, tx_.set_object(list, index, *type));
    return fill(obj, v);
  }

  // Writes the contents of a new object (depth is bounded by kMaxPatchValueDepth).
  Status fill(ObjRef obj, const nlohmann::json& v) {
    if (v.is_string()) return tx_.splice_text(obj, 0, 0, v.get_ref<const std::string&>());
    if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) GM_TRY(insert_new(obj, i, v[i]));
      return Status::Ok();
    }
    for (auto m = v.begin(); m != v.end(); ++m) GM_TRY(put_new(obj, m.key(), m.value()));
    return Status::Ok();
  }

  // ---- copies of document values, with their types

  // A value read out of the document before it is written elsewhere: copy's
  // target may lie inside its source (RFC 6902 allows that), and move removes the
  // source first.
  struct Snapshot {
    std::optional<ObjType> type;  // unset for a scalar
    Value scalar;
    std::string text;
    std::vector<std::string> keys;  // map: keys[i] holds items[i]
    std::vector<Snapshot> items;    // list elements, or map values
  };

  Result<Snapshot> snapshot(const Transaction::Slot& s, size_t depth) {
    if (depth > kMaxCopyDepth)
      return limit_error("value to copy nested deeper than " + std::to_string(kMaxCopyDepth) + " levels");
    Snapshot out;
    if (!s.object) {
      out.scalar = s.value;
      if (s.is_counter()) out.scalar.int_value = s.counter_total;  // a new counter starts where this one is
      return out;
    }
    const ObjRef obj = *s.object;
    out.type = tx_.type(obj);
    switch (*out.type) {
      case ObjType::kText:
        for (const std::string& e : tx_.text_elements(obj)) out.text += e;
        break;
      case ObjType::kList:
        for (size_t i = 0, n = tx_.length(obj); i < n; ++i) {
          GM_ASSIGN_OR_RETURN(Transaction::Slot item, tx_.get(obj, i));
          GM_ASSIGN_OR_RETURN(Snapshot copy, snapshot(item, depth + 1));
          out.items.push_back(std::move(copy));
        }
        break;
      default:
        for (const std::string& key : tx_.keys(obj)) {
          GM_ASSIGN_OR_RETURN(Snapshot copy, snapshot(*tx_.get(obj, key), depth + 1));
          out.keys.push_back(key);
          out.items.push_back(std::move(copy));
        }
    }
    return out;
  }

  Result<Snapshot> snapshot_of(const Source& src) {
    if (src.root) {
      Snapshot root;
      root.type = ObjType::kMap;
      for (const std::string& key : tx_.keys(Transaction::root())) {
        GM_ASSIGN_OR_RETURN(Snapshot copy, snapshot(*tx_.get(Transaction::root(), key), 1));
        root.keys.push_back(key);
        root.items.push_back(std::move(copy));
      }
      return root;
    }
    return snapshot(src.slot, 0);
  }

  Status write_copy(const std::vector<std::string>& path, const Snapshot& v) {
    if (path.empty()) {
      if (v.type != ObjType::kMap && v.type != ObjType::kTable)
        return error("the root of a document must be a JSON object");
      const ObjRef root = Transaction::root();
      for (const std::string& key : tx_.keys(root)) GM_TRY(tx_.remove(root, key));
      for (size_t i = 0; i < v.keys.size(); ++i) GM_TRY(copy_into_map(root, v.keys[i], v.items[i]));
      return Status::Ok();
    }
    GM_ASSIGN_OR_RETURN(ObjRef parent, parent_of(path));
    const std::string& key = path.back();
    if (tx_.type(parent) == ObjType::kList) {
      Result<size_t> index = array_index(key, tx_.length(parent), true);
      if (!index) return error("path " + pointer(path, path.size()) + ": " + index.error().message);
      return copy_into_list(parent, *index, v);
    }
    return copy_into_map(parent, key, v);
  }

  Status copy_into_map(ObjRef map, const std::string& key, const Snapshot& v) {
    if (!v.type) return tx_.put(map, key, v.scalar);
    GM_ASSIGN_OR_RETURN(ObjRef obj, tx_.put_object(map, key, *v.type));
    return copy_contents(obj, v);
  }

  Status copy_into_list(ObjRef list, size_t index, const Snapshot& v) {
    if (!v.type) return tx_.insert(list, index, v.scalar);
    GM_ASSIGN_OR_RETURN(ObjRef obj, tx_.insert_object(list, index, *v.type));
    return copy_contents(obj, v);
  }

  Status copy_contents(ObjRef to, const Snapshot& v) {
    if (v.type == ObjType::kText) return tx_.splice_text(to, 0, 0, v.text);
    if (v.type == ObjType::kList) {
      for (size_t i = 0; i < v.items.size(); ++i) GM_TRY(copy_into_list(to, i, v.items[i]));
      return Status::Ok();
    }
    for (size_t i = 0; i < v.keys.size(); ++i) GM_TRY(copy_into_map(to, v.keys[i], v.items[i]));
    return Status::Ok();
  }

  Transaction& tx_;
};

}  // namespace

std::string json_pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::vector<std::string>> parse_json_pointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') return error("a JSON Pointer is \"\" or starts with \"/\"");
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (pointer[i] == '~') {
      if (i + 1 < pointer.size() && pointer[i + 1] == '0') {
        token += '~';
      } else if (i + 1 < pointer.size() && pointer[i + 1] == '1') {
        token += '/';
      } else {
        return error("\"~\" in a JSON Pointer must be followed by 0 or 1");
      }
      ++i;
      continue;
    }
    token += pointer[i];
  }
  return tokens;
}

Result<std::vector<JsonPatchOp>> parse_json_patch(const nlohmann::json& patch) {
  if (!patch.is_array()) return error("a JSON Patch is an array of operations");
  if (patch.size() > kMaxPatchOperations)
    return limit_error("patch of " + std::to_string(patch.size()) + " operations: more than the limit of " +
                       std::to_string(kMaxPatchOperations));
  std::vector<JsonPatchOp> out;
  out.reserve(patch.size());
  for (size_t i = 0; i < patch.size(); ++i) {
    const nlohmann::json& item = patch[i];
    auto fail = [&](const std::string& what) { return op_error(ErrorCode::kInvalid, i, nullptr, what); };
    if (!item.is_object()) return fail("not a JSON object");
    auto op_it = item.find("op");
    if (op_it == item.end() || !op_it->is_string()) return fail("no \"op\" string");
    const std::string& name = op_it->get_ref<const std::string&>();
    JsonPatchOp op;
    if (name == "add") {
      op.kind = Kind::kAdd;
    } else if (name == "remove") {
      op.kind = Kind::kRemove;
    } else if (name == "replace") {
      op.kind = Kind::kReplace;
    } else if (name == "move") {
      op.kind = Kind::kMove;
    } else if (name == "copy") {
      op.kind = Kind::kCopy;
    } else if (name == "test") {
      op.kind = Kind::kTest;
    } else {
      return fail("unknown op \"" + name.substr(0, 64) + "\" (add, remove, replace, move, copy, test)");
    }
    auto pointer_member = [&](const char* member, std::vector<std::string>* tokens, std::string* text) -> Status {
      auto it = item.find(member);
      if (it == item.end() || !it->is_string()) return fail(std::string("no \"") + member + "\" string");
      const std::string& p = it->get_ref<const std::string&>();
      if (p.size() > kMaxPatchStringBytes) return op_error(ErrorCode::kOverLimit, i, nullptr, "pointer too long");
      if (!is_valid_utf8(p)) return fail(std::string("\"") + member + "\" is not valid UTF-8");
      Result<std::vector<std::string>> parsed = parse_json_pointer(p);
      if (!parsed) return fail(std::string("\"") + member + "\": " + parsed.error().message);
      *tokens = std::move(*parsed);
      if (text) *text = p;
      return Status::Ok();
    };
    GM_TRY(pointer_member("path", &op.path, &op.path_text));
    if (op.kind == Kind::kMove || op.kind == Kind::kCopy) GM_TRY(pointer_member("from", &op.from, nullptr));
    if (op.kind == Kind::kAdd || op.kind == Kind::kReplace || op.kind == Kind::kTest) {
      auto it = item.find("value");
      if (it == item.end()) return op_error(ErrorCode::kInvalid, i, &op, "no \"value\"");
      Status checked = check_value(*it);
      if (!checked) return op_error(checked.error().code, i, &op, checked.error().message);
      op.value = *it;
    }
    out.push_back(std::move(op));
  }
  return out;
}

Result<std::vector<JsonPatchOp>> parse_json_patch(std::string_view body) {
  // nlohmann's parser keeps its own stack (no recursion), and invalid UTF-8 in a
  // string is a parse error.
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return error("the body is not valid JSON");
  return parse_json_patch(parsed);
}

Result<std::optional<Transaction::Committed>> apply_json_patch(Document& doc, const std::vector<JsonPatchOp>& patch,
                                                               const JsonPatchOptions& options) {
  if (options.actor.empty()) return error("no actor for the change");
  if (patch.size() > kMaxPatchOperations) return limit_error("too many operations");
  Transaction tx(doc, options.actor, options.time, options.message);
  tx.set_max_ops(kMaxPatchChangeOps);
  PatchWriter writer(tx);
  for (size_t i = 0; i < patch.size(); ++i) {
    Status s = writer.apply(patch[i]);
    if (!s) return op_error(s.error().code, i, &patch[i], s.error().message);
  }
  return tx.commit(doc);
}

}  // namespace gm::automerge
