#include "automerge/change_graph.h"

#include <algorithm>
#include <iterator>
#include <numeric>
#include <queue>
#include <set>

#include "automerge/bundle.h"
#include "automerge/leb.h"

namespace gm::automerge {

namespace {

// The body of a chunk we produced or already validated: skip magic, checksum and
// type, then the uLEB body length.
Result<ByteView> chunk_body(ByteView chunk) {
  Reader r(chunk);
  GM_TRY(r.bytes(9, "chunk header"));
  GM_ASSIGN_OR_RETURN(ByteView body, r.length_prefixed("chunk body"));
  return body;
}

}  // namespace

// ---------------------------------------------------------------------------------
// Adding changes

// The header fields the graph keeps (§1.3 fields 1–4), as views into `body`. Used
// alone only on changes this process built (expanded documents, queued copies of
// checked changes); untrusted changes are checked by decode_change_header first.
Result<ChangeGraph::HeaderRef> ChangeGraph::read_header_ref(ByteView body) {
  Reader r(body);
  HeaderRef h;
  GM_ASSIGN_OR_RETURN(size_t ndeps, r.count("dependency count", 32));
  GM_ASSIGN_OR_RETURN(h.deps, r.bytes(32 * ndeps, "dependency hashes"));
  GM_ASSIGN_OR_RETURN(h.actor, r.length_prefixed("actor id"));
  GM_ASSIGN_OR_RETURN(h.seq, r.uleb("seq"));
  GM_ASSIGN_OR_RETURN(h.start_op, r.uleb("start op"));
  return h;
}

Status ChangeGraph::load(ByteView data, std::vector<Index>* applied) {
  return load(std::span<const ByteView>(&data, 1), applied);
}

Status ChangeGraph::load(std::span<const ByteView> pieces, std::vector<Index>* applied) {
  // What `incoming` points into besides `pieces`: changes rebuilt from document
  // chunks, and inflated compressed changes (moving a Bytes keeps its buffer).
  std::vector<ExpandedDocument> expanded;
  std::vector<Bytes> inflated;
  std::vector<Incoming> incoming;
  size_t input_bytes = 0;
  for (ByteView data : pieces) input_bytes += data.size();
  if (empty() && queue_index_.empty() && pieces.size() == 1) {
    // One document chunk into an empty graph (a document loaded from a snapshot, or
    // sent whole): its order, its buffer.
    size_t consumed = 0;
    auto c = parse_chunk(pieces[0], &consumed);
    if (c && consumed == pieces[0].size() && c->type == ChunkType::kDocument) {
      auto decoded = decode_document_chunk(c->body);
      if (!decoded) return context("document chunk at byte 0", decoded.error());
      decoded->doc.release_ops();
      return load_document(decoded->doc, std::move(decoded->expanded), applied);
    }
  }
  incoming.reserve(input_bytes / 64);  // a change chunk is rarely smaller
  size_t total_bytes = 0;              // of the changes to add
  // The document chunks of one call share one budget for their decoded rows, their
  // ops and their rebuilt changes (a message could otherwise carry thousands of small
  // chunks, each within what its own size allows), and a chunk with the heads of one
  // already expanded in this call is not expanded again.
  // A document chunk holds the sender's whole document, mostly what we hold too when it
  // comes from a peer that made one more change: its ops alone must be within the
  // limit (the changes it adds count against what the graph holds as each is applied).
  ChunkBudget budget{trusted_ ? SIZE_MAX : row_limit(input_bytes), op_limit(), expansion_limit(input_bytes)};
  std::set<std::vector<ChangeHash>> expanded_heads;
  // The changes rebuilt from a document or bundle chunk join the incoming ones.
  auto add_rebuilt = [&](ExpandedDocument rebuilt) -> Status {
    expanded.push_back(std::move(rebuilt));
    incoming.reserve(incoming.size() + expanded.back().size());
    for (const RebuiltChange& rc : expanded.back()) {
      GM_ASSIGN_OR_RETURN(ByteView body, chunk_body(rc.chunk));
      auto header = read_header_ref(body);
      if (!header) return context("rebuilt change", header.error());
      incoming.push_back(Incoming{rc.chunk, rc.hash, *header});
      total_bytes += rc.chunk.size();
    }
    return Status::Ok();
  };
  for (ByteView data : pieces) {
    for (size_t pos = 0; pos < data.size();) {
      size_t consumed = 0;
      GM_ASSIGN_OR_RETURN(Chunk c, parse_chunk(data.subspan(pos), &consumed, pos));
      pos += consumed;
      if (c.type == ChunkType::kDocument) {
        auto heads = document_heads(c.body);
        if (!heads) return context("document chunk at byte " + std::to_string(c.offset), heads.error());
        if (has_all(*heads) || !expanded_heads.insert(*heads).second) continue;
        auto decoded = decode_document_chunk(c.body, budget);
        if (!decoded) return context("document chunk at byte " + std::to_string(c.offset), decoded.error());
        GM_TRY(add_rebuilt(std::move(decoded->expanded)));
        continue;
      }
      if (c.type == ChunkType::kBundle) {
        // Under the budget of the document chunks (its changes' ops count as they apply).
        const size_t rows = std::min(row_limit(c.body.size()), budget.rows);
        if (rows == 0) return limit_error("more rows than the input's size allows, with the chunks before it");
        auto rebuilt = expand_bundle(c.body, rows, budget.bytes);
        if (!rebuilt) return context("bundle chunk at byte " + std::to_string(c.offset), rebuilt.error());
        budget.rows -= std::min(budget.rows, rebuilt->size());
        budget.bytes -= std::min(budget.bytes, rebuilt->chunks().size());
        GM_TRY(add_rebuilt(std::move(*rebuilt)));
        continue;
      }
      auto checked = decode_change_header(c.body);
      if (!checked) return context("change chunk at byte " + std::to_string(c.offset), checked.error());
      GM_ASSIGN_OR_RETURN(HeaderRef header, read_header_ref(c.body));
      if (!c.owned.empty()) inflated.push_back(std::move(c.owned));
      incoming.push_back(Incoming{c.bytes, c.hash, header});
      total_bytes += c.bytes.size();
    }
  }
  // Room for what is new only: a whole document sent again with one more change holds
  // mostly changes the graph has (sizing for all of them doubled its memory).
  std::erase_if(incoming, [&](const Incoming& in) {
    const bool known = has(in.hash) || is_queued(in.hash);
    if (known) total_bytes -= std::min(total_bytes, in.chunk.size());
    return known;
  });
  reserve(incoming.size(), total_bytes);
  return add_incoming(incoming, applied);
}

Result<ChangeGraph::DecodedChunk> ChangeGraph::decode_document_chunk(ByteView body) const {
  ChunkBudget budget{row_limit(body.size()), op_limit(), expansion_limit(body.size())};
  return decode_document_chunk(body, budget);
}

Result<ChangeGraph::DecodedChunk> ChangeGraph::decode_document_chunk(ByteView body, ChunkBudget& budget) const {
  if (budget.rows == 0) {
    return limit_error("more rows than the input's size allows, with the document chunks before it");
  }
  GM_ASSIGN_OR_RETURN(DecodedDocument doc, decode_document(body, std::min(row_limit(body.size()), budget.rows)));
  budget.rows -= std::min(budget.rows, doc.changes.size() + doc.ops.size());
  // Its stored ops are some of its changes' ops (deletes are not stored): refused
  // before anything is rebuilt.
  if (doc.ops.size() > budget.ops) {
    return limit_error("its " + std::to_string(doc.ops.size()) +
                       " ops (with the document chunks before it in the message) pass the limit of " +
                       std::to_string(max_ops_) + " ops for one document");
  }
  budget.ops -= doc.ops.size();
  GM_ASSIGN_OR_RETURN(ExpandedDocument expanded, expand_document(doc, budget.bytes));
  budget.bytes -= std::min(budget.bytes, expanded.chunks().size());
  return DecodedChunk{std::move(doc), std::move(expanded)};
}

Status ChangeGraph::load_document(const DecodedDocument& doc, ExpandedDocument expanded, std::vector<Index>* applied) {
  if (!empty() || !queue_index_.empty()) return load(expanded.chunks(), applied);
  const size_t n = expanded.size();
  if (n != doc.changes.size()) return error("load_document: the expansion is not of this document");
  if (n >= UINT32_MAX - 1) return limit_error("change graph size limit reached");
  nodes_.reserve(n);
  std::vector<uint32_t> actor_of(doc.actors.size(), UINT32_MAX);  // document → graph actor
  uint64_t offset = 0;
  // Nothing is applied on error: the graph goes back to empty (its bounds kept).
  auto refuse = [this](Error e) -> Status {
    const size_t max_queued = max_queued_bytes_;
    const uint64_t max_ops = max_ops_;
    const bool trusted = trusted_;
    *this = ChangeGraph();
    max_queued_bytes_ = max_queued;
    max_ops_ = max_ops;
    trusted_ = trusted;
    return e;
  };
  for (size_t row = 0; row < n; ++row) {
    const RebuiltChange rc = expanded[row];
    const DecodedDocument::ChangeRow& c = doc.changes[row];
    const uint64_t ops = c.max_op >= rc.start_op ? c.max_op - rc.start_op + 1 : 0;
    if (ops > op_limit() - std::min(ops_, op_limit())) return refuse(too_many_ops(rc.hash, ops));
    ops_ += ops;
    uint32_t& actor = actor_of[c.actor];
    if (actor == UINT32_MAX) actor = intern_actor(doc.actors[c.actor]);
    if (c.seq <= max_seq_[actor]) {
      return refuse(error("change " + rc.hash.hex() + " has seq " + std::to_string(c.seq) + " but its actor " +
                          to_hex(doc.actors[c.actor]) + " already has a change with seq " +
                          std::to_string(max_seq_[actor]) + " (duplicate sequence number)"));
    }
    max_seq_[actor] = c.seq;
    Node node;
    node.offset = offset;
    if (rc.chunk.size() > UINT32_MAX || dep_indexes_.size() + c.deps_count > UINT32_MAX) {
      return refuse(limit_error("change graph size limit reached"));
    }
    node.length = static_cast<uint32_t>(rc.chunk.size());
    node.actor = actor;
    node.seq = c.seq;
    node.start_op = rc.start_op;
    node.deps_begin = static_cast<uint32_t>(dep_indexes_.size());
    node.deps_count = c.deps_count;
    // Rows are indexes here (row order is application order); a change lists its
    // dependencies in hash order.
    for (uint32_t d : doc.deps(c)) dep_indexes_.push_back(d);
    std::sort(dep_indexes_.begin() + node.deps_begin, dep_indexes_.end(),
              [&](Index a, Index b) { return expanded[a].hash < expanded[b].hash; });
    nodes_.push_back(node);
    offset += rc.chunk.size();
  }
  expanded.release(arena_, hashes_);
  heads_ = doc.heads;  // expand_document checked them
  table_rehash(n);
  if (applied) {
    for (size_t row = 0; row < n; ++row) applied->push_back(static_cast<Index>(row));
  }
  return Status::Ok();
}

ByteView ChangeGraph::contiguous_chunks(std::span<const Index> indexes) const {
  if (indexes.empty()) return {};
  uint64_t begin = nodes_[indexes[0]].offset, end = begin;
  for (Index i : indexes) {
    if (nodes_[i].offset != end) return {};
    end += nodes_[i].length;
  }
  return ByteView(arena_).subspan(begin, end - begin);
}

void ChangeGraph::reserve(size_t changes, size_t bytes) {
  size_t n = hashes_.size() + changes;
  if (nodes_.capacity() < n) {
    nodes_.reserve(n);
    hashes_.reserve(n);
    dep_indexes_.reserve(dep_indexes_.size() + changes + changes / 4);
  }
  if (arena_.capacity() < arena_.size() + bytes) arena_.reserve(arena_.size() + bytes);
  if (table_.size() < n * 2) table_rehash(n);
}

Status ChangeGraph::add_chunk(ByteView data, std::vector<Index>* applied) {
  size_t consumed = 0;
  GM_ASSIGN_OR_RETURN(Chunk c, parse_chunk(data, &consumed));
  if (consumed != data.size()) return error("trailing bytes after change chunk");
  if (c.type != ChunkType::kChange) return error("expected a change chunk, got a document chunk");
  GM_TRY(decode_change_header(c.body));
  GM_ASSIGN_OR_RETURN(HeaderRef header, read_header_ref(c.body));
  std::vector<Incoming> incoming{Incoming{c.bytes, c.hash, header}};
  return add_incoming(incoming, applied);
}

Status ChangeGraph::add_change(ByteView chunk, const ChangeHash& hash, ChangeHeader header,
                               std::vector<Index>* applied) {
  HeaderRef ref;
  // A vector of ChangeHash is count × 32 contiguous bytes.
  static_assert(sizeof(ChangeHash) == 32);
  ref.deps = ByteView(reinterpret_cast<const uint8_t*>(header.deps.data()), 32 * header.deps.size());
  ref.actor = header.actor;
  ref.seq = header.seq;
  ref.start_op = header.start_op;
  std::vector<Incoming> incoming{Incoming{chunk, hash, ref}};
  return add_incoming(incoming, applied);
}

Status ChangeGraph::add_incoming(std::vector<Incoming>& incoming, std::vector<Index>* applied) {
  // A batch is applied in the order npm Automerge 3.x applies one (observed, and what
  // makes our save() equal theirs): first the changes whose dependencies are all
  // present, in input order; then, breadth first, each applied change's dependents
  // within the batch as they become ready, in input order. Whatever still lacks a
  // dependency outside the batch is queued.
  // Whatever path this takes, heads() is current when it returns.
  struct UpdateHeads {
    ChangeGraph* graph;
    ~UpdateHeads() { graph->update_heads(); }
  } update_heads_on_return{this};
  Status first_error;
  if (incoming.size() == 1) {
    // One change (the common case): apply it or queue it, no bookkeeping.
    const Incoming& in = incoming[0];
    if (has(in.hash) || is_queued(in.hash)) return first_error;
    bool ready = true;
    for (size_t d = 0; d < in.header.dep_count() && ready; ++d) ready = has(in.header.dep(d));
    if (ready) return apply_ready(in, applied);
  }
  // The batch by hash (open addressing over batch positions, the first of duplicates
  // wins), and for each change the batch positions that depend on it.
  const size_t n = incoming.size();
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  std::vector<uint32_t> slots(cap, 0);  // batch position + 1; 0 = empty
  auto slot_of = [&, mask = cap - 1](const ChangeHash& h) -> uint32_t& {
    for (size_t pos = ChangeHashHasher{}(h) & mask;; pos = (pos + 1) & mask) {
      if (slots[pos] == 0 || incoming[slots[pos] - 1].hash == h) return slots[pos];
    }
  };
  std::vector<uint32_t> order;  // batch positions, without known changes and later duplicates
  order.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (has(incoming[i].hash) || is_queued(incoming[i].hash)) continue;
    uint32_t& slot = slot_of(incoming[i].hash);
    if (slot != 0) continue;
    slot = static_cast<uint32_t>(i + 1);
    order.push_back(static_cast<uint32_t>(i));
  }
  std::vector<uint32_t> missing(n, 0);
  std::vector<std::pair<uint32_t, uint32_t>> edges;  // (dependency, dependent), by dependent
  std::vector<size_t> ready;
  for (uint32_t i : order) {
    const Incoming& in = incoming[i];
    for (size_t d = 0; d < in.header.dep_count(); ++d) {
      ChangeHash dep = in.header.dep(d);
      if (has(dep)) continue;
      ++missing[i];
      if (uint32_t slot = slot_of(dep); slot != 0) edges.emplace_back(slot - 1, i);
    }
    if (missing[i] == 0) ready.push_back(i);
  }
  // Edges grouped by dependency (a counting sort: dependents stay in batch order).
  std::vector<uint32_t> first_edge(n + 1, 0);
  for (const auto& e : edges) ++first_edge[e.first + 1];
  for (size_t i = 0; i < n; ++i) first_edge[i + 1] += first_edge[i];
  std::vector<uint32_t> dependent(edges.size());
  {
    std::vector<uint32_t> fill(first_edge.begin(), first_edge.end() - 1);
    for (const auto& [dep, d] : edges) dependent[fill[dep]++] = d;
  }
  auto dependents = [&](size_t i) {
    return std::span<const uint32_t>(dependent).subspan(first_edge[i], first_edge[i + 1] - first_edge[i]);
  };
  std::vector<bool> done(incoming.size(), false);
  for (size_t next = 0; next < ready.size(); ++next) {
    size_t i = ready[next];
    done[i] = true;
    Status s = apply_ready(incoming[i], applied);
    if (!s) {
      if (first_error.ok()) first_error = s;
      continue;
    }
    for (uint32_t d : dependents(i)) {
      if (--missing[d] == 0) ready.push_back(d);
    }
  }
  for (uint32_t i : order) {
    const Incoming& in = incoming[i];
    if (done[i] || has(in.hash) || is_queued(in.hash)) continue;
    uint32_t waiting = 0;
    for (size_t d = 0; d < in.header.dep_count(); ++d) waiting += has(in.header.dep(d)) ? 0 : 1;
    if (waiting == 0) {
      // Its dependencies failed to apply; try it once more on its own.
      Status s = apply_ready(in, applied);
      if (!s && first_error.ok()) first_error = s;
      continue;
    }
    if (queued_bytes_ + in.chunk.size() > max_queued_bytes_) {
      if (first_error.ok()) {
        first_error = limit_error("change " + in.hash.hex() + " waits for " + std::to_string(waiting) +
                                  " missing dependencies, and the queue of such changes is full (" +
                                  std::to_string(queued_bytes_) + " bytes); not kept");
      }
      continue;
    }
    queued_bytes_ += in.chunk.size();
    size_t slot = queue_.size();
    Pending p;
    p.chunk.assign(in.chunk.begin(), in.chunk.end());
    p.hash = in.hash;
    p.missing = waiting;
    p.waiting = true;
    for (size_t d = 0; d < in.header.dep_count(); ++d) {
      ChangeHash dep = in.header.dep(d);
      if (!has(dep)) waiting_on_[dep].push_back(slot);
    }
    queue_index_.emplace(p.hash, slot);
    queue_.push_back(std::move(p));
  }
  // Keep the queue's slot vector from growing without bound once it has drained.
  if (queue_index_.empty()) queue_.clear();
  return first_error;
}

