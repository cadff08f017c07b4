#include "repo/message.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "repo/cbor_value.h"
#include "repo/document_id.h"

namespace gm::repo {
namespace {

// ---------------------------------------------------------------------------
// Decoding: the CBOR tree (cbor_value.h) read as a message, with errors naming the
// field.

// Attacker-chosen strings quoted in errors are cut to a readable length.
std::string shorten(std::string_view s) {
  return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 40)) + "...";
}

// Field access on a decoded map, with errors naming the field.
class Fields {
 public:
  static Result<Fields> of(const CborValue& map, std::string where) {
    if (map.kind != CborValue::Kind::kMap) return error(where + " is a " + kind_name(map.kind) + ", expected a map");
    Fields f(map, std::move(where));
    for (size_t i = 0; i < map.items.size(); i += 2) {
      const CborValue& key = map.items[i];
      if (key.kind != CborValue::Kind::kText) {
        return error(f.where_ + " has a " + kind_name(key.kind) + " key; keys must be text strings");
      }
    }
    // Duplicate keys would make a message ambiguous; quadratic for the usual handful
    // of keys, sorted beyond that so a forged map cannot make this slow.
    size_t n = map.items.size() / 2;
    if (n <= 32) {
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < i; ++j) {
          if (map.items[2 * j].str == map.items[2 * i].str) return f.duplicate(map.items[2 * i].str);
        }
      }
    } else {
      std::vector<std::string_view> keys;
      keys.reserve(n);
      for (size_t i = 0; i < n; ++i) keys.push_back(map.items[2 * i].str);
      std::sort(keys.begin(), keys.end());
      auto dup = std::adjacent_find(keys.begin(), keys.end());
      if (dup != keys.end()) return f.duplicate(*dup);
    }
    return f;
  }

  // nullptr if absent or undefined.
  const CborValue* find(std::string_view key) const {
    for (size_t i = 0; i < map_->items.size(); i += 2) {
      if (map_->items[i].str == key) {
        const CborValue* v = &map_->items[i + 1];
        return v->kind == CborValue::Kind::kUndefined ? nullptr : v;
      }
    }
    return nullptr;
  }

  Result<const CborValue*> require(std::string_view key, CborValue::Kind kind) const {
    const CborValue* v = find(key);
    if (!v) return error(where_ + " lacks field \"" + std::string(key) + "\"");
    if (v->kind != kind) return wrong_type(key, *v, kind_name(kind));
    return v;
  }

  Result<std::string> text(std::string_view key) const {
    GM_ASSIGN_OR_RETURN(const CborValue* v, require(key, CborValue::Kind::kText));
    return std::string(v->str);
  }

  // A peer, storage or session id: text of at most kMaxIdBytes (a client could send
  // megabytes, kept per peer and copied into every relayed message).
  Result<std::string> id(std::string_view key) const {
    GM_ASSIGN_OR_RETURN(std::string v, text(key));
    if (v.size() > kMaxIdBytes) return too_long_id(key, v.size());
    return v;
  }
  Result<std::optional<std::string>> optional_id(std::string_view key) const {
    GM_ASSIGN_OR_RETURN(std::optional<std::string> v, optional_text(key));
    if (v && v->size() > kMaxIdBytes) return too_long_id(key, v->size());
    return v;
  }
  static Error too_long_id(std::string_view key, size_t size) {
    return limit_error(std::string(key) + " is " + std::to_string(size) + " bytes long; ids may have at most " +
                       std::to_string(kMaxIdBytes));
  }

  Result<std::optional<std::string>> optional_text(std::string_view key) const {
    const CborValue* v = find(key);
    if (!v) return std::optional<std::string>();
    if (v->kind != CborValue::Kind::kText) return wrong_type(key, *v, "text string");
    return std::optional<std::string>(std::string(v->str));
  }

  Result<Bytes> bytes(std::string_view key) const {
    GM_ASSIGN_OR_RETURN(const CborValue* v, require(key, CborValue::Kind::kBytes));
    ByteView b = as_bytes(v->str);
    return Bytes(b.begin(), b.end());
  }

  // A non-negative integer: CBOR uint, or an integral float ≤ 2^53 (cbor-x writes
  // integers ≥ 2^32 as floats).
  Result<uint64_t> uint(std::string_view key) const {
    const CborValue* v = find(key);
    if (!v) return error(where_ + " lacks field \"" + std::string(key) + "\"");
    if (v->kind == CborValue::Kind::kUint) return v->uint;
    if (v->kind == CborValue::Kind::kFloat && v->number >= 0 && v->number <= 9007199254740992.0 &&
        std::floor(v->number) == v->number) {
      return static_cast<uint64_t>(v->number);
    }
    return wrong_type(key, *v, "non-negative integer");
  }

  // Any finite number (int or float).
  Result<double> number(std::string_view key) const {
    const CborValue* v = find(key);
    if (!v) return error(where_ + " lacks field \"" + std::string(key) + "\"");
    if (v->kind == CborValue::Kind::kUint) return static_cast<double>(v->uint);
    if (v->kind == CborValue::Kind::kNegint) return -1.0 - static_cast<double>(v->uint);
    if (v->kind == CborValue::Kind::kFloat && std::isfinite(v->number)) return v->number;
    return wrong_type(key, *v, "finite number");
  }

  Result<std::optional<bool>> optional_bool(std::string_view key) const {
    const CborValue* v = find(key);
    if (!v) return std::optional<bool>();
    if (v->kind != CborValue::Kind::kBool) return wrong_type(key, *v, "boolean");
    return std::optional<bool>(v->boolean);
  }

  // Array of text strings; absent → nullopt.
  Result<std::optional<std::vector<std::string>>> optional_text_array(std::string_view key) const {
    const CborValue* v = find(key);
    if (!v) return std::optional<std::vector<std::string>>();
    if (v->kind != CborValue::Kind::kArray) return wrong_type(key, *v, "array of text strings");
    std::vector<std::string> out;
    out.reserve(v->items.size());
    for (size_t i = 0; i < v->items.size(); ++i) {
      const CborValue& item = v->items[i];
      if (item.kind != CborValue::Kind::kText) {
        return error(where_ + " field \"" + std::string(key) + "\" item " + std::to_string(i) + " is a " +
                     kind_name(item.kind) + ", expected a text string");
      }
      out.emplace_back(item.str);
    }
    return std::optional<std::vector<std::string>>(std::move(out));
  }

  Result<std::string> document_id() const {
    GM_ASSIGN_OR_RETURN(std::string id, text("documentId"));
    auto st = validate_document_id(id);
    if (!st.ok()) return context(where_, st.error());
    return id;
  }

  const std::string& where() const { return where_; }
  void set_where(std::string where) { where_ = std::move(where); }

 private:
  Fields(const CborValue& map, std::string where) : map_(&map), where_(std::move(where)) {}

  Error duplicate(std::string_view key) const {
    return error(where_ + " has key \"" + shorten(key) + "\" twice");
  }

  Error wrong_type(std::string_view key, const CborValue& v, const char* expected) const {
    return error(where_ + " field \"" + std::string(key) + "\" is a " + kind_name(v.kind) + ", expected " + expected);
  }

  const CborValue* map_;
  std::string where_;
};

