#include "automerge/op_set.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>

#include "util/utf8.h"

namespace gm::automerge {

namespace {

// The action codes (types.h) as the op rows here store them, in a byte.
constexpr uint8_t action_code(Action a) { return static_cast<uint8_t>(a); }
constexpr uint8_t kActionMakeMap = action_code(Action::kMakeMap), kActionSet = action_code(Action::kSet),
                  kActionMakeList = action_code(Action::kMakeList), kActionDel = action_code(Action::kDelete),
                  kActionMakeText = action_code(Action::kMakeText), kActionInc = action_code(Action::kIncrement),
                  kActionMakeTable = action_code(Action::kMakeTable), kActionMark = action_code(Action::kMark);

bool is_make(uint8_t action) {
  return action == kActionMakeMap || action == kActionMakeList || action == kActionMakeText ||
         action == kActionMakeTable;
}

std::string base64(std::string_view in) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = byte(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// JSON.stringify(new Date(ms)): Date.prototype.toISOString, null outside the
// ±8.64e15 ms range a JS Date can hold.
nlohmann::json iso_timestamp(int64_t ms) {
  constexpr int64_t kMaxDateMs = 8640000000000000;
  if (ms > kMaxDateMs || ms < -kMaxDateMs) return nullptr;
  constexpr int64_t kDayMs = 86400000;
  int64_t days = ms / kDayMs, rem = ms % kDayMs;
  if (rem < 0) {
    rem += kDayMs;
    --days;
  }
  // Days since 1970-01-01 to a proleptic Gregorian date, counting in 400-year eras
  // that start on March 1st (so the leap day is the last day of an era-year).
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t day_of_era = z - era * 146097;
  int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  int64_t year = year_of_era + era * 400;
  int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  int64_t mp = (5 * day_of_year + 2) / 153;
  int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  if (month <= 2) ++year;
  char buf[64];
  int64_t h = rem / 3600000, mi = rem / 60000 % 60, s = rem / 1000 % 60, milli = rem % 1000;
  if (year >= 0 && year <= 9999) {
    snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(year),
             static_cast<long long>(month), static_cast<long long>(day), static_cast<long long>(h),
             static_cast<long long>(mi), static_cast<long long>(s), static_cast<long long>(milli));
  } else {
    snprintf(buf, sizeof buf, "%c%06lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", year < 0 ? '-' : '+',
             static_cast<long long>(year < 0 ? -year : year), static_cast<long long>(month),
             static_cast<long long>(day), static_cast<long long>(h), static_cast<long long>(mi),
             static_cast<long long>(s), static_cast<long long>(milli));
  }
  return std::string(buf);
}

uint64_t hash_op_id(uint64_t counter, uint32_t actor) {
  uint64_t x = counter * 0x9e3779b97f4a7c15ull ^ (static_cast<uint64_t>(actor) + 1) * 0xc2b2ae3d27d4eb4full;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 32;
  return x;
}

constexpr size_t kMaxJsonDepth = 2000;  // deeper (or cyclic, in a hostile file) objects render as null

// The op index is kept at most half full: each probe of a lookup reads an op (a cache
// miss on a large document), and fuller, at 3/4, loading 4.7M ops took 15% longer.
bool over_load(size_t ops, size_t slots) { return ops * 2 > slots; }
size_t index_slots(size_t ops) {
  size_t size = 64;
  while (over_load(ops, size)) size *= 2;
  return size;
}

}  // namespace

OpSet::OpSet() {
  objects_.emplace_back();  // the root map
  index_.assign(64, kNone);
}

// ---- op index ------------------------------------------------------------------

uint32_t OpSet::find_op(uint64_t counter, uint32_t actor) const {
  size_t mask = index_.size() - 1;
  for (size_t slot = hash_op_id(counter, actor) & mask;; slot = (slot + 1) & mask) {
    uint32_t op = index_[slot];
    if (op == kNone) return kNone;
    if (ops_[op].counter == counter && ops_[op].actor == actor) return op;
  }
}

bool OpSet::index_op(uint32_t op) {
  if (over_load(ops_.size() + 1, index_.size())) grow_index();
  size_t mask = index_.size() - 1;
  const StoredOp& o = ops_[op];
  size_t slot = hash_op_id(o.counter, o.actor) & mask;
  for (; index_[slot] != kNone; slot = (slot + 1) & mask) {
    const StoredOp& there = ops_[index_[slot]];
    if (there.counter == o.counter && there.actor == o.actor) return false;
  }
  index_[slot] = op;
  return true;
}

void OpSet::grow_index() {
  const size_t size = std::max(index_.size(), index_slots(ops_.size() + 1));
  std::vector<uint32_t> old = std::move(index_);
  index_.assign(size, kNone);
  size_t mask = size - 1;
  for (uint32_t op : old) {
    if (op == kNone) continue;
    size_t slot = hash_op_id(ops_[op].counter, ops_[op].actor) & mask;
    while (index_[slot] != kNone) slot = (slot + 1) & mask;
    index_[slot] = op;
  }
}

// ---- tables ----------------------------------------------------------------------

uint32_t OpSet::find_actor(ByteView actor) const {
  // Most changes come from the actor of the previous one.
  if (last_actor_ < actors_.size() && std::equal(actor.begin(), actor.end(), actors_[last_actor_].begin(),
                                                 actors_[last_actor_].end()))
    return last_actor_;
  auto it = actor_index_.find(as_string(actor));
  if (it == actor_index_.end()) return kNone;
  last_actor_ = it->second;
  return it->second;
}

uint32_t OpSet::intern_actor(ByteView actor) {
  uint32_t known = find_actor(actor);
  if (known != kNone) return known;
  uint32_t idx = static_cast<uint32_t>(actors_.size());
  actors_.emplace_back(actor.begin(), actor.end());
  actor_index_.emplace(std::string(as_string(actor)), idx);
  // Keep the sorted order and ranks current: O(actors) per new actor, nothing
  // per op. Actors usually arrive in sorted order (a document's table is).
  auto pos = std::lower_bound(sorted_actors_.begin(), sorted_actors_.end(), idx,
                              [&](uint32_t a, uint32_t b) { return actors_[a] < actors_[b]; });
  size_t from = static_cast<size_t>(pos - sorted_actors_.begin());
  sorted_actors_.insert(pos, idx);
  rank_.push_back(0);
  for (size_t r = from; r < sorted_actors_.size(); ++r) rank_[sorted_actors_[r]] = static_cast<uint32_t>(r);
  return idx;
}

uint32_t OpSet::intern_key(std::string_view key) {
  std::string k(key);
  auto it = key_index_.find(k);
  if (it != key_index_.end()) return it->second;
  uint32_t idx = static_cast<uint32_t>(keys_.size());
  keys_.push_back(k);
  key_index_.emplace(std::move(k), idx);
  return idx;
}

// ---- values ----------------------------------------------------------------------

void OpSet::store_value(StoredOp& op, const Value& v) {
  op.value_type = v.type;
  op.payload = scalar_bits(v);
  if (!v.has_bytes()) return;
  if (v.bytes.size() <= sizeof(op.payload)) {
    op.value_len = static_cast<uint8_t>(v.bytes.size());
    std::memcpy(&op.payload, v.bytes.data(), v.bytes.size());
  } else {
    // Longer values go to the arena after their length (callers refuse 2^32 bytes and more).
    op.value_len = kInArena;
    op.payload = arena_.size();
    const uint32_t len = static_cast<uint32_t>(v.bytes.size());
    arena_.append(reinterpret_cast<const char*>(&len), sizeof len);
    arena_.append(v.bytes);
  }
}

std::string_view OpSet::value_bytes(const StoredOp& op) const {
  if (op.value_len != kInArena) return {reinterpret_cast<const char*>(&op.payload), op.value_len};
  uint32_t len;
  std::memcpy(&len, arena_.data() + op.payload, sizeof len);
  return std::string_view(arena_).substr(op.payload + sizeof len, len);
}

Value OpSet::load_value(const StoredOp& op) const {
  Value v;
  v.type = op.value_type;
  if (v.has_bytes()) {
    v.bytes = std::string(value_bytes(op));
  } else {
    set_scalar_bits(v, op.payload);
  }
  return v;
}

// ---- structure -------------------------------------------------------------------

void OpSet::add_succ(uint32_t op, uint64_t counter, uint32_t actor) {
  uint32_t entry = static_cast<uint32_t>(succs_.size());
  succs_.push_back({counter, actor, ops_[op].succ});
  ops_[op].succ = entry;
}

void OpSet::link_into_chain(uint32_t* head, uint32_t op) {
  while (*head != kNone && op_less(op, *head)) head = &ops_[*head].chain;
  ops_[op].chain = *head;
  *head = op;
}

uint32_t OpSet::object_of_make_op(uint32_t op) const {
  auto it = object_by_make_op_.find(op);
  return it == object_by_make_op_.end() ? kNone : it->second;
}

Result<OpSet> OpSet::from_document(const DecodedDocument& doc) {
  GM_TRY(check_document_indexes(doc));
  OpSet s;
  std::vector<uint32_t> actor_map(doc.actors.size());
  for (size_t i = 0; i < doc.actors.size(); ++i) actor_map[i] = s.intern_actor(doc.actors[i]);
  if (doc.ops.size() >= kNone / 2) return error("document has too many ops");
  s.ops_.reserve(doc.ops.size());
  s.index_.assign(index_slots(doc.ops.size() + 1), kNone);

  // Pass 1: store every op and index it; create the objects of make ops.
  Value value;  // reused: its string keeps its capacity
  for (size_t i = 0; i < doc.ops.size(); ++i) {
    const DecodedDocument::OpRow& op = doc.ops[i];
    auto where = [&](const std::string& what) { return error("document op " + std::to_string(i) + ": " + what); };
    if (op.id.counter == 0) return where("op counter 0");
    if (op.id.actor >= doc.actors.size()) return where("actor index out of range");
    if (op.action > kActionMark || op.action == kActionDel)
      return where("action " + std::to_string(op.action) + " cannot be stored in a document");
    StoredOp so;
    so.counter = static_cast<uint32_t>(op.id.counter);  // decode refuses more than kMaxOpCounter
    so.actor = actor_map[op.id.actor];
    so.action = static_cast<uint8_t>(op.action);
    doc.value_into(op, value);
    if (value.kind() == ValueType::kString && !is_valid_utf8(value.bytes)) return where("invalid UTF-8 in value");
    if (value.bytes.size() >= kNone) return where("value too long");
    s.store_value(so, value);
    so.flags = (op.insert ? kInsert : 0) | (op.expand ? kExpand : 0);
    uint32_t idx = static_cast<uint32_t>(s.ops_.size());
    if (op.mark_name.present()) {
      const std::string_view name = doc.text_of(op.mark_name);
      if (!is_valid_utf8(name)) return where("invalid UTF-8 in mark name");
      so.flags |= kHasMarkName;
      s.mark_names_.emplace(idx, std::string(name));
    }
    s.ops_.push_back(so);
    if (!s.index_op(idx)) return where("duplicate op id");
    for (const DecodedDocument::RowId succ : doc.succ(op)) {
      if (succ.actor >= doc.actors.size()) return where("succ actor index out of range");
      s.add_succ(idx, succ.counter, actor_map[succ.actor]);
    }
    if (is_make(so.action)) {
      Object obj;
      obj.make_op = idx;
      obj.type = so.action == kActionMakeMap    ? ObjType::kMap
                 : so.action == kActionMakeList ? ObjType::kList
                 : so.action == kActionMakeText ? ObjType::kText
                                                : ObjType::kTable;
      s.object_by_make_op_.emplace(idx, static_cast<uint32_t>(s.objects_.size()));
      s.objects_.push_back(std::move(obj));
    }
  }

  // Pass 2: place each op in its object, elements in the order given.
  std::vector<uint32_t> tail(s.objects_.size(), kNone);
  // Ops come object by object (§1.10), and a text typed in order has each element
  // right after the one it follows: both are checked before the index is asked.
  OpId last_obj{};
  uint32_t last_obj_index = 0;
  for (size_t i = 0; i < doc.ops.size(); ++i) {
    const DecodedDocument::OpRow& op = doc.ops[i];
    auto where = [&](const std::string& what) { return error("document op " + std::to_string(i) + ": " + what); };
    uint32_t idx = static_cast<uint32_t>(i);
    uint32_t obj = 0;
    if (!op.obj.is_root() && op.obj == last_obj) {
      obj = last_obj_index;
    } else if (!op.obj.is_root()) {
      if (op.obj.actor >= doc.actors.size()) return where("object actor index out of range");
      uint32_t make = s.find_op(op.obj.counter, actor_map[op.obj.actor]);
      obj = make == kNone ? kNone : s.object_of_make_op(make);
      if (obj == kNone) return where("unknown object");
      last_obj = op.obj;
      last_obj_index = obj;
    }
    s.ops_[idx].obj = obj;
    Object& o = s.objects_[obj];
    if (!o.is_seq()) {
      if (!op.is_map() || op.insert) return where("map op without a map key");
      const std::string_view map_key = doc.text_of(op.key);
      if (!is_valid_utf8(map_key)) return where("invalid UTF-8 in map key");
      uint32_t key = s.intern_key(map_key);
      s.ops_[idx].key = key;
      auto [it, fresh] = o.keys.try_emplace(key, kNone);
      s.link_into_chain(&it->second, idx);
      continue;
    }
    if (op.is_map()) return where("sequence op with a map key");
    if (s.ops_[idx].action == kActionMark && !op.insert) return where("mark op that is not an insert");
    uint32_t elem = kNone;
    if (!op.elem.is_root()) {
      if (op.elem.actor >= doc.actors.size()) return where("element actor index out of range");
      const uint32_t elem_actor = actor_map[op.elem.actor];
      elem = idx > 0 && s.ops_[idx - 1].counter == op.elem.counter && s.ops_[idx - 1].actor == elem_actor
                 ? idx - 1
                 : s.find_op(op.elem.counter, elem_actor);
      if (elem == kNone || !(s.ops_[elem].flags & kInsert) || s.ops_[elem].obj != obj || elem >= idx)
        return where("unknown element");
    }
    s.ops_[idx].key = elem;
    if (op.insert) {
      if (tail[obj] == kNone) {
        o.first = idx;
      } else {
        s.ops_[tail[obj]].next = idx;
      }
      tail[obj] = idx;
    } else {
      if (elem == kNone) return where("non-insert op on HEAD");
      s.link_into_chain(&s.ops_[elem].chain, idx);
    }
  }
  return s;
}

Status OpSet::apply_change(const Change& change) {
  const size_t n = change.ops.size();
  if (change.start_op == 0) return error("change has startOp 0");
  if (n > 0 && change.start_op + n - 1 < change.start_op) return error("change op counters overflow");
  if (ops_.size() + n >= kNone / 2) return error("op set is full");

  // Map the change's actor table onto ours; actors we have not seen get the
  // indexes they will have once interned.
  std::vector<uint32_t>& actor_map = scratch_.actor_map;
  actor_map.resize(1 + change.other_actors.size());
  std::vector<const ActorId*> new_actors;
  auto lookup_actor = [&](const ActorId& a) {
    uint32_t known = find_actor(a);
    if (known != kNone) return known;
    for (size_t k = 0; k < new_actors.size(); ++k)
      if (*new_actors[k] == a) return static_cast<uint32_t>(actors_.size() + k);
    new_actors.push_back(&a);
    return static_cast<uint32_t>(actors_.size() + new_actors.size() - 1);
  };
  actor_map[0] = lookup_actor(change.actor);
  for (size_t k = 0; k < change.other_actors.size(); ++k) actor_map[k + 1] = lookup_actor(change.other_actors[k]);
  const uint32_t author = actor_map[0];

  // Pass 1: check every reference, resolving ones to earlier ops of this change
  // without touching the op set. A resolved reference is an existing op index or
  // an earlier op j of this change (kPending | j); pass 2 reuses the resolutions.
  constexpr uint64_t kPending = 1ull << 32;
  constexpr uint64_t kWaiting = 2ull << 32;  // an insert whose element is still to come
  constexpr uint64_t kMissing = ~0ull;
  auto resolve = [&](const OpId& id, size_t before) -> uint64_t {
    if (id.actor >= actor_map.size()) return kMissing;
    uint32_t actor = actor_map[id.actor];
    if (actor == author && id.counter >= change.start_op && id.counter - change.start_op < before) {
      size_t j = id.counter - change.start_op;
      return change.ops[j].action == kActionDel ? kMissing : kPending | j;
    }
    if (actor >= actors_.size()) return kMissing;
    uint32_t op = find_op(id.counter, actor);
    return op == kNone ? kMissing : op;
  };
  std::vector<Resolved>& resolved = scratch_.resolved;
  std::vector<uint64_t>& preds = scratch_.preds;  // every op's resolved preds, in order
  resolved.resize(n);
  preds.clear();
  for (size_t i = 0; i < n; ++i) {
    const Op& op = change.ops[i];
    Resolved& r = resolved[i];
    auto where = [&](const std::string& what) {
      return error("change op " + std::to_string(i) + " (" + std::to_string(change.start_op + i) + "@" +
                   to_hex(change.actor) + "): " + what);
    };
    if (op.action > kActionMark) return where("unknown action " + std::to_string(op.action));
    if (change.start_op + i > kMaxOpCounter) return where("op counter larger than 2^32 - 1");
    if (author < actors_.size() && find_op(change.start_op + i, author) != kNone) return where("op already applied");
    if (op.value.kind() == ValueType::kString && !is_valid_utf8(op.value.bytes)) return where("invalid UTF-8 in value");
    if (op.value.bytes.size() >= kNone) return where("value too long");
    if (op.mark_name && !is_valid_utf8(*op.mark_name)) return where("invalid UTF-8 in mark name");
    r.obj = 0;
    bool seq = false;
    if (!op.obj.is_root()) {
      uint64_t make = resolve(op.obj, i);
      if (make == kMissing) return where("unknown object");
      uint8_t action;
      if (make & kPending) {
        action = static_cast<uint8_t>(change.ops[make & 0xffffffffu].action);
        r.obj = make;
      } else {
        action = ops_[make].action;
        r.obj = object_of_make_op(static_cast<uint32_t>(make));
      }
      if (!is_make(action)) return where("object id names an op that makes no object");
      seq = action == kActionMakeList || action == kActionMakeText;
    }
    r.elem = kNone;
    if (!seq) {
      if (!op.key.is_map() || op.insert) return where("map op without a map key");
      if (!is_valid_utf8(*op.key.map_key)) return where("invalid UTF-8 in map key");
      if (op.action == kActionMark) return where("mark op in a map");
    } else {
      if (op.key.is_map()) return where("sequence op with a map key");
      if (op.action == kActionMark && !op.insert) return where("mark op that is not an insert");
      if (op.action == kActionDel && op.insert) return where("delete op with insert set");
      if (op.key.elem.is_root()) {
        if (!op.insert) return where("non-insert op on HEAD");
      } else {
        uint64_t elem = resolve(op.key.elem, i);
        if (elem == kMissing) [[unlikely]] {
          if (!op.insert || !element_may_arrive_later(change, actor_map, op.key.elem, i))
            return where(unknown_element(change, op.key.elem));
          r.elem = kWaiting;
        } else {
          bool is_insert;
          uint64_t elem_obj;
          if (elem & kPending) {
            is_insert = change.ops[elem & 0xffffffffu].insert;
            elem_obj = resolved[elem & 0xffffffffu].obj;
          } else {
            is_insert = (ops_[elem].flags & kInsert) != 0;
            elem_obj = ops_[elem].obj;
          }
          if (!is_insert || elem_obj != r.obj) return where("unknown element");
          r.elem = elem;
        }
      }
    }
    for (const OpId& pred : op.pred) {
      uint64_t p = resolve(pred, i);
      if (p == kMissing) return where("unknown predecessor");
      preds.push_back(p);
    }
  }

  // Pass 2: nothing below can fail.
  for (const ActorId* a : new_actors) intern_actor(*a);
  if (ops_.capacity() < ops_.size() + n) ops_.reserve(std::max(ops_.size() + n, ops_.capacity() * 2));
  std::vector<uint32_t>& stored = scratch_.stored;  // op j of this change -> its index in ops_
  stored.resize(n);
  auto real = [&](uint64_t ref) -> uint32_t {
    return (ref & kPending) ? stored[ref & 0xffffffffu] : static_cast<uint32_t>(ref);
  };
  size_t next_pred = 0;
  for (size_t i = 0; i < n; ++i) {
    const Op& op = change.ops[i];
    const Resolved& r = resolved[i];
    const uint64_t counter = change.start_op + i;
    stored[i] = kNone;
    if (op.action != kActionDel) {
      uint32_t obj = (r.obj & kPending) ? object_of_make_op(stored[r.obj & 0xffffffffu]) : static_cast<uint32_t>(r.obj);
      StoredOp so;
      so.counter = static_cast<uint32_t>(counter);  // checked above
      so.actor = author;
      so.action = static_cast<uint8_t>(op.action);
      so.obj = obj;
      so.flags = (op.insert ? kInsert : 0) | (op.expand ? kExpand : 0) | (op.mark_name ? kHasMarkName : 0);
      store_value(so, op.value);
      uint32_t idx = static_cast<uint32_t>(ops_.size());
      ops_.push_back(so);
      index_op(idx);
      stored[i] = idx;
      if (op.mark_name) mark_names_.emplace(idx, *op.mark_name);
      if (is_make(so.action)) {
        Object o;
        o.make_op = idx;
        o.type = so.action == kActionMakeMap    ? ObjType::kMap
                 : so.action == kActionMakeList ? ObjType::kList
                 : so.action == kActionMakeText ? ObjType::kText
                                                : ObjType::kTable;
        object_by_make_op_.emplace(idx, static_cast<uint32_t>(objects_.size()));
        objects_.push_back(std::move(o));
      }
      Object& o = objects_[obj];
      if (!o.is_seq()) {
        uint32_t key = intern_key(*op.key.map_key);
        ops_[idx].key = key;
        auto [it, fresh] = o.keys.try_emplace(key, kNone);
        link_into_chain(&it->second, idx);
      } else if (r.elem == kWaiting) [[unlikely]] {
        // Detached until its element arrives (key stays kNone until then).
        ops_[idx].key = kNone;
        ++waiting_count_;
        waiting_[{op.key.elem.counter, actor_map[op.key.elem.actor]}].push_back(idx);
      } else {
        uint32_t elem = r.elem == kNone ? kNone : real(r.elem);
        ops_[idx].key = elem;
        if (op.insert) {
          // RGA (§1.10): after the reference element, then past every element
          // with a greater id.
          uint32_t* link = elem == kNone ? &o.first : &ops_[elem].next;
          while (*link != kNone && op_less(idx, *link)) link = &ops_[*link].next;
          ops_[idx].next = *link;
          *link = idx;
        } else {
          link_into_chain(&ops_[elem].chain, idx);
        }
      }
      if (!waiting_.empty() && op.insert) [[unlikely]] release_waiting(idx);
    }
    for (size_t k = 0; k < op.pred.size(); ++k) add_succ(real(preds[next_pred++]), counter, author);
  }
  return Status::Ok();
}

std::string OpSet::unknown_element(const Change& change, const OpId& elem) {
  std::string actor = elem.actor == 0                          ? to_hex(change.actor)
                      : elem.actor <= change.other_actors.size() ? to_hex(change.other_actors[elem.actor - 1])
                                                                 : "(actor index " + std::to_string(elem.actor) + ")";
  return "unknown element " + std::to_string(elem.counter) + "@" + actor;
}

uint64_t OpSet::highest_counter(uint32_t actor) {
  // Brought up to date only here (a causally inconsistent history or a bad
  // reference): each op and succ entry is looked at once over the op set's life.
  if (max_counter_.size() < actors_.size()) max_counter_.resize(actors_.size(), 0);
  for (; max_counter_ops_ < ops_.size(); ++max_counter_ops_) {
    const StoredOp& op = ops_[max_counter_ops_];
    max_counter_[op.actor] = std::max<uint64_t>(max_counter_[op.actor], op.counter);
  }
  for (; max_counter_succs_ < succs_.size(); ++max_counter_succs_) {
    const SuccEntry& e = succs_[max_counter_succs_];
    max_counter_[e.actor] = std::max(max_counter_[e.actor], e.counter);
  }
  return actor < max_counter_.size() ? max_counter_[actor] : 0;
}

bool OpSet::element_may_arrive_later(const Change& change, const std::vector<uint32_t>& actor_map, const OpId& ref,
                                     size_t op_index) {
  // The author's own ops are all in this change or its causal past.
  if (ref.actor == 0 || ref.actor >= actor_map.size() || actor_map[ref.actor] == actor_map[0]) return false;
  // An actor's later ops have higher counters than all its earlier ones.
  if (ref.counter <= highest_counter(actor_map[ref.actor])) return false;
  // Below the insert's own id, as in any causal history (npm refuses the rest).
  uint64_t counter = change.start_op + op_index;
  if (ref.counter != counter) return ref.counter < counter;
  return change.other_actors[ref.actor - 1] < change.actor;
}

void OpSet::release_waiting(uint32_t elem) {
  auto it = waiting_.find({ops_[elem].counter, ops_[elem].actor});
  if (it == waiting_.end()) return;
  std::vector<uint32_t>& ops = it->second;
  // An element of another object cannot take them: they stay, and
  // check_waiting_inserts() reports them.
  auto other_object =
      std::stable_partition(ops.begin(), ops.end(), [&](uint32_t w) { return ops_[w].obj != ops_[elem].obj; });
  for (auto w = other_object; w != ops.end(); ++w) {
    // The waiting insert and what was inserted after it since form a detached
    // run; RGA places its head after the element, past every greater id. The
    // order in which waiting inserts are placed does not matter: each one's id
    // is above its element's (checked when it arrived), as in any causal history.
    uint32_t head = *w, tail = head;
    while (ops_[tail].next != kNone) tail = ops_[tail].next;
    uint32_t* link = &ops_[elem].next;
    while (*link != kNone && op_less(head, *link)) link = &ops_[*link].next;
    ops_[tail].next = *link;
    *link = head;
    ops_[head].key = elem;
    --waiting_count_;
  }
  ops.erase(other_object, ops.end());
  if (ops.empty()) waiting_.erase(it);
}

Status OpSet::check_waiting_inserts() const {
  if (waiting_.empty()) return Status::Ok();
  const auto& [ref, ops] = *waiting_.begin();
  const StoredOp& w = ops_[ops.front()];
  return error(std::to_string(waiting_count_) + " insert op(s) wait for a reference element no applied change " +
               "created in their object, e.g. " + std::to_string(w.counter) + "@" + to_hex(actors_[w.actor]) +
               " inserts after " + std::to_string(ref.first) + "@" + to_hex(actors_[ref.second]) +
               " (unknown element)");
}

// ---- JSON view -------------------------------------------------------------------

bool OpSet::visible(const StoredOp& op) const {
  if (op.action == kActionDel || op.action == kActionInc || op.action >= kActionMark) return false;
  if (op.succ == kNone) return true;
  if (op.action != kActionSet || op.value_type != static_cast<uint8_t>(ValueType::kCounter)) return false;
  for (uint32_t e = op.succ; e != kNone; e = succs_[e].next) {
    uint32_t s = find_op(succs_[e].counter, succs_[e].actor);
    if (s == kNone || ops_[s].action != kActionInc) return false;
  }
  return true;
}

uint32_t OpSet::winner(uint32_t newest) const {
  for (uint32_t op = newest; op != kNone; op = ops_[op].chain)
    if (visible(ops_[op])) return op;
  return kNone;
}

nlohmann::json OpSet::render_value(uint32_t idx) const {
  const StoredOp& op = ops_[idx];
  switch (static_cast<ValueType>(op.value_type)) {
    case ValueType::kNull:
      return nullptr;
    case ValueType::kFalse:
      return false;
    case ValueType::kTrue:
      return true;
    case ValueType::kUint:
      return op.payload;
    case ValueType::kInt:
      return static_cast<int64_t>(op.payload);
    case ValueType::kF64: {
      double d;
      std::memcpy(&d, &op.payload, sizeof d);
      if (!std::isfinite(d)) return nullptr;
      if (d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
      return d;
    }
    case ValueType::kString:
      return std::string(value_bytes(op));
    case ValueType::kBytes:
      return base64(value_bytes(op));
    case ValueType::kCounter: {
      uint64_t total = op.payload;  // wrapping sum
      for (uint32_t e = op.succ; e != kNone; e = succs_[e].next) {
        uint32_t s = find_op(succs_[e].counter, succs_[e].actor);
        if (s != kNone) total += ops_[s].payload;  // int and uint deltas alike
      }
      return static_cast<int64_t>(total);
    }
    case ValueType::kTimestamp:
      return iso_timestamp(static_cast<int64_t>(op.payload));
    default:
      return nullptr;
  }
}

nlohmann::json OpSet::to_json() const {
  nlohmann::json root = nlohmann::json::object();
  render_tree(0, &root);
  return root;
}

nlohmann::json OpSet::value_to_json(uint32_t op) const {
  if (!is_make(ops_[op].action)) return render_value(op);
  uint32_t obj = object_of_make_op(op);
  if (obj == kNone) return nullptr;
  nlohmann::json out;
  render_tree(obj, &out);
  return out;
}

nlohmann::json OpSet::object_to_json(uint32_t obj) const {
  nlohmann::json out;
  render_tree(obj, &out);
  return out;
}

void OpSet::visible_ops_at_key(uint32_t obj, std::string_view key, std::vector<uint32_t>* out) const {
  out->clear();
  auto k = key_index_.find(std::string(key));
  if (k == key_index_.end()) return;
  auto it = objects_[obj].keys.find(k->second);
  if (it == objects_[obj].keys.end()) return;
  for (uint32_t op = it->second; op != kNone; op = ops_[op].chain)
    if (visible(ops_[op])) out->push_back(op);
}

void OpSet::visible_keys(uint32_t obj, std::vector<std::string>* out) const {
  out->clear();
  for (const auto& [key, newest] : objects_[obj].keys)
    if (winner(newest) != kNone) out->push_back(keys_[key]);
}

void OpSet::visible_elements(uint32_t obj, std::vector<uint32_t>* out) const {
  out->clear();
  for (uint32_t e = objects_[obj].first; e != kNone; e = ops_[e].next) {
    if (winner(ops_[e].chain) != kNone || visible(ops_[e])) out->push_back(e);
  }
}

void OpSet::visible_ops_at_element(uint32_t elem, std::vector<uint32_t>* out) const {
  out->clear();
  // Ops set on an element come after its insert op, so they have higher ids.
  for (uint32_t op = ops_[elem].chain; op != kNone; op = ops_[op].chain)
    if (visible(ops_[op])) out->push_back(op);
  if (visible(ops_[elem])) out->push_back(elem);
}

void OpSet::render_tree(uint32_t root_obj, nlohmann::json* root) const {
  // An explicit stack instead of recursion: a hostile document may nest deeply.
  // Each frame renders one object into `out`.
  struct Frame {
    uint32_t obj;
    nlohmann::json* out;
  };
  const ObjType root_type = objects_[root_obj].type;
  *root = root_type == ObjType::kList   ? nlohmann::json::array()
          : root_type == ObjType::kText ? nlohmann::json(std::string())
                                        : nlohmann::json::object();
  std::vector<Frame> stack{{root_obj, root}};
  std::vector<size_t> depth{0};
  auto value_of = [&](uint32_t op, nlohmann::json* slot, size_t d) {
    if (!is_make(ops_[op].action)) {
      *slot = render_value(op);
      return;
    }
    uint32_t child = object_of_make_op(op);
    if (d + 1 > kMaxJsonDepth || child == kNone) {
      *slot = nullptr;
      return;
    }
    ObjType t = objects_[child].type;
    *slot = t == ObjType::kList   ? nlohmann::json::array()
            : t == ObjType::kText ? nlohmann::json(std::string())
                                  : nlohmann::json::object();
    stack.push_back({child, slot});
    depth.push_back(d + 1);
  };
  while (!stack.empty()) {
    Frame f = stack.back();
    size_t d = depth.back();
    stack.pop_back();
    depth.pop_back();
    const Object& o = objects_[f.obj];
    if (!o.is_seq()) {
      // Keys are inserted first, then filled: nlohmann keeps object slots stable.
      for (const auto& [key, newest] : o.keys) {
        uint32_t w = winner(newest);
        if (w == kNone) continue;
        value_of(w, &(*f.out)[keys_[key]], d);
      }
    } else if (o.type == ObjType::kText) {
      std::string text;
      for (uint32_t e = o.first; e != kNone; e = ops_[e].next) {
        uint32_t w = winner(ops_[e].chain);
        if (w == kNone && visible(ops_[e])) w = e;
        if (w == kNone) continue;
        if (ops_[w].value_type == static_cast<uint8_t>(ValueType::kString) && !is_make(ops_[w].action)) {
          text += value_bytes(ops_[w]);
        } else {
          text += "\xef\xbf\xbc";  // U+FFFC
        }
      }
      *f.out = std::move(text);
    } else {
      nlohmann::json& arr = *f.out;
      size_t count = 0;
      for (uint32_t e = o.first; e != kNone; e = ops_[e].next) {
        uint32_t w = winner(ops_[e].chain);
        if (w == kNone && visible(ops_[e])) w = e;
        if (w != kNone) ++count;
      }
      arr.get_ref<nlohmann::json::array_t&>().reserve(count);
      for (uint32_t e = o.first; e != kNone; e = ops_[e].next) {
        uint32_t w = winner(ops_[e].chain);
        if (w == kNone && visible(ops_[e])) w = e;
        if (w == kNone) continue;
        arr.push_back(nullptr);
        value_of(w, &arr.back(), d);
      }
    }
  }
}

// ---- export ----------------------------------------------------------------------

std::vector<ActorId> OpSet::sorted_actors() const {
  std::vector<ActorId> out;
  out.reserve(actors_.size());
  for (uint32_t a : sorted_actors_) out.push_back(actors_[a]);
  return out;
}

void OpSet::export_ops(std::vector<ActorId>* actors, std::vector<Op>* out) const {
  *actors = sorted_actors();
  out->clear();
  out->reserve(ops_.size());
  visit_ops([&](const Op& op) { out->push_back(op); });
}

void OpSet::visit_ops(const std::function<void(const Op&)>& visit) const {
  auto op_id = [&](uint32_t op) {
    return OpId{ops_[op].counter, rank_[ops_[op].actor]};
  };
  std::vector<std::pair<uint64_t, uint32_t>> succ_ids;
  Op op;  // reused for every op: no allocation per op once its buffers have grown
  auto emit = [&](uint32_t idx, const OpId& obj_id) {
    const StoredOp& so = ops_[idx];
    op.id = op_id(idx);
    op.obj = obj_id;
    op.key.elem = OpId{};
    if (objects_[so.obj].is_seq()) {
      op.key.map_key.reset();
      if (so.key != kNone) op.key.elem = op_id(so.key);
    } else {
      op.key.map_key = keys_[so.key];
    }
    op.insert = (so.flags & kInsert) != 0;
    op.expand = (so.flags & kExpand) != 0;
    op.action = so.action;
    op.value = load_value(so);
    if (so.flags & kHasMarkName) {
      op.mark_name = mark_names_.at(idx);
    } else {
      op.mark_name.reset();
    }
    succ_ids.clear();
    for (uint32_t e = so.succ; e != kNone; e = succs_[e].next)
      succ_ids.emplace_back(succs_[e].counter, rank_[succs_[e].actor]);
    std::sort(succ_ids.begin(), succ_ids.end());
    op.pred.clear();
    for (auto [c, a] : succ_ids) op.pred.push_back(OpId{c, a});
    visit(op);
  };

  std::vector<uint32_t> order(objects_.size() - 1);
  for (uint32_t i = 1; i < objects_.size(); ++i) order[i - 1] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return op_less(objects_[a].make_op, objects_[b].make_op); });
  order.insert(order.begin(), 0);

