#include "automerge/change.h"

#include <algorithm>
#include <cstdio>

#include "automerge/op_columns.h"
#include "util/utf8.h"

namespace gm::automerge {

namespace {

// The known columns in spec order, as the encoder emits them.
constexpr uint32_t kKnownSpecs[] = {kOpObjActor,  kOpObjCounter,  kOpKeyActor,  kOpKeyCounter, kOpKeyString,
                                    kOpInsert,    kOpAction,      kOpValueMeta, kOpValueRaw,   kOpPredCount,
                                    kOpPredActor, kOpPredCounter, kOpExpand,    kOpMarkName};
constexpr size_t kKnownCount = sizeof(kKnownSpecs) / sizeof(kKnownSpecs[0]);

int known_slot(uint32_t spec) {
  for (size_t i = 0; i < kKnownCount; ++i) {
    if (kKnownSpecs[i] == spec) return static_cast<int>(i);
  }
  return -1;
}

const char* column_name(uint32_t spec) {
  switch (spec) {
    case kOpObjActor:
      return "obj actor";
    case kOpObjCounter:
      return "obj counter";
    case kOpKeyActor:
      return "key actor";
    case kOpKeyCounter:
      return "key counter";
    case kOpKeyString:
      return "key string";
    case kOpInsert:
      return "insert";
    case kOpAction:
      return "action";
    case kOpValueMeta:
      return "value metadata";
    case kOpValueRaw:
      return "value";
    case kOpPredCount:
      return "pred count";
    case kOpPredActor:
      return "pred actor";
    case kOpPredCounter:
      return "pred counter";
    case kOpExpand:
      return "expand";
    case kOpMarkName:
      return "mark name";
    default:
      return "unknown";
  }
}

std::string spec_hex(uint32_t spec) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%02x", spec);
  return buf;
}

// The ops of a change: the rows of its action column, counted from the run headers
// without visiting rows, and refused past `limit` (a tiny hostile column can claim
// 2^63 rows).
Result<size_t> count_ops(const std::vector<ColumnInfo>& columns, size_t limit) {
  Result<uint64_t> rows = count_uleb_rle_rows(find_column(columns, kOpAction), limit);
  if (!rows) return context("change column 'action' (0x42)", rows.error());
  if (*rows > limit) {
    return limit_error("change claims more than " + std::to_string(limit) + " ops (the limit for one change)");
  }
  return static_cast<size_t>(*rows);
}

// The known op columns of a change, encoded into one buffer: column k (kKnownSpecs
// order) is buf[begin[k], end[k]); an empty range is an omitted column.
struct EncodedColumns {
  Bytes buf;
  size_t begin[kKnownCount] = {};
  size_t end[kKnownCount] = {};
  ByteView column(size_t k) const { return ByteView(buf).subspan(begin[k], end[k] - begin[k]); }
};

// The encoders, kept per thread between calls: their buffers keep their capacity,
// so encoding a change allocates nothing once warmed up (documents expand into
// hundreds of thousands of changes). Delta columns are RLE over differences taken
// here, so that every encoder resets fully in finish().
struct OpColumnEncoders {
  UlebEncoder obj_actor, obj_counter, key_actor, action, pred_count, pred_actor;
  SlebEncoder key_counter, pred_counter;
  StringEncoder key_string, mark_name;
  BooleanEncoder insert, expand;
  ValueEncoder value;
};

void encode_op_columns(size_t count, const OpSource& ops, EncodedColumns& out) {
  static thread_local OpColumnEncoders e;
  int64_t last_key_counter = 0;
  int64_t last_pred_counter = 0;
  auto delta = [](int64_t value, int64_t& last) {
    int64_t d = static_cast<int64_t>(static_cast<uint64_t>(value) - static_cast<uint64_t>(last));
    last = value;
    return d;
  };
  bool any_expand = false;
  for (size_t i = 0; i < count; ++i) {
    const Op& op = ops(i);
    if (op.obj.is_root()) {
      e.obj_actor.append_null();
      e.obj_counter.append_null();
    } else {
      e.obj_actor.append_value(op.obj.actor);
      e.obj_counter.append_value(op.obj.counter);
    }
    if (op.key.is_map()) {
      e.key_actor.append_null();
      e.key_counter.append_null();
      e.key_string.append_value(*op.key.map_key);
    } else {
      if (op.key.elem.counter == 0) {
        e.key_actor.append_null();  // HEAD
      } else {
        e.key_actor.append_value(op.key.elem.actor);
      }
      e.key_counter.append_value(delta(static_cast<int64_t>(op.key.elem.counter), last_key_counter));
      e.key_string.append_null();
    }
    e.insert.append(op.insert);
    e.action.append_value(op.action);
    e.value.append(op.value);
    e.pred_count.append_value(op.pred.size());
    for (const OpId& p : op.pred) {
      e.pred_actor.append_value(p.actor);
      e.pred_counter.append_value(delta(static_cast<int64_t>(p.counter), last_pred_counter));
    }
    any_expand |= op.expand;
    e.expand.append(op.expand);
    e.mark_name.append(op.mark_name);
  }
  Bytes& b = out.buf;
  b.clear();
  auto mark = [&](size_t k, auto&& write) {
    out.begin[k] = b.size();
    write();
    out.end[k] = b.size();
  };
  mark(0, [&] { e.obj_actor.finish(b); });
  mark(1, [&] { e.obj_counter.finish(b); });
  mark(2, [&] { e.key_actor.finish(b); });
  mark(3, [&] { e.key_counter.finish(b); });
  mark(4, [&] { e.key_string.finish(b); });
  mark(5, [&] { e.insert.finish(b); });
  mark(6, [&] { e.action.finish(b); });
  // Value metadata and raw bytes come out of one finish() call.
  static thread_local Bytes raw;
  raw.clear();
  mark(7, [&] { e.value.finish(b, raw); });
  mark(8, [&] { append(b, raw); });
  mark(9, [&] { e.pred_count.finish(b); });
  mark(10, [&] { e.pred_actor.finish(b); });
  mark(11, [&] { e.pred_counter.finish(b); });
  // An all-false expand column is omitted, not written as one run of falses.
  mark(12, [&] {
    if (any_expand) {
      e.expand.finish(b);
    } else {
      static thread_local Bytes discard;
      e.expand.finish(discard);
      discard.clear();
    }
  });
  mark(13, [&] { e.mark_name.finish(b); });
}

// Column decoding with errors that name the op and column.
class OpDecoder {
 public:
  OpDecoder(const std::vector<ColumnInfo>& columns, size_t actor_count, bool delta_obj_counter)
      : obj_actor_(find_column(columns, kOpObjActor)),
        obj_counter_(delta_obj_counter ? ByteView() : find_column(columns, kOpObjCounter)),
        obj_counter_delta_(delta_obj_counter ? find_column(columns, kBundleOpObjCounter) : ByteView()),
        key_actor_(find_column(columns, kOpKeyActor)),
        key_counter_(find_column(columns, kOpKeyCounter)),
        key_string_(find_column(columns, kOpKeyString)),
        insert_(find_column(columns, kOpInsert)),
        action_(find_column(columns, kOpAction)),
        value_(find_column(columns, kOpValueMeta), find_column(columns, kOpValueRaw)),
        pred_count_(find_column(columns, kOpPredCount)),
        pred_actor_(find_column(columns, kOpPredActor)),
        pred_counter_(find_column(columns, kOpPredCounter)),
        expand_(find_column(columns, kOpExpand)),
        mark_name_(find_column(columns, kOpMarkName)),
        actor_count_(actor_count),
        delta_obj_counter_(delta_obj_counter) {}