Result<PeerMetadata> decode_peer_metadata(const Fields& f) {
  PeerMetadata meta;
  const CborValue* v = f.find("peerMetadata");
  if (!v) return meta;  // the JS adapters tolerate a missing peerMetadata
  GM_ASSIGN_OR_RETURN(Fields m, Fields::of(*v, f.where() + " peerMetadata"));
  GM_ASSIGN_OR_RETURN(meta.storage_id, m.optional_id("storageId"));
  GM_ASSIGN_OR_RETURN(meta.is_ephemeral, m.optional_bool("isEphemeral"));
  return meta;
}

Result<Message> decode_fields(const Fields& f, const std::string& type) {
  if (type == "join") {
    JoinMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    GM_ASSIGN_OR_RETURN(m.peer_metadata, decode_peer_metadata(f));
    GM_ASSIGN_OR_RETURN(m.supported_protocol_versions, f.optional_text_array("supportedProtocolVersions"));
    return Message(std::move(m));
  }
  if (type == "peer") {
    PeerMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    GM_ASSIGN_OR_RETURN(m.target_id, f.id("targetId"));
    GM_ASSIGN_OR_RETURN(m.peer_metadata, decode_peer_metadata(f));
    GM_ASSIGN_OR_RETURN(m.selected_protocol_version, f.text("selectedProtocolVersion"));
    return Message(std::move(m));
  }
  if (type == "error") {
    ErrorMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    GM_ASSIGN_OR_RETURN(m.target_id, f.id("targetId"));
    GM_ASSIGN_OR_RETURN(m.message, f.text("message"));
    return Message(std::move(m));
  }
  if (type == "sync" || type == "request") {
    SyncMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    GM_ASSIGN_OR_RETURN(m.target_id, f.id("targetId"));
    GM_ASSIGN_OR_RETURN(m.document_id, f.document_id());
    GM_ASSIGN_OR_RETURN(m.data, f.bytes("data"));
    if (type == "sync") return Message(std::move(m));
    return Message(RequestMessage{std::move(m.sender_id), std::move(m.target_id), std::move(m.document_id),
                                  std::move(m.data)});
  }
  if (type == "doc-unavailable") {
    DocUnavailableMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    GM_ASSIGN_OR_RETURN(m.target_id, f.id("targetId"));
    GM_ASSIGN_OR_RETURN(m.document_id, f.document_id());
    return Message(std::move(m));
  }
  if (type == "ephemeral") {
    EphemeralMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    GM_ASSIGN_OR_RETURN(m.target_id, f.id("targetId"));
    GM_ASSIGN_OR_RETURN(m.document_id, f.document_id());
    GM_ASSIGN_OR_RETURN(m.session_id, f.id("sessionId"));
    GM_ASSIGN_OR_RETURN(m.count, f.uint("count"));
    GM_ASSIGN_OR_RETURN(m.data, f.bytes("data"));
    return Message(std::move(m));
  }
  if (type == "remote-subscription-change") {
    RemoteSubscriptionChangeMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    GM_ASSIGN_OR_RETURN(m.target_id, f.id("targetId"));
    GM_ASSIGN_OR_RETURN(auto add, f.optional_text_array("add"));
    GM_ASSIGN_OR_RETURN(auto remove, f.optional_text_array("remove"));
    if (add) m.add = std::move(*add);
    if (remove) m.remove = std::move(*remove);
    return Message(std::move(m));
  }
  if (type == "remote-heads-changed") {
    RemoteHeadsChangedMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    GM_ASSIGN_OR_RETURN(m.target_id, f.id("targetId"));
    GM_ASSIGN_OR_RETURN(m.document_id, f.document_id());
    GM_ASSIGN_OR_RETURN(const CborValue* heads_map, f.require("newHeads", CborValue::Kind::kMap));
    GM_ASSIGN_OR_RETURN(Fields heads_fields, Fields::of(*heads_map, f.where() + " newHeads"));
    (void)heads_fields;  // checks key types and duplicates
    m.new_heads.reserve(heads_map->items.size() / 2);
    for (size_t i = 0; i < heads_map->items.size(); i += 2) {
      RemoteHeads entry;
      entry.storage_id = std::string(heads_map->items[i].str);
      GM_ASSIGN_OR_RETURN(Fields e, Fields::of(heads_map->items[i + 1],
                                               f.where() + " newHeads[\"" + shorten(entry.storage_id) + "\"]"));
      GM_ASSIGN_OR_RETURN(auto heads, e.optional_text_array("heads"));
      if (!heads) return error(e.where() + " lacks field \"heads\"");
      entry.heads = std::move(*heads);
      GM_ASSIGN_OR_RETURN(entry.timestamp, e.number("timestamp"));
      m.new_heads.push_back(std::move(entry));
    }
    return Message(std::move(m));
  }
  if (type == "leave") {
    LeaveMessage m;
    GM_ASSIGN_OR_RETURN(m.sender_id, f.id("senderId"));
    return Message(std::move(m));
  }
  UnknownMessage m;
  m.type = type;
  auto sender = f.optional_id("senderId");
  if (sender.ok()) m.sender_id = std::move(*sender);
  return Message(std::move(m));
}