Result<ChangeGraph::HeaderRef> ChangeGraph::pending_header(const Pending& p) {
  GM_ASSIGN_OR_RETURN(ByteView body, chunk_body(p.chunk));
  return read_header_ref(body);
}

Status ChangeGraph::apply_ready(const Incoming& change, std::vector<Index>* applied) {
  Status first_error = apply_one(change, applied);
  if (!first_error) return first_error;
  // Release queued changes that were waiting for this one, transitively.
  std::vector<ChangeHash> released{change.hash};
  while (!released.empty()) {
    ChangeHash h = released.back();
    released.pop_back();
    auto it = waiting_on_.find(h);
    if (it == waiting_on_.end()) continue;
    std::vector<size_t> slots = std::move(it->second);
    waiting_on_.erase(it);
    for (size_t slot : slots) {
      Pending& p = queue_[slot];
      if (!p.waiting || --p.missing != 0) continue;
      Pending ready = std::move(p);
      p.waiting = false;
      queue_index_.erase(ready.hash);
      queued_bytes_ -= ready.chunk.size();
      auto header = pending_header(ready);  // cannot fail: checked when queued
      Status s = header ? apply_one(Incoming{ready.chunk, ready.hash, *header}, applied) : Status(header.error());
      if (s) {
        released.push_back(ready.hash);
      } else if (first_error.ok()) {
        first_error = s;
      }
    }
  }
  return first_error;
}

