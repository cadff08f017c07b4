#include "automerge/bundle.h"

#include <algorithm>

#include "automerge/op_columns.h"
#include "util/utf8.h"

namespace gm::automerge {

namespace {

constexpr uint32_t kActorColumn = column_spec(0, ColumnType::kActor);
constexpr uint32_t kSeqColumn = column_spec(0, ColumnType::kDelta);
constexpr uint32_t kStartOpColumn = column_spec(1, ColumnType::kDelta);
constexpr uint32_t kMaxOpColumn = column_spec(2, ColumnType::kDelta);
constexpr uint32_t kTimeColumn = column_spec(3, ColumnType::kDelta);
constexpr uint32_t kMessageColumn = column_spec(4, ColumnType::kString);
constexpr uint32_t kDepsCountColumn = column_spec(5, ColumnType::kGroup);
constexpr uint32_t kDepsColumn = column_spec(5, ColumnType::kDelta);
constexpr uint32_t kExtraCountColumn = column_spec(6, ColumnType::kGroup);
constexpr uint32_t kExtraColumn = column_spec(6, ColumnType::kValue);

constexpr uint32_t kChangeColumns[] = {kActorColumn,  kSeqColumn,       kStartOpColumn, kMaxOpColumn,
                                       kTimeColumn,   kMessageColumn,   kDepsCountColumn, kDepsColumn,
                                       kExtraCountColumn, kExtraColumn};
constexpr uint32_t kOpColumns[] = {kOpObjActor,  kBundleOpObjCounter, kOpKeyActor,    kOpKeyCounter,  kOpKeyString,
                                   kOpIdActor,   kOpIdCounter,        kOpInsert,      kOpAction,      kOpValueMeta,
                                   kOpValueRaw,  kOpPredCount,        kOpPredActor,   kOpPredCounter, kOpExpand,
                                   kOpMarkName,  kBundleOpIdOrder};

Error bundle_error(const std::string& what) { return error("bundle chunk: " + what); }

struct ChangeRow {
  uint32_t actor = 0;
  uint64_t seq = 0;
  uint64_t start_op = 0;
  uint64_t max_op = 0;  // start_op - 1 for a change without ops
  int64_t time = 0;
  std::string message;
  size_t deps_begin = 0;  // into the dep index list
  size_t deps_count = 0;
  ByteView extra;
  uint64_t ops() const { return max_op + 1 - start_op; }
};

// The columns of one table, each one that is DEFLATEd inflated into `inflated` (the
// inflated sizes of a bundle's columns together at most kMaxInflatedSize). Columns
// not in `known` are refused, as the reference refuses them.
template <size_t N>
Status read_table(Reader& r, const uint32_t (&known)[N], const char* table, std::vector<ColumnInfo>& columns,
                  std::vector<Bytes>& inflated, size_t* inflated_total) {
  auto meta = read_column_metadata(r);
  if (!meta) return context(std::string("bundle chunk: ") + table + " column metadata", meta.error());
  columns = std::move(*meta);
  if (Status s = slice_column_data(columns, r); !s) {
    return context(std::string("bundle chunk: ") + table + " column data", s.error());
  }
  for (ColumnInfo& c : columns) {
    const uint32_t spec = c.spec & ~kDeflateBit;
    if (std::find(std::begin(known), std::end(known), spec) == std::end(known)) {
      return bundle_error(std::string("unknown ") + table + " column " + std::to_string(spec));
    }
    if (!c.deflated()) continue;
    auto data = inflate_raw(c.data, kMaxInflatedSize - *inflated_total);
    if (!data) return context(std::string("bundle chunk: ") + table + " column " + std::to_string(spec), data.error());
    *inflated_total += data->size();
    inflated.push_back(std::move(*data));
    c.spec = spec;
    c.data = inflated.back();
  }
  return Status::Ok();
}

// The change rows; their dep indexes go to `dep_index` (checked by the caller, who
// knows the row count).
Status decode_changes(const std::vector<ColumnInfo>& t, size_t nactors, size_t max_rows, std::vector<ChangeRow>& rows,
                      std::vector<uint64_t>& dep_index) {
  UlebDecoder actor(find_column(t, kActorColumn));
  DeltaDecoder seq(find_column(t, kSeqColumn)), start_op(find_column(t, kStartOpColumn)),
      max_op(find_column(t, kMaxOpColumn)), time(find_column(t, kTimeColumn)), deps(find_column(t, kDepsColumn));
  StringDecoder message(find_column(t, kMessageColumn));
  UlebDecoder deps_count(find_column(t, kDepsCountColumn)), extra_count(find_column(t, kExtraCountColumn));
  ByteView extra = find_column(t, kExtraColumn);
  while (!actor.done()) {
    const size_t row = rows.size();
    auto fail = [&](const std::string& what) { return bundle_error("change row " + std::to_string(row) + ": " + what); };
    if (row >= max_rows) return fail("more rows than the chunk size allows (corrupt run length?)");
    std::optional<uint64_t> u;
    std::optional<int64_t> s, start, end;
    std::optional<std::string_view> m;
    if (!actor.next(&u) || !seq.next(&s) || !start_op.next(&start) || !max_op.next(&end)) {
      return fail("malformed actor, seq, startOp or maxOp column");
    }
    if (!u || *u >= nactors) return fail("actor index missing or out of range");
    if (!s || *s < 1) return fail("seq missing or not positive");
    if (!start || !end || *start < 1 || *end < *start - 1 || static_cast<uint64_t>(*end) > kMaxOpCounter) {
      return fail("startOp or maxOp missing, maxOp below startOp - 1, or an op counter past 2^32 - 1");
    }
    ChangeRow& c = rows.emplace_back();
    c.actor = static_cast<uint32_t>(*u);
    c.seq = static_cast<uint64_t>(*s);
    c.start_op = static_cast<uint64_t>(*start);
    c.max_op = static_cast<uint64_t>(*end);
    if (!time.next(&s) || !message.next(&m)) return fail("malformed time or message column");
    c.time = s.value_or(0);
    if (m && !is_valid_utf8(*m)) return fail("message is not valid UTF-8");
    if (m) c.message.assign(*m);
    if (!deps_count.next(&u)) return fail("malformed deps count column");
    if (u.value_or(0) > max_rows - std::min(max_rows, dep_index.size())) return fail("more deps than the chunk allows");
    c.deps_begin = dep_index.size();
    c.deps_count = static_cast<size_t>(u.value_or(0));
    for (size_t i = 0; i < c.deps_count; ++i) {
      if (!deps.next(&s) || !s || *s < 0) return fail("deps column shorter than the deps counts, or malformed");
      dep_index.push_back(static_cast<uint64_t>(*s));
    }
    if (!extra_count.next(&u)) return fail("malformed extra bytes count column");
    if (u.value_or(0) > extra.size()) return fail("extra bytes column shorter than the extra byte counts");
    c.extra = extra.first(static_cast<size_t>(u.value_or(0)));
    extra = extra.subspan(c.extra.size());
  }
  if (!seq.done() || !start_op.done() || !max_op.done() || !deps.done()) {
    return bundle_error("change columns have more rows than the actor column");
  }
  return Status::Ok();
}

// order[k] = the op row of the k-th op taking the changes in (actor index, seq) order
// and each change's ops by counter; each op's id is set from its change. Every op row
// must belong to exactly one change, with that change's actor.
Status assign_ops(const std::vector<ColumnInfo>& t, const std::vector<ChangeRow>& rows, std::vector<Op>& ops,
                  std::vector<size_t>& op_begin) {
  const size_t nops = ops.size();
  std::vector<uint32_t> by_actor(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) by_actor[i] = static_cast<uint32_t>(i);
  std::stable_sort(by_actor.begin(), by_actor.end(), [&](uint32_t a, uint32_t b) {
    return rows[a].actor != rows[b].actor ? rows[a].actor < rows[b].actor : rows[a].seq < rows[b].seq;
  });
  std::vector<uint32_t> id_actor(nops);
  UlebDecoder actors(find_column(t, kOpIdActor));
  for (size_t i = 0; i < nops; ++i) {
    std::optional<uint64_t> a;
    if (!actors.next(&a) || !a || *a > UINT32_MAX) return bundle_error("op row " + std::to_string(i) + ": bad id actor");
    id_actor[i] = static_cast<uint32_t>(*a);
  }

  std::vector<uint32_t> order(nops);
  std::vector<uint64_t> counter;  // the npm 3.2 form: each row's counter
  if (!find_column(t, kBundleOpIdOrder).empty() || find_column(t, kOpIdCounter).empty()) {
    DeltaDecoder column(find_column(t, kBundleOpIdOrder));
    std::vector<bool> seen(nops);
    for (size_t k = 0; k < nops; ++k) {
      std::optional<int64_t> row;
      if (!column.next(&row) || !row || *row < 0 || static_cast<uint64_t>(*row) >= nops || seen[*row]) {
        return bundle_error("op order column: entry " + std::to_string(k) + " is not a row not named before");
      }
      seen[*row] = true;
      order[k] = static_cast<uint32_t>(*row);
    }
    if (!column.done()) return bundle_error("op order column has more entries than the changes have ops");
  } else {
    DeltaDecoder column(find_column(t, kOpIdCounter));
    counter.resize(nops);
    for (size_t i = 0; i < nops; ++i) {
      std::optional<int64_t> c;
      if (!column.next(&c) || !c || *c < 1 || static_cast<uint64_t>(*c) > kMaxOpCounter) {
        return bundle_error("op row " + std::to_string(i) + ": id counter missing, not positive or past 2^32 - 1");
      }
      counter[i] = static_cast<uint64_t>(*c);
      order[i] = static_cast<uint32_t>(i);
    }
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return id_actor[a] != id_actor[b] ? id_actor[a] < id_actor[b] : counter[a] < counter[b];
    });
  }

