#include "automerge/doc_chunk.h"

#include <algorithm>
#include <cstring>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "automerge/op_columns.h"

namespace gm::automerge {

namespace {

// The change columns of a document chunk (§1.9); its op columns are in op_columns.h.
constexpr uint32_t kChangeActor = column_spec(0, ColumnType::kActor);
constexpr uint32_t kChangeSeq = column_spec(0, ColumnType::kDelta);
constexpr uint32_t kChangeMaxOp = column_spec(1, ColumnType::kDelta);
constexpr uint32_t kChangeTime = column_spec(2, ColumnType::kDelta);
constexpr uint32_t kChangeMessage = column_spec(3, ColumnType::kString);
constexpr uint32_t kChangeDepsCount = column_spec(4, ColumnType::kGroup);
constexpr uint32_t kChangeDepsIndex = column_spec(4, ColumnType::kDelta);
constexpr uint32_t kChangeExtraMeta = column_spec(5, ColumnType::kValueMeta);
constexpr uint32_t kChangeExtraRaw = column_spec(5, ColumnType::kValue);
constexpr uint32_t kKnownChangeColumns[] = {kChangeActor,     kChangeSeq,       kChangeMaxOp,
                                            kChangeTime,      kChangeMessage,   kChangeDepsCount,
                                            kChangeDepsIndex, kChangeExtraMeta, kChangeExtraRaw};

constexpr uint32_t kKnownOpColumns[] = {kOpObjActor,   kOpObjCounter, kOpKeyActor,    kOpKeyCounter,
                                        kOpKeyString,  kOpIdActor,    kOpIdCounter,   kOpInsert,
                                        kOpAction,     kOpValueMeta,  kOpValueRaw,    kOpSuccCount,
                                        kOpSuccActor,  kOpSuccCounter, kOpExpand,     kOpMarkName};

template <size_t N>
bool is_known(const uint32_t (&known)[N], uint32_t spec) {
  return std::find(std::begin(known), std::end(known), spec) != std::end(known);
}

// The columns of one table (changes or ops), DEFLATEd ones inflated.
struct ColumnTable {
  std::vector<ColumnInfo> columns;
  std::vector<Bytes> inflated;  // owns the data of inflated columns

  // Rows worth reserving up front: what the table's bytes plausibly hold. A run-length
  // column can claim far more; those rows grow the vectors as they really decode.
  size_t plausible_rows() const {
    size_t bytes = 0;
    for (const ColumnInfo& c : columns) bytes += c.data.size();
    return kMinRowLimit + kMaxRowsPerBodyByte * bytes;
  }