// ---------------------------------------------------------------------------
// Encoding: the fields in the order the JS adapters write them (message.h).

void encode_peer_metadata(CborEncoder& e, const PeerMetadata& m) {
  e.map((m.storage_id ? 1 : 0) + (m.is_ephemeral ? 1 : 0));
  if (m.storage_id) e.field("storageId", *m.storage_id);
  if (m.is_ephemeral) {
    e.text("isEphemeral");
    e.boolean(*m.is_ephemeral);
  }
}

void encode_text_array(CborEncoder& e, const std::vector<std::string>& items) {
  e.array(items.size());
  for (const auto& s : items) e.text(s);
}


// An ephemeral message's fields; with `shared`, the data's bytes are left out (their
// head stays) and *at says where they go (Frame).
void encode_ephemeral(CborEncoder& e, const EphemeralMessage& m, const Bytes* shared, size_t* at = nullptr) {
  e.map(7);
  e.field("type", "ephemeral");
  e.field("targetId", m.target_id);
  e.field("documentId", m.document_id);
  e.text("data");
  if (shared) {
    e.bytes_head(shared->size());
    *at = e.size();
  } else {
    e.bytes(m.data);
  }
  e.field("senderId", m.sender_id);
  e.text("count");
  e.uint(m.count);
  e.field("sessionId", m.session_id);
}