  op_begin.assign(rows.size(), 0);
  size_t k = 0;
  const ChangeRow* previous = nullptr;
  for (uint32_t r : by_actor) {
    const ChangeRow& c = rows[r];
    if (previous && previous->actor == c.actor && c.start_op <= previous->max_op) {
      return bundle_error("change row " + std::to_string(r) + ": its ops overlap those of an earlier change of its actor");
    }
    previous = &c;
    if (c.ops() > nops - k) return bundle_error("the changes claim more ops than there are op rows");
    op_begin[r] = k;
    for (uint64_t j = 0; j < c.ops(); ++j, ++k) {
      const uint32_t op = order[k];
      if (id_actor[op] != c.actor || (!counter.empty() && counter[op] != c.start_op + j)) {
        return bundle_error("op row " + std::to_string(op) + " is not op " + std::to_string(j) + " of change row " +
                            std::to_string(r));
      }
      ops[op].id = OpId{c.start_op + j, c.actor};
    }
  }
  // Kept: each change's ops, by counter.
  std::vector<Op> sorted(nops);
  for (size_t i = 0; i < nops; ++i) sorted[i] = std::move(ops[order[i]]);
  ops = std::move(sorted);
  if (k != nops) return bundle_error("op rows that belong to no change");
  return Status::Ok();
}