  // Decodes row `index` into `op` (whose id is already set).
  Status next(size_t index, Op& op, size_t* pred_budget) {
    index_ = index;
    // Object.
    std::optional<uint64_t> obj_actor, obj_counter;
    if (!obj_actor_.next(&obj_actor)) return column_error(kOpObjActor, obj_actor_.error());
    if (delta_obj_counter_) {
      std::optional<int64_t> delta;
      if (!obj_counter_delta_.next(&delta)) return column_error(kBundleOpObjCounter, obj_counter_delta_.error());
      if (delta && *delta < 0) return fail("object id has negative counter " + std::to_string(*delta));
      if (delta) obj_counter = static_cast<uint64_t>(*delta);
    } else if (!obj_counter_.next(&obj_counter)) {
      return column_error(kOpObjCounter, obj_counter_.error());
    }
    if (obj_actor.has_value() != obj_counter.has_value()) {
      return fail("object id has " + std::string(obj_actor ? "an actor but no counter" : "a counter but no actor"));
    }
    if (obj_actor) {
      if (*obj_counter == 0) return fail("object id has counter 0");
      GM_ASSIGN_OR_RETURN(op.obj.actor, actor_index(*obj_actor, "object id"));
      op.obj.counter = *obj_counter;
    }

    // Key.
    std::optional<uint64_t> key_actor;
    std::optional<int64_t> key_counter;
    std::optional<std::string_view> key_string;
    if (!key_actor_.next(&key_actor)) return column_error(kOpKeyActor, key_actor_.error());
    if (!key_counter_.next(&key_counter)) return column_error(kOpKeyCounter, key_counter_.error());
    if (!key_string_.next(&key_string)) return column_error(kOpKeyString, key_string_.error());
    if (key_string) {
      if (key_actor || key_counter) return fail("key has both a map key and an element id");
      if (!is_valid_utf8(*key_string)) return fail("map key is not valid UTF-8");
      op.key.map_key.emplace(*key_string);
    } else if (!key_counter) {
      return fail(key_actor ? "element id has an actor but no counter" : "op has no key (no map key, no element id)");
    } else if (*key_counter == 0) {
      if (key_actor) return fail("element id has counter 0 and an actor (HEAD has no actor)");
      op.key.elem = OpId{0, 0};
    } else {
      if (*key_counter < 0) return fail("element id has negative counter " + std::to_string(*key_counter));
      if (!key_actor) return fail("element id has a counter but no actor");
      GM_ASSIGN_OR_RETURN(op.key.elem.actor, actor_index(*key_actor, "element id"));
      op.key.elem.counter = static_cast<uint64_t>(*key_counter);
    }

    if (!insert_.next(&op.insert)) return column_error(kOpInsert, insert_.error());

    std::optional<uint64_t> action;
    if (!action_.next(&action)) return column_error(kOpAction, action_.error());
    if (!action) return fail("op has no action");
    if (*action > static_cast<uint64_t>(Action::kMark)) {
      return fail("unknown action code " + std::to_string(*action) + " (known: 0..7)");
    }
    op.action = *action;

    if (!value_.next(&op.value)) return column_error(kOpValueMeta, value_.error());
    if (op.value.kind() == ValueType::kString && !is_valid_utf8(op.value.bytes)) {
      return fail("string value is not valid UTF-8");
    }
    if (op.action == static_cast<uint64_t>(Action::kIncrement) && op.value.kind() != ValueType::kInt &&
        op.value.kind() != ValueType::kUint) {
      return fail("increment op has a value of type " + std::to_string(op.value.type) + " (must be int or uint)");
    }

    std::optional<uint64_t> npred;
    if (!pred_count_.next(&npred)) return column_error(kOpPredCount, pred_count_.error());
    if (!npred) return fail("op has no pred count");
    if (*npred > *pred_budget) return fail("pred count " + std::to_string(*npred) + " exceeds the limit");
    *pred_budget -= *npred;
    op.pred.reserve(static_cast<size_t>(*npred));
    for (uint64_t j = 0; j < *npred; ++j) {
      std::optional<uint64_t> pa;
      std::optional<int64_t> pc;
      if (!pred_actor_.next(&pa)) return column_error(kOpPredActor, pred_actor_.error());
      if (!pred_counter_.next(&pc)) return column_error(kOpPredCounter, pred_counter_.error());
      if (!pa || !pc) {
        return fail("pred " + std::to_string(j) + " of " + std::to_string(*npred) + " is missing its " +
                    (pa ? "counter" : "actor") + " (pred columns shorter than the pred counts)");
      }
      if (*pc <= 0)
        return fail("pred " + std::to_string(j) + " has counter " + std::to_string(*pc) + " (must be >= 1)");
      GM_ASSIGN_OR_RETURN(uint32_t actor, actor_index(*pa, "pred"));
      op.pred.push_back(OpId{static_cast<uint64_t>(*pc), actor});
    }

    if (!expand_.next(&op.expand)) return column_error(kOpExpand, expand_.error());
    std::optional<std::string_view> mark_name;
    if (!mark_name_.next(&mark_name)) return column_error(kOpMarkName, mark_name_.error());
    if (mark_name) {
      if (!is_valid_utf8(*mark_name)) return fail("mark name is not valid UTF-8");
      op.mark_name.emplace(*mark_name);
    }
    return Status::Ok();
  }