  ByteView get(uint32_t spec) const { return find_column(columns, spec); }
};

template <size_t N>
Status inflate_columns(ColumnTable& t, const uint32_t (&known)[N], const char* table,
                       std::vector<DecodedDocument::UnknownColumn>& unknown, size_t* inflated_total) {
  t.inflated.reserve(t.columns.size());
  for (ColumnInfo& c : t.columns) {
    if (c.deflated()) {
      auto data = inflate_raw(c.data, kMaxInflatedSize - *inflated_total);
      if (!data.ok()) {
        return context(std::string("document chunk: ") + table + " column with spec " + std::to_string(c.spec),
                       data.error());
      }
      *inflated_total += data->size();
      c.spec &= ~kDeflateBit;
      if (!is_known(known, c.spec)) {
        // Kept, not decoded: the inflated bytes move there (no copy).
        if (!data->empty()) unknown.push_back({c.spec, std::move(*data)});
        c.data = {};
        continue;
      }
      t.inflated.push_back(std::move(*data));
      c.data = t.inflated.back();
    }
    // An empty unknown column carries nothing (and the encoder omits empty columns).
    if (!is_known(known, c.spec) && !c.data.empty()) unknown.push_back({c.spec, Bytes(c.data.begin(), c.data.end())});
  }
  return Status::Ok();
}

// Reserves a large row vector and asks the kernel to back it with huge pages: the
// rows of a big document fill tens of megabytes once, and first-touch page faults
// (one per 4 KiB page) otherwise cost as much as decoding itself.
template <class T>
void reserve_rows(std::vector<T>& rows, size_t n) {
  rows.reserve(n);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const size_t bytes = rows.capacity() * sizeof(T);
  if (bytes < 2 * kHuge) return;
  uintptr_t begin = (reinterpret_cast<uintptr_t>(rows.data()) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(rows.data()) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

Error column_error(const char* table, const char* column, size_t row, const std::optional<Error>& e) {
  return error(std::string("document chunk: ") + table + " column '" + column + "', row " + std::to_string(row) +
               ": " + (e ? e->message : "malformed"));
}

Error row_error(const char* table, size_t row, const std::string& what) {
  return error(std::string("document chunk: ") + table + " row " + std::to_string(row) + ": " + what);
}

Error too_many_rows(const char* table, size_t max_rows) {
  return limit_error(std::string("document chunk: more than ") + std::to_string(max_rows) + " " + table + " rows (" +
                     (max_rows >= kMaxDocumentRows
                          ? "the limit for one document"
                          : "the limit for a chunk of this size: a run-length column claims more") +
                     ")");
}

// Rows an RLE column claims, counted up to one past `max_rows` (enough to refuse it).
// A malformed column claims none here; the decoder reports it.
size_t claimed_rows(ByteView column, size_t max_rows) {
  Result<uint64_t> rows = count_uleb_rle_rows(column, max_rows);
  return rows ? static_cast<size_t>(std::min<uint64_t>(*rows, SIZE_MAX)) : 0;
}

// A run-length string column repeats one string over many rows (a few bytes can claim
// a long string for millions of rows), and its decoder gives the same view for each
// of them: such a run is stored once. True if `s` is the view `last` (then kept).
bool same_view(std::string_view s, std::string_view& last) {
  if (s.data() == last.data() && s.size() == last.size()) return true;
  last = s;
  return false;
}

// Appends `bytes` to the document's text table.
Result<DecodedDocument::TextRef> add_text(DecodedDocument& doc, std::string_view bytes) {
  if (doc.text.size() + bytes.size() >= DecodedDocument::kNone) return error("document chunk: too much text");
  DecodedDocument::TextRef r{static_cast<uint32_t>(doc.text.size()), static_cast<uint32_t>(bytes.size())};
  doc.text.insert(doc.text.end(), bytes.begin(), bytes.end());
  return r;
}

Status set_value(DecodedDocument& doc, DecodedDocument::OpRow& op, const Value& v) {
  op.value_type = v.type;
  op.scalar = scalar_bits(v);
  op.bytes = {};
  if (!v.bytes.empty()) {
    GM_ASSIGN_OR_RETURN(op.bytes, add_text(doc, v.bytes));
  }
  return Status::Ok();
}

Status decode_changes(const ColumnTable& t, size_t max_rows, DecodedDocument& doc) {
  constexpr const char* kTable = "change";
  UlebDecoder actor(t.get(kChangeActor));
  DeltaDecoder seq(t.get(kChangeSeq));
  DeltaDecoder max_op(t.get(kChangeMaxOp));
  DeltaDecoder time(t.get(kChangeTime));
  StringDecoder message(t.get(kChangeMessage));
  UlebDecoder deps_count(t.get(kChangeDepsCount));
  DeltaDecoder deps_index(t.get(kChangeDepsIndex));
  ValueDecoder extra(t.get(kChangeExtraMeta), t.get(kChangeExtraRaw));
  size_t total_deps = 0;
  std::string_view last_message;
  const size_t nactors = doc.actors.size();
  // Every row has an actor, so the actor column's length is the row count.
  const size_t claimed = claimed_rows(t.get(kChangeActor), max_rows);
  if (claimed > max_rows) return too_many_rows(kTable, max_rows);
  reserve_rows(doc.changes, std::min(claimed, t.plausible_rows()));

  while (!(actor.done() && seq.done() && max_op.done() && time.done() && message.done() && deps_count.done() &&
           extra.done())) {
    const size_t row = doc.changes.size();
    if (row >= max_rows) return row_error(kTable, row, "more rows than the chunk size allows (corrupt run length?)");
    DecodedDocument::ChangeRow& c = doc.changes.emplace_back();
    std::optional<uint64_t> u;
    std::optional<int64_t> s;
    if (!actor.next(&u)) return column_error(kTable, "actor", row, actor.error());
    if (!u) return row_error(kTable, row, "missing actor");
    if (*u >= nactors) {
      return row_error(kTable, row, "actor index " + std::to_string(*u) + " out of range (" +
                                        std::to_string(nactors) + " actors)");
    }
    c.actor = static_cast<uint32_t>(*u);
    if (!seq.next(&s)) return column_error(kTable, "seq", row, seq.error());
    if (!s || *s < 1) return row_error(kTable, row, "missing or non-positive seq");
    c.seq = static_cast<uint64_t>(*s);
    if (!max_op.next(&s)) return column_error(kTable, "maxOp", row, max_op.error());
    if (!s || *s < 0) return row_error(kTable, row, "missing or negative maxOp");
    c.max_op = static_cast<uint64_t>(*s);
    if (!time.next(&s)) return column_error(kTable, "time", row, time.error());
    if (!s) return row_error(kTable, row, "missing time");
    c.time = *s;
    std::optional<std::string_view> m;
    if (!message.next(&m)) return column_error(kTable, "message", row, message.error());
    if (m) {
      if (!same_view(*m, last_message) || doc.messages.empty()) doc.messages.emplace_back(*m);
      c.message = static_cast<uint32_t>(doc.messages.size() - 1);
    }
    if (!deps_count.next(&u)) return column_error(kTable, "deps count", row, deps_count.error());
    uint64_t ndeps = u.value_or(0);
    if (ndeps > row) {
      return row_error(kTable, row, std::to_string(ndeps) + " deps but only " + std::to_string(row) + " earlier rows");
    }
    total_deps += ndeps;
    if (total_deps > max_rows) return row_error(kTable, row, "more deps than the chunk size allows");
    c.deps_begin = static_cast<uint32_t>(doc.change_deps.size());
    c.deps_count = static_cast<uint32_t>(ndeps);
    for (uint64_t i = 0; i < ndeps; ++i) {
      if (!deps_index.next(&s)) return column_error(kTable, "deps index", row, deps_index.error());
      if (!s) return row_error(kTable, row, "missing dep index");
      if (*s < 0 || static_cast<uint64_t>(*s) >= row) {
        return row_error(kTable, row, "dep index " + std::to_string(*s) + " does not name an earlier row");
      }
      doc.change_deps.push_back(static_cast<uint32_t>(*s));
    }
    Value v;
    if (!extra.next(&v)) return column_error(kTable, "extra bytes", row, extra.error());
    if (v.kind() == ValueType::kBytes) {
      if (!v.bytes.empty()) {
        c.extra = static_cast<uint32_t>(doc.extras.size());
        doc.extras.emplace_back(v.bytes.begin(), v.bytes.end());
      }
    } else if (v.kind() != ValueType::kNull) {
      return row_error(kTable, row, "extra bytes have value type " + std::to_string(v.type) + ", expected bytes (7)");
    }
  }
  if (!deps_index.done()) return error("document chunk: deps index column has more entries than the deps counts");
  return Status::Ok();
}

// An actor index read from a column: present and within the actor table.
bool valid_actor(const std::optional<uint64_t>& a, size_t nactors) { return a && *a < nactors; }

Status decode_ops(const ColumnTable& t, size_t max_rows, DecodedDocument& doc) {
  constexpr const char* kTable = "op";
  UlebDecoder obj_actor(t.get(kOpObjActor));
  UlebDecoder obj_counter(t.get(kOpObjCounter));
  UlebDecoder key_actor(t.get(kOpKeyActor));
  DeltaDecoder key_counter(t.get(kOpKeyCounter));
  StringDecoder key_string(t.get(kOpKeyString));
  UlebDecoder id_actor(t.get(kOpIdActor));
  DeltaDecoder id_counter(t.get(kOpIdCounter));
  BooleanDecoder insert(t.get(kOpInsert));
  UlebDecoder action(t.get(kOpAction));
  ValueDecoder value(t.get(kOpValueMeta), t.get(kOpValueRaw));
  UlebDecoder succ_count(t.get(kOpSuccCount));
  UlebDecoder succ_actor(t.get(kOpSuccActor));
  DeltaDecoder succ_counter(t.get(kOpSuccCounter));
  BooleanDecoder expand(t.get(kOpExpand));
  StringDecoder mark_name(t.get(kOpMarkName));
  const size_t nactors = doc.actors.size();
  size_t total_succ = 0;
  Value v;  // reused: its string keeps its capacity
  std::string_view last_key, last_mark;  // see same_view
  DecodedDocument::TextRef last_key_ref, last_mark_ref;
  // Every row has an action, so the action column's length is the row count.
  const size_t claimed = claimed_rows(t.get(kOpAction), max_rows);
  if (claimed > max_rows) return too_many_rows(kTable, max_rows);
  reserve_rows(doc.ops, std::min(claimed, t.plausible_rows()));

  auto all_done = [&] {
    return obj_actor.done() && obj_counter.done() && key_actor.done() && key_counter.done() && key_string.done() &&
           id_actor.done() && id_counter.done() && insert.done() && action.done() && value.done() &&
           succ_count.done() && expand.done() && mark_name.done();
  };
  while (!all_done()) {
    const size_t row = doc.ops.size();
    if (row >= max_rows) return row_error(kTable, row, "more rows than the chunk size allows (corrupt run length?)");
    DecodedDocument::OpRow& op = doc.ops.emplace_back();
    std::optional<uint64_t> a, u;
    std::optional<int64_t> s;
    std::optional<std::string_view> str;

    if (!obj_actor.next(&a)) return column_error(kTable, "obj actor", row, obj_actor.error());
    if (!obj_counter.next(&u)) return column_error(kTable, "obj counter", row, obj_counter.error());
    if (a.has_value() != u.has_value() || (u && *u == 0)) {
      return row_error(kTable, row, "object id needs both an actor and a positive counter, or neither (root)");
    }
    if (u) {
      if (!valid_actor(a, nactors)) return row_error(kTable, row, "object actor index out of range");
      op.obj = OpId{*u, static_cast<uint32_t>(*a)};
    }

    if (!key_actor.next(&a)) return column_error(kTable, "key actor", row, key_actor.error());
    if (!key_counter.next(&s)) return column_error(kTable, "key counter", row, key_counter.error());
    if (!key_string.next(&str)) return column_error(kTable, "key string", row, key_string.error());
    if (str) {
      if (a || s) return row_error(kTable, row, "op has both a map key and an element id");
      if (same_view(*str, last_key) && last_key_ref.present()) {
        op.key = last_key_ref;
      } else {
        GM_ASSIGN_OR_RETURN(op.key, add_text(doc, *str));
        last_key_ref = op.key;
      }
    } else {
      if (!s || *s < 0) return row_error(kTable, row, "op has neither a map key nor a valid element id");
      if (*s == 0) {
        if (a) return row_error(kTable, row, "HEAD element id with an actor");
      } else {
        if (!valid_actor(a, nactors)) return row_error(kTable, row, "element id actor missing or out of range");
        op.elem = OpId{static_cast<uint64_t>(*s), static_cast<uint32_t>(*a)};
      }
    }

    if (!id_actor.next(&a)) return column_error(kTable, "id actor", row, id_actor.error());
    if (!id_counter.next(&s)) return column_error(kTable, "id counter", row, id_counter.error());
    if (!valid_actor(a, nactors)) return row_error(kTable, row, "op id actor missing or out of range");
    if (!s || *s <= 0) return row_error(kTable, row, "op id counter missing or not positive");
    op.id = OpId{static_cast<uint64_t>(*s), static_cast<uint32_t>(*a)};

    if (!insert.next(&op.insert)) return column_error(kTable, "insert", row, insert.error());
    if (op.insert && op.is_map()) return row_error(kTable, row, "insert op with a map key");
    if (!action.next(&u)) return column_error(kTable, "action", row, action.error());
    if (!u) return row_error(kTable, row, "missing action");
    op.action = *u;
    if (!value.next(&v)) return column_error(kTable, "value", row, value.error());
    GM_TRY(set_value(doc, op, v));

    if (!succ_count.next(&u)) return column_error(kTable, "succ count", row, succ_count.error());
    uint64_t nsucc = u.value_or(0);
    if (nsucc > max_rows - total_succ) return row_error(kTable, row, "more succ entries than the chunk size allows");
    total_succ += nsucc;
    op.succ_begin = static_cast<uint32_t>(doc.succs.size());
    op.succ_count = static_cast<uint32_t>(nsucc);
    for (uint64_t i = 0; i < nsucc; ++i) {
      if (!succ_actor.next(&a)) return column_error(kTable, "succ actor", row, succ_actor.error());
      if (!succ_counter.next(&s)) return column_error(kTable, "succ counter", row, succ_counter.error());
      if (!valid_actor(a, nactors)) return row_error(kTable, row, "succ actor missing or out of range");
      if (!s || *s <= 0) return row_error(kTable, row, "succ counter missing or not positive");
      doc.succs.push_back(OpId{static_cast<uint64_t>(*s), static_cast<uint32_t>(*a)});
    }

    if (!expand.next(&op.expand)) return column_error(kTable, "expand", row, expand.error());
    if (!mark_name.next(&str)) return column_error(kTable, "mark name", row, mark_name.error());
    if (str) {
      if (same_view(*str, last_mark) && last_mark_ref.present()) {
        op.mark_name = last_mark_ref;
      } else {
        GM_ASSIGN_OR_RETURN(op.mark_name, add_text(doc, *str));
        last_mark_ref = op.mark_name;
      }
    }
  }
  if (!succ_actor.done() || !succ_counter.done()) {
    return error("document chunk: succ actor/counter columns have more entries than the succ counts");
  }
  return Status::Ok();
}

}  // namespace

DecodedDocument::ChangeRow& DecodedDocument::add_change(uint32_t actor, uint64_t seq, uint64_t max_op, int64_t time,
                                                        std::span<const uint32_t> deps, const std::string* message,
                                                        ByteView extra) {
  ChangeRow& c = changes.emplace_back();
  c.actor = actor;
  c.seq = seq;
  c.max_op = max_op;
  c.time = time;
  set_deps(c, deps);
  if (message) {
    c.message = static_cast<uint32_t>(messages.size());
    messages.push_back(*message);
  }
  if (!extra.empty()) {
    c.extra = static_cast<uint32_t>(extras.size());
    extras.emplace_back(extra.begin(), extra.end());
  }
  return c;
}

Value DecodedDocument::value(const OpRow& op) const {
  Value v;
  value_into(op, v);
  return v;
}

void DecodedDocument::value_into(const OpRow& op, Value& out) const {
  out.type = op.value_type;
  out.uint_value = 0;
  out.int_value = 0;
  out.f64_value = 0;
  set_scalar_bits(out, op.scalar);
  out.bytes.assign(text_of(op.bytes));
}

Op DecodedDocument::op(size_t i) const {
  const OpRow& row = ops[i];
  Op op;
  op.id = row.id;
  op.obj = row.obj;
  if (row.is_map()) op.key.map_key.emplace(text_of(row.key));
  op.key.elem = row.elem;
  op.insert = row.insert;
  op.action = row.action;
  op.value = value(row);
  const auto s = succ(row);
  op.pred.assign(s.begin(), s.end());
  op.expand = row.expand;
  if (row.mark_name.present()) op.mark_name.emplace(text_of(row.mark_name));
  return op;
}

void DecodedDocument::add_op(const Op& op) {
  ops.emplace_back();
  set_op(ops.size() - 1, op);
}

void DecodedDocument::set_op(size_t i, const Op& op) {
  OpRow row;
  row.id = op.id;
  row.obj = op.obj;
  row.elem = op.key.elem;
  row.insert = op.insert;
  row.action = op.action;
  row.expand = op.expand;
  // Documents built in memory are small: the text table cannot overflow here.
  if (op.key.map_key) row.key = *add_text(*this, *op.key.map_key);
  if (op.mark_name) row.mark_name = *add_text(*this, *op.mark_name);
  (void)set_value(*this, row, op.value);
  set_succ(row, op.pred);
  ops[i] = row;
}

void DecodedDocument::set_succ(OpRow& op, std::span<const OpId> succ) {
  op.succ_begin = static_cast<uint32_t>(succs.size());
  op.succ_count = static_cast<uint32_t>(succ.size());
  succs.insert(succs.end(), succ.begin(), succ.end());
}

void DecodedDocument::set_deps(ChangeRow& c, std::span<const uint32_t> deps) {
  c.deps_begin = static_cast<uint32_t>(change_deps.size());
  c.deps_count = static_cast<uint32_t>(deps.size());
  change_deps.insert(change_deps.end(), deps.begin(), deps.end());
}

bool operator==(const DecodedDocument& a, const DecodedDocument& b) {
  if (a.actors != b.actors || a.heads != b.heads || a.changes.size() != b.changes.size() ||
      a.heads_index != b.heads_index || a.unknown_change_columns != b.unknown_change_columns ||
      a.unknown_op_columns != b.unknown_op_columns || a.ops.size() != b.ops.size()) {
    return false;
  }
  for (size_t i = 0; i < a.changes.size(); ++i) {
    const DecodedDocument::ChangeRow& x = a.changes[i];
    const DecodedDocument::ChangeRow& y = b.changes[i];
    const std::string* xm = a.message(x);
    const std::string* ym = b.message(y);
    if (!(x.actor == y.actor && x.seq == y.seq && x.max_op == y.max_op && x.time == y.time &&
          std::ranges::equal(a.deps(x), b.deps(y)) && (xm && ym ? *xm == *ym : xm == ym) &&
          std::ranges::equal(a.extra(x), b.extra(y)))) {
      return false;
    }
  }
  for (size_t i = 0; i < a.ops.size(); ++i) {
    const DecodedDocument::OpRow& x = a.ops[i];
    const DecodedDocument::OpRow& y = b.ops[i];
    if (!(x.id == y.id && x.obj == y.obj && x.elem == y.elem && x.is_map() == y.is_map() &&
          a.text_of(x.key) == b.text_of(y.key) && x.insert == y.insert && x.action == y.action &&
          a.value(x) == b.value(y) && std::ranges::equal(a.succ(x), b.succ(y)) && x.expand == y.expand &&
          x.mark_name.present() == y.mark_name.present() && a.text_of(x.mark_name) == b.text_of(y.mark_name))) {
      return false;
    }
  }
  return true;
}

namespace {

bool lamport_less(const OpId& a, const OpId& b) { return a.counter != b.counter ? a.counter < b.counter : a.actor < b.actor; }

// The ops of one sequence object, rows [begin, end): elements in RGA order, the
// preorder of the tree in which each element hangs under the element it was inserted
// after, siblings by descending id. Requires every element to be later than the one it
// follows (which makes that preorder the order RGA insertion gives).
bool sequence_in_rga_order(const std::vector<DecodedDocument::OpRow>& ops, size_t begin, size_t end) {
  struct Level {
    OpId elem;  // counter 0: the head of the sequence
    std::optional<OpId> last_child;
  };
  std::vector<Level> path{Level{}};  // from the head to the element last seen
  OpId last_in_group;                // the last op of the current element's group
  bool any_element = false;
  for (size_t i = begin; i < end; ++i) {
    const DecodedDocument::OpRow& op = ops[i];
    if (op.is_map()) return false;
    if (!op.insert) {
      // An op on the current element, after the ops before it.
      if (!any_element || !(op.elem == path.back().elem) || !lamport_less(last_in_group, op.id)) return false;
      last_in_group = op.id;
      continue;
    }
    const OpId& after = op.elem;
    if (!after.is_root() && !lamport_less(after, op.id)) return false;
    while (!path.empty() && !(path.back().elem == after)) path.pop_back();
    if (path.empty()) return false;  // not on the way back from the last element
    Level& parent = path.back();
    if (parent.last_child && !lamport_less(op.id, *parent.last_child)) return false;
    parent.last_child = op.id;
    path.push_back(Level{op.id, std::nullopt});
    last_in_group = op.id;
    any_element = true;
  }
  return true;
}

// The ops of one map object, rows [begin, end): by key bytes, then by op id.
bool map_in_order(const DecodedDocument& doc, size_t begin, size_t end) {
  const auto& ops = doc.ops;
  for (size_t i = begin; i < end; ++i) {
    if (!ops[i].is_map()) return false;
    if (i == begin) continue;
    const std::string_view a = doc.text_of(ops[i - 1].key), b = doc.text_of(ops[i].key);
    if (a != b ? !(a < b) : !lamport_less(ops[i - 1].id, ops[i].id)) return false;
  }
  return true;
}

}  // namespace

bool has_canonical_op_order(const DecodedDocument& doc) {
  const auto& ops = doc.ops;
  // The kind of each object, from its make op.
  std::vector<std::pair<OpId, bool>> is_sequence;  // (make op id, list or text), by id
  for (const auto& op : ops) {
    const auto action = static_cast<Action>(op.action);
    if (action == Action::kMakeMap || action == Action::kMakeTable) is_sequence.emplace_back(op.id, false);
    if (action == Action::kMakeList || action == Action::kMakeText) is_sequence.emplace_back(op.id, true);
  }
  auto by_id = [](const std::pair<OpId, bool>& a, const std::pair<OpId, bool>& b) { return lamport_less(a.first, b.first); };
  std::sort(is_sequence.begin(), is_sequence.end(), by_id);
  for (size_t begin = 0; begin < ops.size();) {
    const OpId obj = ops[begin].obj;
    size_t end = begin + 1;
    while (end < ops.size() && ops[end].obj == obj) ++end;
    // Objects in order, each in one run: root (counter 0) first, then by id.
    if (end < ops.size() && !lamport_less(obj, ops[end].obj)) return false;
    bool sequence = false;
    if (!obj.is_root()) {
      auto it = std::lower_bound(is_sequence.begin(), is_sequence.end(), std::pair<OpId, bool>{obj, false}, by_id);
      if (it == is_sequence.end() || !(it->first == obj)) return false;
      sequence = it->second;
    }
    if (!(sequence ? sequence_in_rga_order(ops, begin, end) : map_in_order(doc, begin, end))) return false;
    begin = end;
  }
  return true;
}

Result<std::vector<ChangeHash>> document_heads(ByteView body) {
  Reader r(body);
  GM_ASSIGN_OR_RETURN(size_t nactors, r.count("actor count", 1));
  for (size_t i = 0; i < nactors; ++i) GM_TRY(r.length_prefixed("actor id"));
  GM_ASSIGN_OR_RETURN(size_t nheads, r.count("head count", 32));
  std::vector<ChangeHash> heads;
  heads.reserve(nheads);
  for (size_t i = 0; i < nheads; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView h, r.bytes(32, "head hash"));
    heads.push_back(ChangeHash::from_bytes(h));
  }
  return heads;
}

size_t document_row_limit(size_t body_size, uint64_t ceiling) {
  const uint64_t per_byte = kMinRowLimit + uint64_t{kMaxRowsPerBodyByte} * body_size;
  return static_cast<size_t>(std::min({per_byte, ceiling, uint64_t{SIZE_MAX}}));
}

Result<DecodedDocument> decode_document(ByteView body, size_t max_rows) {
  DecodedDocument doc;
  Reader r(body);
  GM_ASSIGN_OR_RETURN(size_t nactors, r.count("actor count", 1));
  doc.actors.reserve(nactors);
  for (size_t i = 0; i < nactors; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView actor, r.length_prefixed("actor id"));
    doc.actors.emplace_back(actor.begin(), actor.end());
    if (i > 0 && !(doc.actors[i - 1] < doc.actors[i])) return r.fail("document actors not sorted or repeated");
  }
  if (nactors > UINT32_MAX) return r.fail("too many actors");
  GM_ASSIGN_OR_RETURN(size_t nheads, r.count("head count", 32));
  doc.heads.reserve(nheads);
  for (size_t i = 0; i < nheads; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView head, r.bytes(32, "head hash"));
    doc.heads.push_back(ChangeHash::from_bytes(head));
    if (i > 0 && !(doc.heads[i - 1] < doc.heads[i])) return r.fail("document heads not sorted or repeated");
  }
  ColumnTable changes, ops;
  {
    auto meta = read_column_metadata(r);
    if (!meta.ok()) return context("document chunk: change column metadata", meta.error());
    changes.columns = std::move(*meta);
  }
  {
    auto meta = read_column_metadata(r);
    if (!meta.ok()) return context("document chunk: op column metadata", meta.error());
    ops.columns = std::move(*meta);
  }
  if (Status s = slice_column_data(changes.columns, r); !s.ok()) {
    return context("document chunk: change column data", s.error());
  }
  if (Status s = slice_column_data(ops.columns, r); !s.ok()) return context("document chunk: op column data", s.error());
  if (!r.done()) {
    doc.heads_index.reserve(nheads);
    for (size_t i = 0; i < nheads; ++i) {
      GM_ASSIGN_OR_RETURN(uint64_t index, r.uleb("heads index"));
      doc.heads_index.push_back(index);
    }
    if (!r.done()) return r.fail("trailing bytes after the heads index");
  }