// The new heads: the old ones and the changes applied since, less every dependency
// of those changes. Done once per batch, so a batch of n changes costs n log n; kept
// sorted per change, a batch of n changes with no dependencies (n new heads, which a
// peer may send) cost n × heads.
void ChangeGraph::update_heads() {
  if (unmerged_heads_.empty()) return;
  std::unordered_set<Index> covered;
  for (Index i : unmerged_heads_) {
    for (Index d : deps(i)) covered.insert(d);
  }
  std::vector<ChangeHash> added;
  for (Index i : unmerged_heads_) {
    if (!covered.count(i)) added.push_back(hashes_[i]);
  }
  unmerged_heads_.clear();
  std::sort(added.begin(), added.end());
  std::erase_if(heads_, [&](const ChangeHash& h) { return covered.count(*find(h)) != 0; });
  std::vector<ChangeHash> merged;
  merged.reserve(heads_.size() + added.size());
  std::merge(heads_.begin(), heads_.end(), added.begin(), added.end(), std::back_inserter(merged));
  heads_ = std::move(merged);
}

Status ChangeGraph::apply_one(const Incoming& change, std::vector<Index>* applied) {
  const HeaderRef& header = change.header;
  const ChangeHash& hash = change.hash;
  if (change.chunk.size() > UINT32_MAX || hashes_.size() >= UINT32_MAX - 1) {
    return limit_error("change graph size limit reached");
  }
  GM_ASSIGN_OR_RETURN(ByteView body, chunk_body(change.chunk));
  auto ops = count_change_ops(body, static_cast<size_t>(std::clamp<uint64_t>(op_limit(), kDefaultMaxChangeOps, SIZE_MAX)));
  if (!ops) return context("change " + hash.hex(), ops.error());
  if (*ops > op_limit() - std::min(ops_, op_limit())) return too_many_ops(hash, *ops);
  uint32_t actor = intern_actor(header.actor);
  if (header.seq <= max_seq_[actor]) {
    return error("change " + hash.hex() + " has seq " + std::to_string(header.seq) + " but its actor " +
                 to_hex(header.actor) + " already has a change with seq " + std::to_string(max_seq_[actor]) +
                 " (duplicate sequence number)");
  }
  max_seq_[actor] = header.seq;

  Index index = static_cast<Index>(hashes_.size());
  Node n;
  n.offset = arena_.size();
  n.length = static_cast<uint32_t>(change.chunk.size());
  n.actor = actor;
  n.seq = header.seq;
  n.start_op = header.start_op;
  n.deps_begin = static_cast<uint32_t>(dep_indexes_.size());
  n.deps_count = static_cast<uint32_t>(header.dep_count());
  for (size_t d = 0; d < header.dep_count(); ++d) {
    ChangeHash dep = header.dep(d);
    dep_indexes_.push_back(*find(dep));
  }
  unmerged_heads_.push_back(index);  // heads_ is updated once per batch (update_heads)
  if (arena_.capacity() < arena_.size() + change.chunk.size()) {
    arena_.reserve(std::max(arena_.size() + change.chunk.size(), arena_.capacity() * 2));
  }
  append(arena_, change.chunk);
  nodes_.push_back(n);
  hashes_.push_back(hash);
  table_insert(index);
  ops_ += *ops;
  if (applied) applied->push_back(index);
  return Status::Ok();
}