 private:
  Error fail(const std::string& what) const { return error("change op " + std::to_string(index_) + ": " + what); }
  Error column_error(uint32_t spec, const std::optional<Error>& e) const {
    return fail("column '" + std::string(column_name(spec)) + "' (" + spec_hex(spec) +
                "): " + (e ? e->message : std::string("malformed")));
  }
  Result<uint32_t> actor_index(uint64_t index, const char* what) const {
    if (index >= actor_count_) {
      return fail(std::string(what) + " actor index " + std::to_string(index) + " out of range (the change names " +
                  std::to_string(actor_count_) + " actors)");
    }
    return static_cast<uint32_t>(index);
  }

  UlebDecoder obj_actor_, obj_counter_;
  DeltaDecoder obj_counter_delta_;
  UlebDecoder key_actor_;
  DeltaDecoder key_counter_;
  StringDecoder key_string_;
  BooleanDecoder insert_;
  UlebDecoder action_;
  ValueDecoder value_;
  UlebDecoder pred_count_, pred_actor_;
  DeltaDecoder pred_counter_;
  BooleanDecoder expand_;
  StringDecoder mark_name_;
  size_t actor_count_;
  bool delta_obj_counter_;
  size_t index_ = 0;
};

// Checks that the known columns are exactly what the canonical encoder writes.
Status check_canonical(const std::vector<ColumnInfo>& columns, const std::vector<Op>& ops) {
  static thread_local EncodedColumns encoded;
  encode_op_columns(ops.size(), [&](size_t i) -> const Op& { return ops[i]; }, encoded);
  auto missing = [](size_t k) {
    return error("change column '" + std::string(column_name(kKnownSpecs[k])) + "' (" + spec_hex(kKnownSpecs[k]) +
                 ") is missing although the ops need it (non-canonical encoding)");
  };
  size_t k = 0;  // next encoded slot to match
  auto skip_empty = [&]() {
    while (k < kKnownCount && encoded.column(k).empty()) ++k;
  };
  for (const ColumnInfo& c : columns) {
    int slot = known_slot(c.spec);
    if (slot < 0) continue;
    skip_empty();
    if (k < kKnownCount && static_cast<int>(k) < slot) return missing(k);
    if (k != static_cast<size_t>(slot)) {
      return error("change column '" + std::string(column_name(c.spec)) + "' (" + spec_hex(c.spec) +
                   ") is present but the canonical encoding omits it");
    }
    ByteView want = encoded.column(k);
    if (!std::equal(c.data.begin(), c.data.end(), want.begin(), want.end())) {
      return error("change column '" + std::string(column_name(c.spec)) + "' (" + spec_hex(c.spec) +
                   ") is not in canonical form (the reference accepts it, but re-encoding would change the hash)");
    }
    ++k;
  }
  skip_empty();
  if (k < kKnownCount) return missing(k);
  return Status::Ok();
}

}  // namespace