  size_t inflated_total = 0;
  GM_TRY(inflate_columns(changes, kKnownChangeColumns, "change", doc.unknown_change_columns, &inflated_total));
  GM_TRY(inflate_columns(ops, kKnownOpColumns, "op", doc.unknown_op_columns, &inflated_total));

  if (max_rows == 0) max_rows = document_row_limit(body.size());
  GM_TRY(decode_changes(changes, max_rows, doc));
  GM_TRY(decode_ops(ops, max_rows, doc));
  for (size_t i = 0; i < doc.heads_index.size(); ++i) {
    if (doc.heads_index[i] >= doc.changes.size()) {
      return error("document chunk: heads index " + std::to_string(doc.heads_index[i]) + " of head " +
                   std::to_string(i) + " is not a change row (" + std::to_string(doc.changes.size()) + " changes)");
    }
  }
  return doc;
}

namespace {

// Appends the known columns and the unknown ones, sorted by spec, compressing
// long ones when asked.
void finish_columns(std::vector<ColumnOut>& cols, const std::vector<DecodedDocument::UnknownColumn>& unknown,
                    bool compress) {
  for (const auto& u : unknown) cols.push_back({u.spec & ~kDeflateBit, u.data});
  std::stable_sort(cols.begin(), cols.end(), [](const ColumnOut& a, const ColumnOut& b) { return a.spec < b.spec; });
  if (!compress) return;
  for (ColumnOut& c : cols) {
    if (c.data.size() >= kDeflateMinColumnSize) {
      c.data = deflate_raw(c.data);
      c.spec |= kDeflateBit;
    }
  }
}

}  // namespace

