#include "automerge/doc_chunk.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "automerge/doc_chunk_internal.h"
#include "automerge/op_columns.h"

namespace gm::automerge {
using RowId = DecodedDocument::RowId;

namespace {

// The columns decode_document decodes; any other is kept as an unknown column.
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

Error column_error(const char* table, const char* column, size_t row, const std::optional<Error>& e) {
  return error(std::string("document chunk: ") + table + " column '" + column + "', row " + std::to_string(row) +
               ": " + (e ? e->message : "malformed"));
}

Error too_many_rows(const char* table, size_t max_rows) {
  return limit_error(std::string("document chunk: more than ") + std::to_string(max_rows) + " " + table + " rows (" +
                     (max_rows >= kMaxDocumentRows
                          ? "the limit for one document"
                          : "the limit for a chunk of this size: a run-length column claims more") +
                     ")");
}

Error counter_too_large(const char* table, size_t row, const char* what, uint64_t counter) {
  return row_error(table, row, std::string(what) + " " + std::to_string(counter) +
                                   " is larger than 2^32 - 1 (Automerge keeps op counters in 32 bits)");
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
  if (op.has_scalar()) {
    op.value_bits = scalar_bits(v);
    return Status::Ok();
  }
  DecodedDocument::TextRef bytes;
  if (!v.bytes.empty()) {
    GM_ASSIGN_OR_RETURN(bytes, add_text(doc, v.bytes));
  }
  op.set_value_bytes(bytes);
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
    if (c.max_op > kMaxOpCounter) return counter_too_large(kTable, row, "maxOp", c.max_op);
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
      if (*u > kMaxOpCounter) return counter_too_large(kTable, row, "object id counter", *u);
      op.obj = RowId{static_cast<uint32_t>(*u), static_cast<uint32_t>(*a)};
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
        if (static_cast<uint64_t>(*s) > kMaxOpCounter) return counter_too_large(kTable, row, "element id counter", *s);
        op.elem = RowId{static_cast<uint32_t>(*s), static_cast<uint32_t>(*a)};
      }
    }

    if (!id_actor.next(&a)) return column_error(kTable, "id actor", row, id_actor.error());
    if (!id_counter.next(&s)) return column_error(kTable, "id counter", row, id_counter.error());
    if (!valid_actor(a, nactors)) return row_error(kTable, row, "op id actor missing or out of range");
    if (!s || *s <= 0) return row_error(kTable, row, "op id counter missing or not positive");
    if (static_cast<uint64_t>(*s) > kMaxOpCounter) return counter_too_large(kTable, row, "op id counter", *s);
    op.id = RowId{static_cast<uint32_t>(*s), static_cast<uint32_t>(*a)};