Result<ChangeHeader> decode_change_header(ByteView body, ByteView* rest) {
  Reader r(body);
  ChangeHeader h;
  GM_ASSIGN_OR_RETURN(size_t ndeps, r.count("dependency count", 32));
  h.deps.reserve(ndeps);
  for (size_t i = 0; i < ndeps; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView dep, r.bytes(32, "dependency hash"));
    h.deps.push_back(ChangeHash::from_bytes(dep));
  }
  GM_ASSIGN_OR_RETURN(ByteView actor, r.length_prefixed("actor id"));
  h.actor.assign(actor.begin(), actor.end());
  GM_ASSIGN_OR_RETURN(h.seq, r.uleb("seq"));
  GM_ASSIGN_OR_RETURN(h.start_op, r.uleb("start op"));
  GM_ASSIGN_OR_RETURN(h.time, r.sleb("time"));
  GM_ASSIGN_OR_RETURN(ByteView message, r.length_prefixed("message"));
  h.message.assign(as_string(message));
  GM_ASSIGN_OR_RETURN(size_t nactors, r.count("other actor count", 1));
  h.other_actors.reserve(nactors);
  for (size_t i = 0; i < nactors; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView a, r.length_prefixed("other actor id"));
    h.other_actors.emplace_back(a.begin(), a.end());
  }
  if (h.seq == 0) return error("change has seq 0 (the first change of an actor has seq 1)");
  if (h.start_op == 0) return error("change has startOp 0 (op counters start at 1)");
  if (rest) *rest = r.rest();
  return h;
}

Result<size_t> count_change_ops(ByteView body, size_t limit) {
  ByteView rest;
  GM_TRY(decode_change_header(body, &rest));
  Reader r(rest, body.size() - rest.size());
  GM_ASSIGN_OR_RETURN(std::vector<ColumnInfo> columns, read_column_metadata(r));
  GM_TRY(slice_column_data(columns, r));
  return count_ops(columns, limit);
}

