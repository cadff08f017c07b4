#include "automerge/document.h"

#include <algorithm>

namespace gm::automerge {

Result<Document> Document::load(ByteView data, bool trusted) {
  Document doc;
  doc.graph_.set_trusted(trusted);
  GM_TRY(doc.apply(data));
  return doc;
}

Status Document::apply(ByteView data, std::vector<ChangeGraph::Index>* applied) {
  std::vector<ChangeGraph::Index> local;
  if (!applied) applied = &local;
  GM_ASSIGN_OR_RETURN(std::vector<Chunk> chunks, parse_chunks(data));
  // Consecutive change chunks go to the graph as one batch: the order it applies a
  // batch in is the order save() writes.
  size_t i = 0;
  while (i < chunks.size()) {
    size_t before = applied->size();
    if (chunks[i].type == ChunkType::kDocument) {
      Status s = apply_document_chunk(chunks[i].body, applied);
      if (!s) return context("document chunk at byte " + std::to_string(chunks[i].offset), s.error());
      ++i;
      continue;
    }
    size_t j = i;
    while (j < chunks.size() && chunks[j].type != ChunkType::kDocument) ++j;
    size_t begin = chunks[i].offset;
    size_t end = j < chunks.size() ? chunks[j].offset : data.size();
    Status loaded = graph_.load(data.subspan(begin, end - begin), applied);
    Status ops = apply_changes(std::span<const ChangeGraph::Index>(*applied).subspan(before));
    GM_TRY(loaded);
    GM_TRY(ops);
    i = j;
  }
  return Status::Ok();
}

Status Document::apply_document_chunk(ByteView body, std::vector<ChangeGraph::Index>* applied) {
  GM_ASSIGN_OR_RETURN(std::vector<ChangeHash> heads, document_heads(body));
  if (graph_.has_all(heads) && !heads.empty()) return Status::Ok();
  GM_ASSIGN_OR_RETURN(ChangeGraph::DecodedChunk chunk, graph_.decode_document_chunk(body));
  DecodedDocument& decoded = chunk.doc;
  ExpandedDocument& rebuilt = chunk.expanded;

  if (graph_.empty() && graph_.queued_count() == 0) {
    // Fast path: a fresh document takes the chunk's op set as it is.
    GM_ASSIGN_OR_RETURN(OpSet ops, OpSet::from_document(decoded));
    GM_TRY(graph_.load_document(decoded, std::move(rebuilt), applied));
    // Into an empty graph, row i became change i.
    for (size_t i = 0; i < decoded.changes.size(); ++i) {
      const DecodedDocument::ChangeRow& row = decoded.changes[i];
      record_meta(static_cast<ChangeGraph::Index>(i), row.max_op, row.time, decoded.message(row), decoded.extra(row));
    }
    op_set_ = std::move(ops);
    return Status::Ok();
  }

  // The document overlaps what we have: apply its changes like any others.
  size_t before = applied->size();
  GM_TRY(graph_.load(rebuilt.chunks(), applied));
  return apply_changes(std::span<const ChangeGraph::Index>(*applied).subspan(before));
}

Status Document::apply_changes(std::span<const ChangeGraph::Index> indexes) {
  for (ChangeGraph::Index i : indexes) {
    ByteView chunk = graph_.chunk(i);
    size_t consumed = 0;
    GM_ASSIGN_OR_RETURN(Chunk c, parse_chunk(chunk, &consumed));
    // Accept what the reference accepts: non-canonical encodings are fine here, since
    // the graph keeps (and hashes) the bytes as they came.
    ChangeDecodeOptions lenient;
    lenient.require_canonical = false;
    GM_ASSIGN_OR_RETURN(Change change, decode_change(c.body, lenient));
    Status s = op_set_.apply_change(change);
    if (!s) return context("change " + graph_.hash(i).hex(), s.error());
    record_meta(i, change.start_op + change.ops.size() - 1, change.time,
                change.message.empty() ? nullptr : &change.message, change.extra);
  }
  // An insert after an element that no change of the batch created: npm refuses the
  // batch (the changes stay applied here; the caller gets the error).
  return op_set_.check_waiting_inserts();
}

void Document::record_meta(ChangeGraph::Index i, uint64_t max_op, int64_t time, const std::string* message,
                           ByteView extra) {
  if (meta_.size() <= i) meta_.resize(i + 1);
  meta_[i] = ChangeMeta{max_op, time};
  max_op_ = std::max(max_op_, max_op);
  if (empty_message_.size() <= i) empty_message_.resize(i + 1);
  empty_message_[i] = message && message->empty();
  if (message && !message->empty()) messages_[i] = *message;
  if (!extra.empty()) extra_[i] = Bytes(extra.begin(), extra.end());
}

Result<nlohmann::json> Document::to_json_at(std::span<const ChangeHash> heads) const {
  // Mark the ancestors-or-self of the heads; dependencies have lower indexes, so a
  // walk from the highest index down visits each change after all its dependents.
  std::vector<bool> wanted(graph_.size(), false);
  for (const ChangeHash& h : heads) {
    std::optional<ChangeGraph::Index> i = graph_.find(h);
    if (!i) return error(ErrorCode::kNotFound, "unknown head " + h.hex() + ": not a change of this document");
    wanted[*i] = true;
  }
  for (size_t i = graph_.size(); i-- > 0;) {
    if (!wanted[i]) continue;
    for (ChangeGraph::Index d : graph_.deps(static_cast<ChangeGraph::Index>(i))) wanted[d] = true;
  }
  // Application order is a topological order, so the chunks apply in one pass.
  Bytes chunks;
  for (ChangeGraph::Index i = 0; i < graph_.size(); ++i) {
    if (wanted[i]) append(chunks, graph_.chunk(i));
  }
  GM_ASSIGN_OR_RETURN(Document past, Document::load(chunks, /*trusted=*/true));
  return past.to_json();
}

std::vector<ByteView> Document::changes() const {
  std::vector<ByteView> out;
  out.reserve(graph_.size());
  for (ChangeGraph::Index i = 0; i < graph_.size(); ++i) out.push_back(graph_.chunk(i));
  return out;
}

Bytes Document::save(bool compress) const {
  // The actor table is the set of change authors (an author of only empty changes
  // has no ops) and of op actors, sorted; the op set's indexes are remapped onto it.
  std::vector<ActorId> op_actors = op_set_.sorted_actors();
  std::vector<bool> author(graph_.actors().size());
  for (ChangeGraph::Index i = 0; i < graph_.size(); ++i) author[graph_.actor_index(i)] = true;
  std::vector<ActorId> actors = op_actors;
  for (size_t k = 0; k < author.size(); ++k) {
    if (author[k]) actors.push_back(graph_.actors()[k]);
  }
  std::sort(actors.begin(), actors.end());
  actors.erase(std::unique(actors.begin(), actors.end()), actors.end());
  auto index_of = [&](const ActorId& a) {
    return static_cast<uint32_t>(std::lower_bound(actors.begin(), actors.end(), a) - actors.begin());
  };
  std::vector<uint32_t> author_index(author.size());
  for (size_t k = 0; k < author.size(); ++k) {
    if (author[k]) author_index[k] = index_of(graph_.actors()[k]);
  }
  std::vector<uint32_t> remap;
  if (actors.size() != op_actors.size()) {
    for (const ActorId& a : op_actors) remap.push_back(index_of(a));
  }

  OpColumnsWriter ops(std::move(remap));
  op_set_.visit_ops([&](const Op& op) { ops.append(op); });

  ChangeColumnsWriter changes;
  static const std::string kEmpty;
  auto message = messages_.begin();
  auto extra = extra_.begin();
  for (ChangeGraph::Index i = 0; i < graph_.size(); ++i) {
    const std::string* text = nullptr;
    if (message != messages_.end() && message->first == i) text = &(message++)->second;
    if (i < empty_message_.size() && empty_message_[i]) text = &kEmpty;
    ByteView extra_bytes;
    if (extra != extra_.end() && extra->first == i) extra_bytes = (extra++)->second;
    changes.append(author_index[graph_.actor_index(i)], graph_.seq(i), meta_[i].max_op, meta_[i].time, text,
                   graph_.deps(i), extra_bytes);
  }

  std::vector<uint64_t> heads_index;
  for (const ChangeHash& h : graph_.heads()) heads_index.push_back(*graph_.find(h));
  Bytes out = make_chunk(ChunkType::kDocument, encode_document_body(actors, graph_.heads(), changes.finish(compress),
                                                                    ops.finish(compress), heads_index));
  // Changes still waiting for their dependencies follow, in the order they came, as
  // Automerge.save() keeps them: saving must not lose what could still apply.
  for (ByteView c : graph_.queued_chunks()) append(out, c);
  return out;
}

std::optional<Bytes> Document::generate_sync_message(SyncState& state, SyncOptions options) const {
  if (!options.save_document) options.save_document = [this] { return save(); };
  std::optional<SyncMessage> message = automerge::generate_sync_message(graph_, state, options);
  if (!message) return std::nullopt;
  return encode_sync_message(*message);
}

Status Document::receive_sync_message(SyncState& state, ByteView message,
                                      std::vector<ChangeGraph::Index>* applied) {
  std::vector<ChangeGraph::Index> local;
  if (!applied) applied = &local;
  size_t before = applied->size();
  Status received = automerge::receive_sync_message(graph_, state, message, applied);
  // Whatever reached the graph reaches the op set, even if the message failed later.
  Status ops = apply_changes(std::span<const ChangeGraph::Index>(*applied).subspan(before));
  GM_TRY(received);
  return ops;
}

}  // namespace gm::automerge