    if (!insert.next(&op.insert)) return column_error(kTable, "insert", row, insert.error());
    if (op.insert && op.is_map()) return row_error(kTable, row, "insert op with a map key");
    if (!action.next(&u)) return column_error(kTable, "action", row, action.error());
    if (!u) return row_error(kTable, row, "missing action");
    // Unknown codes are kept, up to 32 bits (Automerge knows 8 codes).
    if (*u > UINT32_MAX) return row_error(kTable, row, "action code " + std::to_string(*u) + " is larger than 2^32 - 1");
    op.action = static_cast<uint32_t>(*u);
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
      if (static_cast<uint64_t>(*s) > kMaxOpCounter) return counter_too_large(kTable, row, "succ counter", *s);
      doc.succs.push_back(RowId{static_cast<uint32_t>(*s), static_cast<uint32_t>(*a)});
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

std::string op_id_text(const DecodedDocument& doc, const OpId& id) {
  return std::to_string(id.counter) + "@" + to_hex(doc.actors[id.actor]);
}

// A mark end (a mark op without a name) closes the mark begun by the op one counter
// before it, of the same actor. npm 3.5.0 refuses a document chunk in which that begin
// is not an earlier mark op of the same object ("invalid mark operation order"); 2.2.8
// writes a zero-width mark with expand "after" so (the end placed before the begin).
// Counters fit in 32 bits here (decode_ops checked), so an id packs into 64.
Status check_mark_order(const DecodedDocument& doc) {
  constexpr uint64_t kMark = static_cast<uint64_t>(Action::kMark);
  auto packed = [](const OpId& id) { return id.counter << 32 | id.actor; };
  std::unordered_map<uint64_t, OpId> begins;  // mark begin id -> its object
  for (size_t row = 0; row < doc.ops.size(); ++row) {
    const DecodedDocument::OpRow& op = doc.ops[row];
    if (op.action != kMark) continue;
    if (op.mark_name.present()) {
      begins.emplace(packed(op.id), op.obj);
      continue;
    }
    const OpId begin{op.id.counter - 1, op.id.actor};
    auto it = begins.find(packed(begin));
    if (it == begins.end()) {
      return row_error("op", row,
                       "mark end " + op_id_text(doc, op.id) + " comes before its mark begin " +
                           op_id_text(doc, begin) + " (invalid mark operation order, as npm says)");
    }
    if (!(it->second == op.obj)) {
      return row_error("op", row,
                       "mark end " + op_id_text(doc, op.id) + " is in another object than its mark begin " +
                           op_id_text(doc, begin) + " (invalid mark operation order, as npm says)");
    }
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
  if (op.has_scalar()) {
    set_scalar_bits(out, op.value_bits);
    out.bytes.clear();
  } else {
    out.bytes.assign(text_of(op.value_bytes()));
  }
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

Status DecodedDocument::add_op(const Op& op) {
  ops.emplace_back();
  Status s = set_op(ops.size() - 1, op);
  if (!s) ops.pop_back();
  return s;
}

Status DecodedDocument::set_op(size_t i, const Op& op) {
  const bool fits = op.id.counter <= kMaxOpCounter && op.obj.counter <= kMaxOpCounter &&
                    op.key.elem.counter <= kMaxOpCounter && op.action <= UINT32_MAX &&
                    std::all_of(op.pred.begin(), op.pred.end(), [](const OpId& p) { return p.counter <= kMaxOpCounter; });
  if (!fits) return error("op: a counter past 2^32 - 1 or an action code past 2^32 - 1 does not fit in a document");
  OpRow row;
  row.id = RowId(op.id);
  row.obj = RowId(op.obj);
  row.elem = RowId(op.key.elem);
  row.insert = op.insert;
  row.action = static_cast<uint32_t>(op.action);
  row.expand = op.expand;
  if (op.key.map_key) {
    GM_ASSIGN_OR_RETURN(row.key, add_text(*this, *op.key.map_key));
  }
  if (op.mark_name) {
    GM_ASSIGN_OR_RETURN(row.mark_name, add_text(*this, *op.mark_name));
  }
  GM_TRY(set_value(*this, row, op.value));
  set_succ(row, op.pred);
  ops[i] = row;
  return Status::Ok();
}

void DecodedDocument::set_succ(OpRow& op, std::span<const OpId> succ) {
  op.succ_begin = static_cast<uint32_t>(succs.size());
  op.succ_count = static_cast<uint32_t>(succ.size());
  for (const OpId& id : succ) succs.push_back(RowId(id));
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
  GM_TRY(check_mark_order(doc));
  for (size_t i = 0; i < doc.heads_index.size(); ++i) {
    if (doc.heads_index[i] >= doc.changes.size()) {
      return error("document chunk: heads index " + std::to_string(doc.heads_index[i]) + " of head " +
                   std::to_string(i) + " is not a change row (" + std::to_string(doc.changes.size()) + " changes)");
    }
  }
  return doc;
}

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
              text_ok(op.value_bytes()) && text_ok(op.mark_name) && op.succ_begin <= doc.succs.size() &&
              op.succ_count <= doc.succs.size() - op.succ_begin;
    if (!ok) return row_error("op", i, "actor index out of range, zero counter or bad table reference");
    for (const RowId& s : doc.succ(op)) ok = ok && s.actor < nactors && s.counter > 0;
    if (!ok) return row_error("op", i, "actor index out of range or zero counter");
  }
  return Status::Ok();
}

}  // namespace gm::automerge