Status decode_op_rows(const std::vector<ColumnInfo>& columns, size_t count, size_t actor_count, std::vector<Op>& ops,
                      size_t* pred_budget, bool delta_obj_counter) {
  OpDecoder decoder(columns, actor_count, delta_obj_counter);
  for (size_t i = 0; i < count; ++i) GM_TRY(decoder.next(i, ops.emplace_back(), pred_budget));
  return Status::Ok();
}

Result<Change> decode_change(ByteView body, const ChangeDecodeOptions& options) {
  ByteView rest;
  GM_ASSIGN_OR_RETURN(ChangeHeader header, decode_change_header(body, &rest));
  Change change;
  static_cast<ChangeHeader&>(change) = std::move(header);
  if (!is_valid_utf8(change.message)) return error("change message is not valid UTF-8");
  if (change.start_op > kMaxOpCounter) {
    return error("change startOp " + std::to_string(change.start_op) + " is too large (the reference requires < 2^32)");
  }

  Reader r(rest, body.size() - rest.size());
  GM_ASSIGN_OR_RETURN(std::vector<ColumnInfo> columns, read_column_metadata(r));
  GM_TRY(slice_column_data(columns, r));
  ByteView extra = r.rest();
  change.extra.assign(extra.begin(), extra.end());

  for (const ColumnInfo& c : columns) {
    if (c.deflated()) {
      return error("change column " + spec_hex(c.spec) + " is DEFLATE-compressed (only document chunks may be)");
    }
    if (known_slot(c.spec) >= 0) continue;
    if (c.data.empty() && options.require_canonical) {
      return error("change column " + spec_hex(c.spec) + " is empty (the canonical encoding omits empty columns)");
    }
    change.unknown_columns.emplace_back(c.spec, Bytes(c.data.begin(), c.data.end()));
  }

  GM_ASSIGN_OR_RETURN(size_t nops, count_ops(columns, options.max_ops));
  if (nops > 0 && change.start_op + (nops - 1) > kMaxOpCounter) {
    return error("change op counters run past 2^32 (startOp " + std::to_string(change.start_op) + ", " +
                 std::to_string(nops) + " ops)");
  }
  // Reserve for what the input can plausibly hold; a run-length-encoded claim of
  // many more ops grows the vector only as the rows really decode.
  change.ops.reserve(std::min(nops, 16 + 4 * body.size()));
  size_t pred_budget = options.max_ops;
  GM_TRY(decode_op_rows(columns, nops, change.actor_count(), change.ops, &pred_budget));
  for (size_t i = 0; i < nops; ++i) change.ops[i].id = OpId{change.start_op + i, 0};
  if (options.require_canonical) GM_TRY(check_canonical(columns, change.ops));
  return change;
}

namespace {
void append_change_body(Bytes& out, const Change& change, size_t op_count, const OpSource& ops);
OpSource ops_of(const Change& change) {
  return [&change](size_t i) -> const Op& { return change.ops[i]; };
}
}  // namespace

Bytes encode_change_body(const Change& change) {
  Bytes out;
  append_change_body(out, change, change.ops.size(), ops_of(change));
  return out;
}

void append_change_chunk(Bytes& out, const Change& change, ChangeHash* hash) {
  append_change_chunk(out, change, change.ops.size(), ops_of(change), hash);
}

void append_change_chunk(Bytes& out, const Change& change, size_t op_count, const OpSource& ops, ChangeHash* hash) {
  static thread_local Bytes body;
  body.clear();
  append_change_body(body, change, op_count, ops);
  append_chunk(out, ChunkType::kChange, body, hash);
  if (body.capacity() > (size_t{1} << 20)) Bytes().swap(body);  // not kept for the thread's life
}