size_t ChangeGraph::row_limit(size_t body_size) const {
  if (trusted_) return kMaxStoredDocumentRows;
  return document_row_limit(body_size, std::min<uint64_t>(max_ops_, kMaxDocumentRows));
}

size_t ChangeGraph::expansion_limit(size_t body_size) const {
  return trusted_ ? SIZE_MAX : document_expansion_limit(body_size);
}

Error ChangeGraph::too_many_ops(const ChangeHash& hash, uint64_t ops) const {
  return limit_error("change " + hash.hex() + " has " + std::to_string(ops) + " ops; the document already holds " +
                     std::to_string(ops_) + ": together more than the limit of " + std::to_string(max_ops_) +
                     " ops for one document");
}

uint64_t ChangeGraph::max_seq(ByteView actor) const {
  auto it = actor_index_.find(std::string(as_string(actor)));
  return it == actor_index_.end() ? 0 : max_seq_[it->second];
}

uint32_t ChangeGraph::intern_actor(ByteView actor) {
  // Most changes come from the same actor as the one before.
  if (last_actor_ < actors_.size() && std::equal(actor.begin(), actor.end(), actors_[last_actor_].begin(),
                                                 actors_[last_actor_].end())) {
    return last_actor_;
  }
  auto [it, inserted] = actor_index_.try_emplace(std::string(as_string(actor)), static_cast<uint32_t>(actors_.size()));
  if (inserted) {
    actors_.emplace_back(actor.begin(), actor.end());
    max_seq_.push_back(0);
  }
  last_actor_ = it->second;
  return it->second;
}