struct EncodeVisitor {
  CborEncoder& e;
  void operator()(const JoinMessage& m) {
    e.map(m.supported_protocol_versions ? 4 : 3);
    e.field("type", "join");
    e.field("senderId", m.sender_id);
    e.text("peerMetadata");
    encode_peer_metadata(e, m.peer_metadata);
    if (m.supported_protocol_versions) {
      e.text("supportedProtocolVersions");
      encode_text_array(e, *m.supported_protocol_versions);
    }
  }
  void operator()(const PeerMessage& m) {
    e.map(5);
    e.field("type", "peer");
    e.field("senderId", m.sender_id);
    e.text("peerMetadata");
    encode_peer_metadata(e, m.peer_metadata);
    e.field("selectedProtocolVersion", m.selected_protocol_version);
    e.field("targetId", m.target_id);
  }
  void operator()(const ErrorMessage& m) {
    e.map(4);
    e.field("type", "error");
    e.field("senderId", m.sender_id);
    e.field("message", m.message);
    e.field("targetId", m.target_id);
  }
  void sync_like(std::string_view type, const std::string& sender, const std::string& target, const std::string& doc,
                 const Bytes& data) {
    e.map(5);
    e.field("type", type);
    e.field("targetId", target);
    e.text("data");
    e.bytes(data);
    e.field("documentId", doc);
    e.field("senderId", sender);
  }
  void operator()(const SyncMessage& m) { sync_like("sync", m.sender_id, m.target_id, m.document_id, m.data); }
  void operator()(const RequestMessage& m) { sync_like("request", m.sender_id, m.target_id, m.document_id, m.data); }
  void operator()(const DocUnavailableMessage& m) {
    e.map(4);
    e.field("type", "doc-unavailable");
    e.field("documentId", m.document_id);
    e.field("targetId", m.target_id);
    e.field("senderId", m.sender_id);
  }
  void operator()(const EphemeralMessage& m) { encode_ephemeral(e, m, nullptr); }
  void operator()(const RemoteSubscriptionChangeMessage& m) {
    e.map(5);
    e.field("type", "remote-subscription-change");
    e.field("senderId", m.sender_id);
    e.field("targetId", m.target_id);
    e.text("add");
    encode_text_array(e, m.add);
    e.text("remove");
    encode_text_array(e, m.remove);
  }
  void operator()(const RemoteHeadsChangedMessage& m) {
    e.map(5);
    e.field("type", "remote-heads-changed");
    e.field("senderId", m.sender_id);
    e.field("targetId", m.target_id);
    e.field("documentId", m.document_id);
    e.text("newHeads");
    e.map(m.new_heads.size());
    for (const auto& h : m.new_heads) {
      e.text(h.storage_id);
      e.map(2);
      e.text("heads");
      encode_text_array(e, h.heads);
      e.text("timestamp");
      e.number(h.timestamp);
    }
  }
  void operator()(const LeaveMessage& m) {
    e.map(2);
    e.field("type", "leave");
    e.field("senderId", m.sender_id);
  }
  void operator()(const UnknownMessage& m) {
    e.map(m.sender_id ? 2 : 1);
    e.field("type", m.type);
    if (m.sender_id) e.field("senderId", *m.sender_id);
  }
};

