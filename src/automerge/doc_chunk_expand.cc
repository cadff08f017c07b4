// Expanding a document chunk into the change chunks it summarises (spec/automerge.md
// §1.11), checked against its heads.
#include <algorithm>

#include "automerge/doc_chunk.h"
#include "automerge/doc_chunk_internal.h"

namespace gm::automerge {

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

// Sorts ops by (actor, counter). An actor's counters are usually dense (one person
// typing: 1, 2, 3, …, whatever order the document stores them in), and then they are
// placed by counter in linear time; other actors' ops are sorted by comparison.
void sort_by_id(std::vector<HistoryOp>& ops, size_t nactors) {
  auto less = [](const HistoryOp& x, const HistoryOp& y) { return id_less(x.actor, x.counter, y.actor, y.counter); };
  if (std::is_sorted(ops.begin(), ops.end(), less)) return;
  std::vector<size_t> begin(nactors + 1, 0);
  for (const HistoryOp& h : ops) ++begin[h.actor + 1];
  for (size_t a = 0; a < nactors; ++a) begin[a + 1] += begin[a];
  std::vector<HistoryOp> sorted(ops.size());
  {
    std::vector<size_t> next(begin.begin(), begin.end() - 1);
    for (const HistoryOp& h : ops) sorted[next[h.actor]++] = h;
  }
  std::vector<uint32_t> slot;  // counter - lowest -> position in the bucket
  for (size_t a = 0; a < nactors; ++a) {
    const auto first = sorted.begin() + static_cast<ptrdiff_t>(begin[a]);
    const auto last = sorted.begin() + static_cast<ptrdiff_t>(begin[a + 1]);
    const size_t count = static_cast<size_t>(last - first);
    if (count < 2) continue;
    const auto [lo, hi] = std::minmax_element(first, last, less);
    const uint64_t range = hi->counter - lo->counter + 1;
    bool placed = range <= 2 * uint64_t{count};
    if (placed) {
      slot.assign(range, kDeleted);
      for (auto it = first; it != last && placed; ++it) {
        uint32_t& s = slot[it->counter - lo->counter];
        placed = s == kDeleted;  // a duplicate id: left to the comparison sort, and the caller's check
        s = static_cast<uint32_t>(it - first);
      }
    }
    if (!placed) {
      std::sort(first, last, less);
      continue;
    }
    size_t k = 0;
    for (uint32_t s : slot) {
      if (s != kDeleted) ops[k++] = first[s];
    }
    std::copy(ops.begin(), ops.begin() + static_cast<ptrdiff_t>(count), first);
  }
  ops = std::move(sorted);
}

// Every op of the history, sorted by (actor, counter), with its preds (§1.11 step 2).
Status rebuild_history(const DecodedDocument& doc, std::vector<HistoryOp>& history, std::vector<PredEdge>& preds) {
  const size_t nops = doc.ops.size();
  std::vector<HistoryOp> stored(nops);
  size_t nsucc = 0;
  for (size_t i = 0; i < nops; ++i) {
    stored[i] = HistoryOp{doc.ops[i].id.counter, doc.ops[i].id.actor, static_cast<uint32_t>(i), 0, 0};
    nsucc += doc.ops[i].succ_count;
  }
  sort_by_id(stored, doc.actors.size());
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
    for (const DecodedDocument::RowId s : doc.succ(p)) {
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
  Op op;                             // the op being encoded (reused likewise)
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

    // The ops go to the encoder one at a time, never all held: a change can have millions.
    auto op_at = [&](size_t i) -> const Op& {
      const HistoryOp& ho = history[begin + i];
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
      return op;
    };
    append_change_chunk(out.bytes_, change, end - begin, op_at, &hashes.emplace_back());
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