namespace {

void append_change_body(Bytes& out, const Change& change, size_t op_count, const OpSource& ops) {
  static thread_local EncodedColumns encoded;
  encode_op_columns(op_count, ops, encoded);

  // Calls f(spec, data) for each non-empty column, known and unknown merged in spec
  // order.
  auto for_each_column = [&](auto&& f) {
    size_t u = 0;
    const auto& unknown = change.unknown_columns;
    for (size_t k = 0; k <= kKnownCount; ++k) {
      uint64_t spec = k < kKnownCount ? kKnownSpecs[k] : uint64_t{UINT32_MAX} + 1;
      for (; u < unknown.size() && unknown[u].first < spec; ++u) {
        if (!unknown[u].second.empty()) f(unknown[u].first, ByteView(unknown[u].second));
      }
      if (k < kKnownCount && !encoded.column(k).empty()) f(kKnownSpecs[k], encoded.column(k));
    }
  };
  size_t ncolumns = 0;
  size_t data_size = 0;
  for_each_column([&](uint32_t, ByteView data) {
    ++ncolumns;
    data_size += data.size();
  });

  const size_t need = out.size() + 48 + change.deps.size() * 32 + change.actor.size() + change.message.size() +
                      16 * change.other_actors.size() + 8 * ncolumns + data_size + change.extra.size();
  if (out.capacity() < need) out.reserve(std::max(need, 2 * out.capacity()));
  put_uleb(out, change.deps.size());
  for (const ChangeHash& d : change.deps) out.insert(out.end(), d.bytes.begin(), d.bytes.end());
  put_uleb(out, change.actor.size());
  append(out, change.actor);
  put_uleb(out, change.seq);
  put_uleb(out, change.start_op);
  put_sleb(out, change.time);
  put_uleb(out, change.message.size());
  append(out, as_bytes(change.message));
  put_uleb(out, change.other_actors.size());
  for (const ActorId& a : change.other_actors) {
    put_uleb(out, a.size());
    append(out, a);
  }
  put_uleb(out, ncolumns);
  for_each_column([&](uint32_t spec, ByteView data) {
    put_uleb(out, spec);
    put_uleb(out, data.size());
  });
  for_each_column([&](uint32_t, ByteView data) { append(out, data); });
  append(out, change.extra);
}

}  // namespace

Bytes encode_change(const Change& change, ChangeHash* hash) {
  return make_chunk(ChunkType::kChange, encode_change_body(change), hash);
}

void remap_change_actors(Change& change, std::span<const uint32_t> table) {
  for (Op& op : change.ops) {
    op.id.actor = table[op.id.actor];
    if (!op.obj.is_root()) op.obj.actor = table[op.obj.actor];
    if (!op.key.is_map() && op.key.elem.counter != 0) op.key.elem.actor = table[op.key.elem.actor];
    for (OpId& p : op.pred) p.actor = table[p.actor];
  }
}

void localize_change_actors(Change& change, std::span<const ActorId> actors) {
  // The distinct non-author actors the ops reference, as indexes into `actors`.
  uint32_t author = UINT32_MAX;
  for (size_t i = 0; i < actors.size(); ++i) {
    if (actors[i] == change.actor) {
      author = static_cast<uint32_t>(i);
      break;
    }
  }
  std::vector<uint32_t> used;
  auto note = [&](uint32_t a) {
    if (a != author) used.push_back(a);
  };
  for (const Op& op : change.ops) {
    if (!op.obj.is_root()) note(op.obj.actor);
    if (!op.key.is_map() && op.key.elem.counter != 0) note(op.key.elem.actor);
    for (const OpId& p : op.pred) note(p.actor);
  }
  std::sort(used.begin(), used.end());
  used.erase(std::unique(used.begin(), used.end()), used.end());
  // Sorted by actor bytes: the change's own order (§1.3).
  std::vector<uint32_t> by_bytes = used;
  std::sort(by_bytes.begin(), by_bytes.end(), [&](uint32_t a, uint32_t b) { return actors[a] < actors[b]; });
  change.other_actors.clear();
  change.other_actors.reserve(by_bytes.size());
  // local[i] = change-local index of used[i].
  std::vector<uint32_t> local(used.size());
  for (size_t i = 0; i < by_bytes.size(); ++i) {
    change.other_actors.push_back(actors[by_bytes[i]]);
    size_t pos = std::lower_bound(used.begin(), used.end(), by_bytes[i]) - used.begin();
    local[pos] = static_cast<uint32_t>(i + 1);
  }
  auto map = [&](uint32_t a) -> uint32_t {
    if (a == author) return 0;
    return local[std::lower_bound(used.begin(), used.end(), a) - used.begin()];
  };
  for (Op& op : change.ops) {
    op.id.actor = 0;
    if (!op.obj.is_root()) op.obj.actor = map(op.obj.actor);
    if (!op.key.is_map() && op.key.elem.counter != 0) op.key.elem.actor = map(op.key.elem.actor);
    for (OpId& p : op.pred) p.actor = map(p.actor);
  }
}

}  // namespace gm::automerge