bool counters_in_range(const Op& op) {
  if (op.obj.counter > kMaxOpCounter || op.key.elem.counter > kMaxOpCounter) return false;
  return std::all_of(op.pred.begin(), op.pred.end(), [](const OpId& p) { return p.counter <= kMaxOpCounter; });
}

}  // namespace

Result<ExpandedDocument> expand_bundle(ByteView body, size_t max_rows, size_t max_bytes) {
  if (max_rows == 0) max_rows = document_row_limit(body.size());
  Reader r(body);
  GM_ASSIGN_OR_RETURN(size_t ndeps, r.count("bundle dep count", 32));
  std::vector<ChangeHash> external;
  external.reserve(ndeps);
  for (size_t i = 0; i < ndeps; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView h, r.bytes(32, "bundle dep hash"));
    external.push_back(ChangeHash::from_bytes(h));
  }
  GM_ASSIGN_OR_RETURN(size_t nactors, r.count("bundle actor count", 1));
  std::vector<ActorId> actors;
  actors.reserve(nactors);
  for (size_t i = 0; i < nactors; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView a, r.length_prefixed("bundle actor id"));
    actors.emplace_back(a.begin(), a.end());
  }
  if (nactors > UINT32_MAX) return bundle_error("too many actors");
  {
    std::vector<ActorId> sorted = actors;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return bundle_error("an actor listed twice");
  }

  std::vector<ColumnInfo> change_columns, op_columns;
  std::vector<Bytes> inflated;
  size_t inflated_total = 0;
  GM_TRY(read_table(r, kChangeColumns, "change", change_columns, inflated, &inflated_total));
  GM_TRY(read_table(r, kOpColumns, "op", op_columns, inflated, &inflated_total));

  std::vector<ChangeRow> rows;
  std::vector<uint64_t> dep_index;
  GM_TRY(decode_changes(change_columns, nactors, max_rows, rows, dep_index));
  size_t nops = 0;
  for (const ChangeRow& c : rows) {
    if (c.ops() > max_rows - nops) return limit_error("bundle chunk: more ops than the chunk size allows");
    nops += static_cast<size_t>(c.ops());
  }
  GM_ASSIGN_OR_RETURN(uint64_t action_rows, count_uleb_rle_rows(find_column(op_columns, kOpAction), nops + 1));
  if (action_rows != nops) {
    return bundle_error("op columns hold " + std::to_string(action_rows) + " rows, the changes " +
                        std::to_string(nops) + " ops");
  }
  std::vector<Op> ops;
  ops.reserve(nops);
  size_t pred_budget = max_rows;
  Status decoded = decode_op_rows(op_columns, nops, nactors, ops, &pred_budget, /*delta_obj_counter=*/true);
  if (!decoded) return context("bundle chunk", decoded.error());
  std::vector<size_t> op_begin;
  GM_TRY(assign_ops(op_columns, rows, ops, op_begin));

  ExpandedDocument out;
  out.hashes_.reserve(rows.size());
  Change change;  // reused
  auto lamport_less = [&](const OpId& a, const OpId& b) {
    return a.counter != b.counter ? a.counter < b.counter : actors[a.actor] < actors[b.actor];
  };
  for (size_t row = 0; row < rows.size(); ++row) {
    const ChangeRow& c = rows[row];
    change.deps.clear();
    for (size_t i = 0; i < c.deps_count; ++i) {
      const uint64_t d = dep_index[c.deps_begin + i];
      if (d < row) {
        change.deps.push_back(out.hashes_[d]);
      } else if (d >= rows.size() && d - rows.size() < external.size()) {
        change.deps.push_back(external[d - rows.size()]);
      } else {
        return bundle_error("change row " + std::to_string(row) + ": dep " + std::to_string(d) +
                            " is neither an earlier row nor one of the bundle's deps");
      }
    }
    std::sort(change.deps.begin(), change.deps.end());
    change.actor = actors[c.actor];
    change.seq = c.seq;
    change.start_op = c.start_op;
    change.time = c.time;
    change.message = c.message;
    change.extra.assign(c.extra.begin(), c.extra.end());
    change.ops.resize(static_cast<size_t>(c.ops()));
    for (size_t j = 0; j < change.ops.size(); ++j) {
      Op& op = change.ops[j];
      op = ops[op_begin[row] + j];
      if (!counters_in_range(op)) {
        return bundle_error("change row " + std::to_string(row) + ": an op names a counter past 2^32 - 1");
      }
      std::sort(op.pred.begin(), op.pred.end(), lamport_less);
    }
    localize_change_actors(change, actors);
    append_change_chunk(out.bytes_, change, &out.hashes_.emplace_back());
    if (out.bytes_.size() > max_bytes) {
      return limit_error("bundle chunk: its changes take more than " + std::to_string(max_bytes) + " bytes rebuilt");
    }
    out.ends_.push_back(out.bytes_.size());
    out.start_ops_.push_back(c.start_op);
  }
  return out;
}

}  // namespace gm::automerge