struct TypeVisitor {
  std::string_view operator()(const JoinMessage&) const { return "join"; }
  std::string_view operator()(const PeerMessage&) const { return "peer"; }
  std::string_view operator()(const ErrorMessage&) const { return "error"; }
  std::string_view operator()(const SyncMessage&) const { return "sync"; }
  std::string_view operator()(const RequestMessage&) const { return "request"; }
  std::string_view operator()(const DocUnavailableMessage&) const { return "doc-unavailable"; }
  std::string_view operator()(const EphemeralMessage&) const { return "ephemeral"; }
  std::string_view operator()(const RemoteSubscriptionChangeMessage&) const { return "remote-subscription-change"; }
  std::string_view operator()(const RemoteHeadsChangedMessage&) const { return "remote-heads-changed"; }
  std::string_view operator()(const LeaveMessage&) const { return "leave"; }
  std::string_view operator()(const UnknownMessage& m) const { return m.type; }
};

}  // namespace

Result<Message> decode_message(ByteView frame) {
  if (frame.empty()) return error("empty frame: expected one CBOR map");
  GM_ASSIGN_OR_RETURN(CborValue root, decode_cbor(frame));
  if (root.kind != CborValue::Kind::kMap) {
    return error(std::string("message is a CBOR ") + kind_name(root.kind) + ", expected a map");
  }
  GM_ASSIGN_OR_RETURN(Fields fields, Fields::of(root, "message"));
  GM_ASSIGN_OR_RETURN(std::string type, fields.text("type"));
  // The type names the message in errors; keep a forged long one short.
  std::string shown = shorten(type);
  fields.set_where("\"" + shown + "\" message");
  return decode_fields(fields, type);
}

Frame encode_ephemeral(const EphemeralMessage& m, std::shared_ptr<const Bytes> data) {
  CborEncoder e;
  size_t at = 0;
  encode_ephemeral(e, m, data.get(), &at);
  return Frame(e.take(), std::move(data), at);
}

Bytes encode_message(const Message& message) {
  CborEncoder e;
  // Sync payloads dominate; one allocation in the common case.
  if (const auto* sync = std::get_if<SyncMessage>(&message)) e.reserve(sync->data.size() + 160);
  std::visit(EncodeVisitor{e}, message);
  return e.take();
}

std::string_view message_type(const Message& message) { return std::visit(TypeVisitor{}, message); }

}  // namespace gm::repo