  std::vector<uint32_t> chain;
  auto emit_chain_ascending = [&](uint32_t newest, const OpId& obj_id) {
    chain.clear();
    for (uint32_t op = newest; op != kNone; op = ops_[op].chain) chain.push_back(op);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) emit(*it, obj_id);
  };
  for (uint32_t obj : order) {
    const Object& o = objects_[obj];
    OpId obj_id = obj == 0 ? OpId{} : op_id(o.make_op);
    if (o.is_seq()) {
      for (uint32_t e = o.first; e != kNone; e = ops_[e].next) {
        emit(e, obj_id);
        emit_chain_ascending(ops_[e].chain, obj_id);
      }
    } else {
      std::vector<std::pair<std::string_view, uint32_t>> keys;
      keys.reserve(o.keys.size());
      for (const auto& [key, newest] : o.keys) keys.emplace_back(keys_[key], newest);
      std::sort(keys.begin(), keys.end());  // UTF-8 byte order
      for (const auto& [key, newest] : keys) emit_chain_ascending(newest, obj_id);
    }
  }
}

size_t OpSet::memory_bytes() const {
  size_t total = ops_.capacity() * sizeof(StoredOp) + succs_.capacity() * sizeof(SuccEntry) + arena_.capacity() +
                 index_.capacity() * sizeof(uint32_t) + objects_.capacity() * sizeof(Object);
  for (const auto& o : objects_) total += o.keys.size() * 32 + o.keys.bucket_count() * 8;
  total += object_by_make_op_.size() * 32 + object_by_make_op_.bucket_count() * 8;
  for (const auto& k : keys_) total += k.capacity() + 64;
  for (const auto& a : actors_) total += a.capacity() + 64;
  total += max_counter_.capacity() * sizeof(uint64_t) + waiting_.size() * 64 + waiting_count_ * sizeof(uint32_t);
  return total;
}

}  // namespace gm::automerge