void ChangeColumnsWriter::append_row(uint32_t actor, uint64_t seq, uint64_t max_op, int64_t time,
                                     const std::string* message, size_t dep_count, ByteView extra) {
  actor_.append_value(actor);
  seq_.append(static_cast<int64_t>(seq));
  max_op_.append(static_cast<int64_t>(max_op));
  time_.append(time);
  if (message) {
    message_.append_value(*message);
  } else {
    message_.append_null();
  }
  deps_count_.append_value(dep_count);
  extra_value_.type = static_cast<uint8_t>(ValueType::kBytes);
  extra_value_.bytes.assign(extra.begin(), extra.end());
  extra_.append(extra_value_);
}

std::vector<ColumnOut> ChangeColumnsWriter::finish(bool compress,
                                                   const std::vector<DecodedDocument::UnknownColumn>& unknown) {
  std::vector<ColumnOut> cols;
  cols.reserve(9 + unknown.size());
  cols.push_back({kChangeActor, actor_.finish()});
  cols.push_back({kChangeSeq, seq_.finish()});
  cols.push_back({kChangeMaxOp, max_op_.finish()});
  cols.push_back({kChangeTime, time_.finish()});
  cols.push_back({kChangeMessage, message_.finish()});
  cols.push_back({kChangeDepsCount, deps_count_.finish()});
  cols.push_back({kChangeDepsIndex, deps_index_.finish()});
  ColumnOut meta{kChangeExtraMeta, {}}, raw{kChangeExtraRaw, {}};
  extra_.finish(meta.data, raw.data);
  cols.push_back(std::move(meta));
  cols.push_back(std::move(raw));
  finish_columns(cols, unknown, compress);
  return cols;
}