// ---------------------------------------------------------------------------------
// Hash table

void ChangeGraph::table_insert(Index i) {
  if (hashes_.size() * 2 > table_.size()) {
    table_rehash(hashes_.size());  // re-inserts every applied change, including i
    return;
  }
  size_t mask = table_.size() - 1;
  size_t pos = ChangeHashHasher{}(hashes_[i]) & mask;
  while (table_[pos] != 0) pos = (pos + 1) & mask;
  table_[pos] = i + 1;
}

// At most half full after inserting `entries`, so probe runs stay short.
void ChangeGraph::table_rehash(size_t entries) {
  size_t cap = std::max<size_t>(64, table_.size());
  while (cap < entries * 2) cap *= 2;
  table_.assign(cap, 0);
  size_t mask = cap - 1;
  for (Index i = 0; i < hashes_.size(); ++i) {
    size_t pos = ChangeHashHasher{}(hashes_[i]) & mask;
    while (table_[pos] != 0) pos = (pos + 1) & mask;
    table_[pos] = i + 1;
  }
}

std::optional<ChangeGraph::Index> ChangeGraph::find(const ChangeHash& hash) const {
  if (table_.empty()) return std::nullopt;
  size_t mask = table_.size() - 1;
  for (size_t pos = ChangeHashHasher{}(hash) & mask;; pos = (pos + 1) & mask) {
    uint32_t slot = table_[pos];
    if (slot == 0) return std::nullopt;
    if (hashes_[slot - 1] == hash) return slot - 1;
  }
}