void OpColumnsWriter::append(const Op& op) {
  auto actor = [&](uint32_t a) -> uint64_t { return actor_map_.empty() ? a : actor_map_[a]; };
  if (op.obj.is_root()) {
    obj_actor_.append_null();
    obj_counter_.append_null();
  } else {
    obj_actor_.append_value(actor(op.obj.actor));
    obj_counter_.append_value(op.obj.counter);
  }
  if (op.key.is_map()) {
    key_actor_.append_null();
    key_counter_.append(std::nullopt);
    key_string_.append_value(*op.key.map_key);
  } else {
    if (op.key.elem.is_root()) {
      key_actor_.append_null();
    } else {
      key_actor_.append_value(actor(op.key.elem.actor));
    }
    key_counter_.append(static_cast<int64_t>(op.key.elem.counter));
    key_string_.append_null();
  }
  id_actor_.append_value(actor(op.id.actor));
  id_counter_.append(static_cast<int64_t>(op.id.counter));
  insert_.append(op.insert);
  action_.append_value(op.action);
  value_.append(op.value);
  succ_count_.append_value(op.pred.size());
  for (const OpId& s : op.pred) {
    succ_actor_.append_value(actor(s.actor));
    succ_counter_.append(static_cast<int64_t>(s.counter));
  }
  expand_.append(op.expand);
  any_expand_ |= op.expand;
  if (op.mark_name) {
    mark_name_.append_value(*op.mark_name);
  } else {
    mark_name_.append_null();
  }
}

std::vector<ColumnOut> OpColumnsWriter::finish(bool compress,
                                               const std::vector<DecodedDocument::UnknownColumn>& unknown) {
  std::vector<ColumnOut> cols;
  cols.reserve(16 + unknown.size());
  cols.push_back({kOpObjActor, obj_actor_.finish()});
  cols.push_back({kOpObjCounter, obj_counter_.finish()});
  cols.push_back({kOpKeyActor, key_actor_.finish()});
  cols.push_back({kOpKeyCounter, key_counter_.finish()});
  cols.push_back({kOpKeyString, key_string_.finish()});
  cols.push_back({kOpIdActor, id_actor_.finish()});
  cols.push_back({kOpIdCounter, id_counter_.finish()});
  cols.push_back({kOpInsert, insert_.finish()});
  cols.push_back({kOpAction, action_.finish()});
  ColumnOut meta{kOpValueMeta, {}}, raw{kOpValueRaw, {}};
  value_.finish(meta.data, raw.data);
  cols.push_back(std::move(meta));
  cols.push_back(std::move(raw));
  cols.push_back({kOpSuccCount, succ_count_.finish()});
  cols.push_back({kOpSuccActor, succ_actor_.finish()});
  cols.push_back({kOpSuccCounter, succ_counter_.finish()});
  // The expand column is omitted unless some op sets it.
  cols.push_back({kOpExpand, any_expand_ ? expand_.finish() : Bytes{}});
  cols.push_back({kOpMarkName, mark_name_.finish()});
  finish_columns(cols, unknown, compress);
  return cols;
}

Bytes encode_document_body(std::span<const ActorId> actors, std::span<const ChangeHash> heads,
                           const std::vector<ColumnOut>& change_columns, const std::vector<ColumnOut>& op_columns,
                           std::span<const uint64_t> heads_index) {
  Bytes out;
  size_t data_size = 0;
  for (const auto& c : change_columns) data_size += c.data.size();
  for (const auto& c : op_columns) data_size += c.data.size();
  out.reserve(data_size + 64 + 33 * heads.size() + 20 * actors.size());
  put_uleb(out, actors.size());
  for (const ActorId& a : actors) {
    put_uleb(out, a.size());
    append(out, a);
  }
  put_uleb(out, heads.size());
  for (const ChangeHash& h : heads) append(out, h.bytes);
  write_columns_metadata(change_columns, out);
  write_columns_metadata(op_columns, out);
  write_columns_data(change_columns, out);
  write_columns_data(op_columns, out);
  for (uint64_t i : heads_index) put_uleb(out, i);
  return out;
}

Bytes encode_document_body(const DecodedDocument& doc, bool compress) {
  ChangeColumnsWriter changes;
  for (const auto& c : doc.changes) {
    changes.append(c.actor, c.seq, c.max_op, c.time, doc.message(c), doc.deps(c), doc.extra(c));
  }
  OpColumnsWriter ops;
  for (size_t i = 0; i < doc.ops.size(); ++i) ops.append(doc.op(i));
  return encode_document_body(doc.actors, doc.heads, changes.finish(compress, doc.unknown_change_columns),
                              ops.finish(compress, doc.unknown_op_columns), doc.heads_index);
}

Bytes encode_document(const DecodedDocument& doc, bool compress) {
  return make_chunk(ChunkType::kDocument, encode_document_body(doc, compress));
}

namespace {

std::string op_id_text(uint64_t counter, uint32_t actor) {
  return std::to_string(counter) + "@actor" + std::to_string(actor);
}


// The map key of a rebuilt op, from the stored op `src` (reusing op's string).
void set_map_key(Op& op, const DecodedDocument& doc, const DecodedDocument::OpRow& src) {
  if (src.is_map()) {
    if (!op.key.map_key) op.key.map_key.emplace();
    op.key.map_key->assign(doc.text_of(src.key));
  } else {
    op.key.map_key.reset();
  }
}

// One op of the rebuilt history: a stored op, or a delete known only from the succ
// lists of the ops it deleted. Its preds are preds[pred_begin, pred_end).
struct HistoryOp {
  uint64_t counter;
  uint32_t actor;
  uint32_t stored;  // index into doc.ops, or kDeleted
  uint32_t pred_begin;
  uint32_t pred_end;
};
constexpr uint32_t kDeleted = UINT32_MAX;

// "P is a pred of the op (target_counter, target_actor)", from P's succ list.
struct PredEdge {
  uint64_t target_counter;
  uint32_t target_actor;
  uint32_t pred_actor;
  uint64_t pred_counter;
  uint32_t pred_op;  // index of P in doc.ops
};

bool id_less(uint32_t a1, uint64_t c1, uint32_t a2, uint64_t c2) { return a1 != a2 ? a1 < a2 : c1 < c2; }

// Every op of the history, sorted by (actor, counter), with its preds (§1.11 step 2).
Status rebuild_history(const DecodedDocument& doc, std::vector<HistoryOp>& history, std::vector<PredEdge>& preds) {
  const size_t nops = doc.ops.size();
  std::vector<HistoryOp> stored(nops);
  size_t nsucc = 0;
  for (size_t i = 0; i < nops; ++i) {
    stored[i] = HistoryOp{doc.ops[i].id.counter, doc.ops[i].id.actor, static_cast<uint32_t>(i), 0, 0};
    nsucc += doc.ops[i].succ_count;
  }
  auto stored_less = [](const HistoryOp& x, const HistoryOp& y) {
    return id_less(x.actor, x.counter, y.actor, y.counter);
  };
  if (!std::is_sorted(stored.begin(), stored.end(), stored_less)) {
    std::sort(stored.begin(), stored.end(), stored_less);
  }
  for (size_t i = 1; i < nops; ++i) {
    if (stored[i].actor == stored[i - 1].actor && stored[i].counter == stored[i - 1].counter) {
      return error("document chunk: two ops have the id " + op_id_text(stored[i].counter, stored[i].actor));
    }
  }
  if (nsucc >= UINT32_MAX) return limit_error("document too large to expand");

  preds.clear();
  reserve_rows(preds, nsucc);
  for (size_t i = 0; i < nops; ++i) {
    const DecodedDocument::OpRow& p = doc.ops[i];
    for (const OpId& s : doc.succ(p)) {
      preds.push_back(PredEdge{s.counter, s.actor, p.id.actor, p.id.counter, static_cast<uint32_t>(i)});
    }
  }
  // By target, then each target's preds in Lamport order (actor indexes follow the
  // sorted actor table, so comparing indexes compares actor bytes).
  auto edge_less = [](const PredEdge& x, const PredEdge& y) {
    if (x.target_actor != y.target_actor) return x.target_actor < y.target_actor;
    if (x.target_counter != y.target_counter) return x.target_counter < y.target_counter;
    if (x.pred_counter != y.pred_counter) return x.pred_counter < y.pred_counter;
    return x.pred_actor < y.pred_actor;
  };
  if (!std::is_sorted(preds.begin(), preds.end(), edge_less)) std::sort(preds.begin(), preds.end(), edge_less);

  history.clear();
  reserve_rows(history, nops + nsucc);
  size_t i = 0, e = 0;
  while (i < nops || e < preds.size()) {
    size_t group_end = e;
    if (e < preds.size()) {
      while (group_end < preds.size() && preds[group_end].target_actor == preds[e].target_actor &&
             preds[group_end].target_counter == preds[e].target_counter) {
        ++group_end;
      }
    }
    bool take_stored =
        i < nops && (e == preds.size() || !id_less(preds[e].target_actor, preds[e].target_counter, stored[i].actor,
                                                   stored[i].counter));
    if (take_stored) {
      HistoryOp h = stored[i++];
      if (e < preds.size() && preds[e].target_actor == h.actor && preds[e].target_counter == h.counter) {
        h.pred_begin = static_cast<uint32_t>(e);
        h.pred_end = static_cast<uint32_t>(group_end);
        e = group_end;
      }
      history.push_back(h);
    } else {
      history.push_back(HistoryOp{preds[e].target_counter, preds[e].target_actor, kDeleted, static_cast<uint32_t>(e),
                                  static_cast<uint32_t>(group_end)});
      e = group_end;
    }
  }
  return Status::Ok();
}

}  // namespace