bool ChangeGraph::has_all(std::span<const ChangeHash> hashes) const {
  return std::all_of(hashes.begin(), hashes.end(), [&](const ChangeHash& h) { return has(h); });
}

std::vector<ChangeGraph::Index> ChangeGraph::known_indexes(std::span<const ChangeHash> hashes) const {
  std::vector<Index> out;
  out.reserve(hashes.size());
  for (const ChangeHash& h : hashes) {
    if (auto i = find(h)) out.push_back(*i);
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Queue

std::vector<ChangeHash> ChangeGraph::queued_hashes() const {
  std::vector<ChangeHash> out;
  out.reserve(queue_index_.size());
  for (const Pending& p : queue_) {
    if (p.waiting) out.push_back(p.hash);
  }
  return out;
}

std::vector<ByteView> ChangeGraph::queued_chunks() const {
  std::vector<ByteView> out;
  out.reserve(queue_index_.size());
  for (const Pending& p : queue_) {
    if (p.waiting) out.push_back(p.chunk);
  }
  return out;
}

std::vector<ChangeHash> ChangeGraph::missing_deps_from(std::span<const ChangeHash> start) const {
  ChangeHashSet seen;
  ChangeHashSet missing;
  std::vector<ChangeHash> stack(start.begin(), start.end());
  while (!stack.empty()) {
    ChangeHash h = stack.back();
    stack.pop_back();
    if (has(h) || !seen.insert(h).second) continue;
    auto q = queue_index_.find(h);
    if (q != queue_index_.end()) {
      auto header = pending_header(queue_[q->second]);
      if (header) {
        for (size_t d = 0; d < header->dep_count(); ++d) stack.push_back(header->dep(d));
      }
    } else {
      missing.insert(h);
    }
  }
  std::vector<ChangeHash> out(missing.begin(), missing.end());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<ChangeHash> ChangeGraph::missing_deps(std::span<const ChangeHash> heads) const {
  std::vector<ChangeHash> start = queued_hashes();
  start.insert(start.end(), heads.begin(), heads.end());
  return missing_deps_from(start);
}

// ---------------------------------------------------------------------------------
// Ancestry

std::vector<ChangeGraph::Index> ChangeGraph::changes_since(std::span<const ChangeHash> heads) const {
  std::vector<Index> given = known_indexes(heads);
  std::vector<Index> out;
  if (given.empty()) {
    out.resize(size());
    std::iota(out.begin(), out.end(), Index{0});
    return out;
  }
  // Walk back from our heads and the given heads at once, highest index first. A
  // change's dependencies have lower indexes, so when a change is popped every change
  // that depends on it has been seen and its mark is final: kTheirs if it is an
  // ancestor of the given heads, else it is one of ours only. Stop once nothing in the
  // frontier is ours only (everything below is then an ancestor of the given heads).
  enum : uint8_t { kQueued = 1, kOurs = 2, kTheirs = 4 };
  std::vector<uint8_t> mark(size(), 0);
  std::priority_queue<Index> frontier;
  size_t ours_only = 0;
  auto is_ours_only = [](uint8_t m) { return (m & (kQueued | kOurs | kTheirs)) == (kQueued | kOurs); };
  auto push = [&](Index i, uint8_t bits) {
    uint8_t before = mark[i];
    uint8_t after = before | bits | kQueued;
    if (!(before & kQueued)) frontier.push(i);
    ours_only += is_ours_only(after) ? 1 : 0;
    ours_only -= is_ours_only(before) ? 1 : 0;
    mark[i] = after;
  };
  for (Index g : given) push(g, kTheirs);
  for (const ChangeHash& h : heads_) push(*find(h), kOurs);
  while (ours_only > 0 && !frontier.empty()) {
    Index i = frontier.top();
    frontier.pop();
    uint8_t m = mark[i];
    if (is_ours_only(m)) {
      --ours_only;
      out.push_back(i);
    }
    for (Index d : deps(i)) push(d, m & (kOurs | kTheirs));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

bool ChangeGraph::is_ancestor(Index ancestor, Index descendant) const {
  if (ancestor > descendant || descendant >= size()) return false;
  if (ancestor == descendant) return true;
  std::vector<bool> seen(descendant + 1, false);
  std::vector<Index> stack{descendant};
  while (!stack.empty()) {
    Index i = stack.back();
    stack.pop_back();
    for (Index d : deps(i)) {
      if (d == ancestor) return true;
      if (d > ancestor && !seen[d]) {
        seen[d] = true;
        stack.push_back(d);
      }
    }
  }
  return false;
}

void ChangeGraph::remove_ancestors(ChangeHashSet& hashes, std::span<const ChangeHash> heads) const {
  if (hashes.empty()) return;
  // Nothing below the lowest index in `hashes` can matter.
  Index lowest = UINT32_MAX;
  for (const ChangeHash& h : hashes) {
    if (auto i = find(h)) lowest = std::min(lowest, *i);
  }
  if (lowest == UINT32_MAX) return;
  std::vector<bool> seen(size(), false);
  std::vector<Index> stack;
  for (Index i : known_indexes(heads)) {
    if (i >= lowest && !seen[i]) {
      seen[i] = true;
      stack.push_back(i);
    }
  }
  while (!stack.empty() && !hashes.empty()) {
    Index i = stack.back();
    stack.pop_back();
    hashes.erase(hashes_[i]);
    for (Index d : deps(i)) {
      if (d >= lowest && !seen[d]) {
        seen[d] = true;
        stack.push_back(d);
      }
    }
  }
}

}  // namespace gm::automerge