Status check_document_indexes(const DecodedDocument& doc) {
  const size_t nactors = doc.actors.size();
  if (nactors > UINT32_MAX || doc.ops.size() >= UINT32_MAX || doc.changes.size() >= UINT32_MAX) {
    return limit_error("document too large to expand");
  }
  for (size_t row = 0; row < doc.changes.size(); ++row) {
    const auto& c = doc.changes[row];
    if (c.actor >= nactors) return row_error("change", row, "actor index out of range");
    if (c.deps_begin > doc.change_deps.size() || c.deps_count > doc.change_deps.size() - c.deps_begin ||
        (c.message != DecodedDocument::kNone && c.message >= doc.messages.size()) ||
        (c.extra != DecodedDocument::kNone && c.extra >= doc.extras.size())) {
      return row_error("change", row, "deps, message or extra bytes out of range");
    }
    for (uint32_t d : doc.deps(c)) {
      if (d >= row) return row_error("change", row, "dep index " + std::to_string(d) + " does not name an earlier row");
    }
  }
  const auto text_ok = [&](DecodedDocument::TextRef r) {
    return !r.present() || (r.offset <= doc.text.size() && r.size <= doc.text.size() - r.offset);
  };
  for (size_t i = 0; i < doc.ops.size(); ++i) {
    const DecodedDocument::OpRow& op = doc.ops[i];
    bool ok = op.id.actor < nactors && op.id.counter > 0 && (op.obj.is_root() || op.obj.actor < nactors) &&
              (op.elem.counter == 0 || op.elem.actor < nactors) && text_ok(op.key) &&
              text_ok(op.bytes) && text_ok(op.mark_name) && op.succ_begin <= doc.succs.size() &&
              op.succ_count <= doc.succs.size() - op.succ_begin;
    if (!ok) return row_error("op", i, "actor index out of range, zero counter or bad table reference");
    for (const OpId& s : doc.succ(op)) ok = ok && s.actor < nactors && s.counter > 0;
    if (!ok) return row_error("op", i, "actor index out of range or zero counter");
  }
  return Status::Ok();
}

size_t document_expansion_limit(size_t body_size) {
  constexpr uint64_t kPerByte = 64 << 10, kMin = 16 << 20, kMax = uint64_t{1} << 30;
  return static_cast<size_t>(std::clamp<uint64_t>(kPerByte * body_size, kMin, kMax));
}

Result<ExpandedDocument> expand_document(const DecodedDocument& doc, size_t max_bytes) {
  GM_TRY(check_document_indexes(doc));
  const size_t nactors = doc.actors.size();
  const size_t nchanges = doc.changes.size();

  std::vector<HistoryOp> history;
  std::vector<PredEdge> preds;
  GM_TRY(rebuild_history(doc, history, preds));

  // Each actor's changes ordered by (maxOp, row) (§1.11 step 3).
  std::vector<uint32_t> actor_start(nactors + 1, 0);
  for (const auto& c : doc.changes) ++actor_start[c.actor + 1];
  for (size_t a = 0; a < nactors; ++a) actor_start[a + 1] += actor_start[a];
  std::vector<uint32_t> by_actor(nchanges);
  {
    std::vector<uint32_t> fill(actor_start.begin(), actor_start.end() - 1);
    for (size_t row = 0; row < nchanges; ++row) by_actor[fill[doc.changes[row].actor]++] = static_cast<uint32_t>(row);
  }
  auto max_op_less = [&](uint32_t x, uint32_t y) { return doc.changes[x].max_op < doc.changes[y].max_op; };
  for (size_t a = 0; a < nactors; ++a) {
    auto first = by_actor.begin() + actor_start[a], last = by_actor.begin() + actor_start[a + 1];
    if (!std::is_sorted(first, last, max_op_less)) std::stable_sort(first, last, max_op_less);
  }

  // history is sorted by (actor, counter), so each change's ops are a contiguous
  // range of it, in counter order.
  std::vector<uint32_t> op_begin(nchanges, 0), op_end(nchanges, 0);
  for (size_t h = 0; h < history.size();) {
    const uint32_t actor = history[h].actor;
    size_t j = actor_start[actor];
    const size_t j_end = actor_start[actor + 1];
    while (h < history.size() && history[h].actor == actor) {
      const uint64_t counter = history[h].counter;
      while (j < j_end && doc.changes[by_actor[j]].max_op < counter) ++j;
      if (j == j_end) {
        return error("document chunk: op " + op_id_text(counter, actor) +
                     " lies beyond the maxOp of every change of its actor");
      }
      const uint32_t row = by_actor[j];
      if (op_begin[row] == op_end[row]) op_begin[row] = static_cast<uint32_t>(h);
      op_end[row] = static_cast<uint32_t>(h + 1);
      ++h;
    }
  }

  ExpandedDocument out;
  std::vector<ChangeHash>& hashes = out.hashes_;  // of the rows rebuilt so far
  reserve_rows(hashes, nchanges);
  reserve_rows(out.ends_, nchanges);
  reserve_rows(out.start_ops_, nchanges);
  {
    // A generous estimate of the chunks' size, so the buffer is not copied as it
    // grows (pages reserved but never written cost no memory).
    size_t estimate = 0;
    for (size_t row = 0; row < nchanges; ++row) {
      const auto& c = doc.changes[row];
      const std::string* message = doc.message(c);
      estimate += 96 + 32 * size_t{c.deps_count} + doc.actors[c.actor].size() + (message ? message->size() : 0) +
                  doc.extra(c).size() + 32 * size_t{op_end[row] - op_begin[row]};
    }
    // Capped: a crafted document could claim rows enough for a reservation the
    // machine cannot make; beyond the cap the buffer grows as the chunks are written.
    reserve_rows(out.bytes_, std::min<size_t>({estimate, max_bytes, size_t{256} << 20}));
  }
  std::vector<uint8_t> is_dep(nchanges, 0);
  std::vector<uint32_t> used;        // other actors of the current change (doc indexes)
  std::vector<uint32_t> local(nactors, 0);  // doc index -> change-local index
  Change change;                     // reused, so its vectors and strings keep capacity
  for (size_t row = 0; row < nchanges; ++row) {
    const auto& c = doc.changes[row];
    const uint32_t begin = op_begin[row], end = op_end[row];
    change.start_op = begin == end ? c.max_op + 1 : history[begin].counter;
    for (uint32_t h = begin; h < end; ++h) {
      if (history[h].counter != change.start_op + (h - begin)) {
        return row_error("change", row,
                         "op " + op_id_text(change.start_op + (h - begin), c.actor) +
                             " is missing from the document (neither stored nor named in a succ list)");
      }
    }
    if (begin != end && history[end - 1].counter != c.max_op) {
      return row_error("change", row,
                       "ops end at counter " + std::to_string(history[end - 1].counter) + " but maxOp is " +
                           std::to_string(c.max_op) + " (ops missing from the document)");
    }
    if (change.start_op == 0) return row_error("change", row, "maxOp too large");

    const std::span<const uint32_t> deps = doc.deps(c);
    change.deps.resize(deps.size());
    for (size_t k = 0; k < deps.size(); ++k) {
      change.deps[k] = hashes[deps[k]];
      is_dep[deps[k]] = 1;
    }
    std::sort(change.deps.begin(), change.deps.end());
    change.actor.assign(doc.actors[c.actor].begin(), doc.actors[c.actor].end());
    change.seq = c.seq;
    change.time = c.time;
    const std::string* message = doc.message(c);
    change.message = message ? *message : std::string();
    const ByteView extra = doc.extra(c);
    change.extra.assign(extra.begin(), extra.end());
    change.unknown_columns.clear();

    // The change's actor table: author, then the other actors its ops name, sorted;
    // document actor indexes are already in byte order.
    used.clear();
    auto note = [&](uint32_t a) {
      if (a != c.actor) used.push_back(a);
    };
    for (uint32_t h = begin; h < end; ++h) {
      const HistoryOp& ho = history[h];
      const DecodedDocument::OpRow& src = doc.ops[ho.stored != kDeleted ? ho.stored : preds[ho.pred_begin].pred_op];
      if (!src.obj.is_root()) note(src.obj.actor);
      if (ho.stored == kDeleted && src.insert) {
        note(src.id.actor);
      } else if (!src.is_map() && src.elem.counter != 0) {
        note(src.elem.actor);
      }
      for (uint32_t p = ho.pred_begin; p < ho.pred_end; ++p) note(preds[p].pred_actor);
    }
    std::sort(used.begin(), used.end());
    used.erase(std::unique(used.begin(), used.end()), used.end());
    change.other_actors.resize(used.size());
    local[c.actor] = 0;
    for (size_t k = 0; k < used.size(); ++k) {
      change.other_actors[k].assign(doc.actors[used[k]].begin(), doc.actors[used[k]].end());
      local[used[k]] = static_cast<uint32_t>(k + 1);
    }

    change.ops.resize(end - begin);
    for (uint32_t h = begin; h < end; ++h) {
      const HistoryOp& ho = history[h];
      Op& op = change.ops[h - begin];
      op.id = OpId{ho.counter, 0};
      op.pred.resize(ho.pred_end - ho.pred_begin);
      for (uint32_t p = ho.pred_begin; p < ho.pred_end; ++p) {
        op.pred[p - ho.pred_begin] = OpId{preds[p].pred_counter, local[preds[p].pred_actor]};
      }
      if (ho.stored != kDeleted) {
        const DecodedDocument::OpRow& src = doc.ops[ho.stored];
        op.obj = src.obj.is_root() ? OpId{} : OpId{src.obj.counter, local[src.obj.actor]};
        set_map_key(op, doc, src);
        op.key.elem = src.elem.counter == 0 ? OpId{} : OpId{src.elem.counter, local[src.elem.actor]};
        op.insert = src.insert;
        op.action = src.action;
        doc.value_into(src, op.value);
        op.expand = src.expand;
        if (src.mark_name.present()) {
          op.mark_name.emplace(doc.text_of(src.mark_name));
        } else {
          op.mark_name.reset();
        }
      } else {
        // A delete: it targets what its first pred was at (§1.11 step 2).
        const DecodedDocument::OpRow& target = doc.ops[preds[ho.pred_begin].pred_op];
        op.obj = target.obj.is_root() ? OpId{} : OpId{target.obj.counter, local[target.obj.actor]};
        if (target.insert) {
          op.key.map_key.reset();
          op.key.elem = OpId{target.id.counter, local[target.id.actor]};
        } else {
          set_map_key(op, doc, target);
          op.key.elem = target.elem.counter == 0 ? OpId{} : OpId{target.elem.counter, local[target.elem.actor]};
        }
        op.insert = false;
        op.action = static_cast<uint64_t>(Action::kDelete);
        op.value = Value{};
        op.expand = false;
        op.mark_name.reset();
      }
    }

    append_change_chunk(out.bytes_, change, &hashes.emplace_back());
    if (out.bytes_.size() > max_bytes) {
      return limit_error("document chunk: its changes take more than " + std::to_string(max_bytes) +
                         " bytes rebuilt (the limit for a chunk of this size: its strings repeat over many changes)");
    }
    out.ends_.push_back(out.bytes_.size());
    out.start_ops_.push_back(change.start_op);
  }

  // §1.11 step 5: the changes nothing depends on are the heads.
  std::vector<ChangeHash> computed;
  for (size_t row = 0; row < nchanges; ++row) {
    if (!is_dep[row]) computed.push_back(hashes[row]);
  }
  std::sort(computed.begin(), computed.end());
  if (computed != doc.heads) {
    std::string want, got;
    for (const auto& h : doc.heads) want += " " + h.hex();
    for (const auto& h : computed) got += " " + h.hex();
    return error("document chunk: rebuilt changes do not reproduce the stored heads (stored:" + want +
                 "; rebuilt:" + got + ")");
  }
  for (size_t i = 0; i < doc.heads_index.size(); ++i) {
    if (i >= doc.heads.size() || doc.heads_index[i] >= nchanges || hashes[doc.heads_index[i]] != doc.heads[i]) {
      return error("document chunk: heads index entry " + std::to_string(i) + " does not point at head " +
                   (i < doc.heads.size() ? doc.heads[i].hex() : std::string("(none)")));
    }
  }
  return out;
}

}  // namespace gm::automerge
