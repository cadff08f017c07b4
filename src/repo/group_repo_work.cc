// The work a job does on its worker (group_repo.h, "Threads"): loading a document,
// receiving sync messages, storing what they add, making the replies, and compaction.
// Everything here reads only the repo's options and store (both safe from any thread)
// and the job it is given.
#include "automerge/doc_chunk.h"
#include "automerge/document.h"
#include "repo/group_repo.h"

namespace gm::repo {

using automerge::ChangeGraph;

namespace {

std::vector<std::string> heads_hex(std::span<const automerge::ChangeHash> heads) {
  std::vector<std::string> hex;
  for (const auto& h : heads) hex.push_back(h.hex());
  return hex;
}

// The heads of `bytes` if they are one whole document chunk (checksum checked), sorted;
// none otherwise.
std::vector<automerge::ChangeHash> document_chunk_heads(ByteView bytes) {
  size_t consumed = 0;
  auto chunk = automerge::parse_chunk(bytes, &consumed);
  if (!chunk || consumed != bytes.size() || chunk->type != automerge::ChunkType::kDocument) return {};
  auto heads = automerge::document_heads(chunk->body);
  if (!heads) return {};
  std::sort(heads->begin(), heads->end());
  return std::move(*heads);
}

// The whole document as Automerge.save() writes it: a document chunk.
Result<Bytes> save_document(const ChangeGraph& graph) {
  Bytes all;
  for (ChangeGraph::Index i = 0; i < graph.size(); ++i) append(all, graph.chunk(i));
  // What the store holds loads whatever its size (GroupRepo::load reads it so too).
  GM_ASSIGN_OR_RETURN(automerge::Document full, automerge::Document::load(all, /*trusted=*/true));
  return full.save();
}

}  // namespace

void GroupRepo::work(Job& job) const {
  if (job.compact) {
    Result<size_t> written = compact(job.document_id, *job.doc);
    if (!written) job.warnings.push_back("compacting failed: " + written.error().message);
    if (written) {
      job.disk_bytes = static_cast<int64_t>(*written) -
                       static_cast<int64_t>(job.doc->snapshot_bytes + job.doc->incremental_bytes);
    }
    job.doc.reset();  // its memory goes back now, on the worker
    return;
  }
  if (job.load) job.doc = load(job.document_id, job);
  if (job.doc) {
    // What it holds from disk stays whatever the budget.
    job.doc->graph.set_max_queued_bytes(std::max(job.max_orphan_bytes, job.doc->graph.queued_bytes()));
    // Sessions of sockets gone since the last job end here.
    for (auto it = job.doc->sessions.begin(); it != job.doc->sessions.end();) {
      auto w = job.watchers.find(it->first);
      it = w == job.watchers.end() || w->second != it->second.conn ? job.doc->sessions.erase(it) : std::next(it);
    }
    if (job.resync) {
      // Reloaded after a failed write: every watcher starts afresh and hears from us.
      for (const auto& [peer_id, conn] : job.watchers) job.doc->sessions[peer_id] = new_session(job, conn);
      job.added = true;
    }
  }
  for (; job.next < job.inbox.size(); ++job.next) {
    const Inbound& in = job.inbox[job.next];
    if (in.call) {
      if (!run_call(job, in)) return;
      continue;
    }
    if (job.failed.count(in.conn)) continue;
    if (!job.doc) {
      unavailable(job, in.conn, in.peer_id);
      continue;
    }
    if (!receive(job, in)) return;  // nothing is said from a document that outran the disk
  }
  if (!job.doc) return;
  // One reply to each peer that spoke, and one message to every other peer if changes
  // came, from the document as all the messages left it.
  for (auto& [peer_id, session] : job.doc->sessions) {
    if (job.failed.count(session.conn)) continue;
    auto spoke = job.answer.find(peer_id);
    if (spoke == job.answer.end() && !job.added) continue;
    if (spoke != job.answer.end() && spoke->second && !job.doc->has_changes()) {
      // We do not have it either. The client stays subscribed (its session is kept)
      // and gets the document when another client uploads it.
      job.out.push_back({session.conn,
                         encode_message(DocUnavailableMessage{job.sender(session.conn), peer_id, job.document_id}),
                         std::nullopt});
    } else {
      // New heads are news to every peer. One message at a time, each peer would have
      // heard them in the answer to the message that brought them; a later message of
      // the batch saying the peer's heads equal ours makes the sync state count them as
      // told (§2.5), and the peer would never learn that its change is stored.
      if (job.added) session.state.last_sent_heads.clear();
      generate(job, peer_id, session);
    }
  }
}

std::unique_ptr<GroupRepo::Doc> GroupRepo::load(const std::string& document_id, Job& job) const {
  auto doc = std::make_unique<Doc>();
  // Snapshots first, then incrementals: the order automerge-repo loads them in (§4.1).
  std::vector<std::pair<storage::StorageKey, Bytes>> files;
  for (const char* kind : {"snapshot", "incremental"}) {
    auto blobs = store_->load_range({document_id, kind});
    if (!blobs) {
      job.warnings.push_back("cannot read the document: " + blobs.error().message);
      return nullptr;
    }
    for (auto& blob : *blobs) files.push_back(std::move(blob));
  }
  // One snapshot and nothing else (what compaction leaves, and the usual state of a
  // document at rest), that this server wrote or has read in full before
  // (DocumentStore::is_verified): kept as it is until a message needs its changes. Its
  // checksum and its name (its heads) are checked again now.
  if (files.size() == 1 && files[0].first[1] == "snapshot" &&
      store_->is_verified(files[0].first, storage::DocumentStore::fingerprint(files[0].second))) {
    std::vector<automerge::ChangeHash> heads = document_chunk_heads(files[0].second);
    if (!heads.empty() && files[0].first == storage::snapshot_key(document_id, heads_hex(heads))) {
      doc->expanded = false;
      doc->saved_heads = std::move(heads);
      doc->files.insert(files[0].first);
      doc->snapshot_bytes = files[0].second.size();
      doc->snapshot = std::move(files[0].second);
      return doc;
    }
  }
  if (!read_files(*doc, document_id, std::move(files), job)) return nullptr;
  return doc;
}

bool GroupRepo::read_files(Doc& doc, const std::string& document_id,
                           std::vector<std::pair<storage::StorageKey, Bytes>> files, Job& job) const {
  // What is on disk loads whatever its size (it may predate the op limit, or come from
  // another server): refusing it would set the user's data aside as damaged. The limit
  // applies to what clients send from here on.
  doc.graph.set_trusted(true);
  for (auto& [key, bytes] : files) {
    Status s = doc.graph.load(bytes);
    if (!s && s.error().code == ErrorCode::kOverLimit) {
      // Not damage: a document past what this server handles (npm may well load it).
      // Nothing is moved, and it is not served.
      job.warnings.push_back("not served: its " + key[1] + " " + key.back() + ": " + s.error().message);
      return false;
    }
    if (!s) {
      // A damaged file is set aside; the rest of the document still loads.
      (void)store_->quarantine(key, s.error().message);
      continue;
    }
    doc.files.insert(key);
    const bool snapshot = key[1] == "snapshot";
    (snapshot ? doc.snapshot_bytes : doc.incremental_bytes) += bytes.size();
    if (snapshot) doc.snapshot = std::move(bytes);  // kept only if it is all (below)
  }
  doc.graph.set_trusted(false);
  // A document stored past the op limit (written by npm, which has none) still takes
  // edits: its limit is what it holds plus as much again as any document may have.
  if (doc.graph.op_count() >= doc.graph.max_ops()) {
    doc.graph.set_max_ops(doc.graph.op_count() + automerge::kMaxDocumentRows);
  }
  const bool whole = doc.files.size() == 1 && doc.graph.queued_count() == 0 &&
                     *doc.files.begin() == storage::snapshot_key(document_id, heads_hex(doc.graph.heads()));
  if (!whole) doc.snapshot.reset();
  // Read in full and found to hold what its name says: next time it loads unexpanded.
  if (whole && doc.snapshot) store_->set_verified(*doc.files.begin(), storage::DocumentStore::fingerprint(*doc.snapshot));
  return true;
}

bool GroupRepo::expand(Job& job) const {
  Doc& doc = *job.doc;
  if (doc.expanded) return true;
  if (doc.unexpandable) return false;
  std::vector<std::pair<storage::StorageKey, Bytes>> files;
  files.emplace_back(*doc.files.begin(), *doc.snapshot);
  Doc expanded;
  if (!read_files(expanded, job.document_id, std::move(files), job)) {
    // Served whole to peers with nothing, and unavailable to the others.
    doc.unexpandable = true;
    return false;
  }
  doc.graph = std::move(expanded.graph);
  doc.graph.set_max_queued_bytes(job.max_orphan_bytes);
  doc.files = std::move(expanded.files);
  doc.snapshot_bytes = expanded.snapshot_bytes;
  doc.snapshot = std::move(expanded.snapshot);
  doc.saved_heads.clear();
  doc.expanded = true;
  job.expanded = true;
  return true;
}

Status GroupRepo::charge(Job& job, size_t bytes) const {
  if (bytes > job.max_write_bytes) {
    job.over_quota = true;
    return error("the group's storage is full (--max-group-bytes " + std::to_string(options_.max_group_bytes) +
                 "); your changes were not stored");
  }
  job.max_write_bytes -= bytes;
  job.disk_bytes += static_cast<int64_t>(bytes);
  return Status::Ok();
}

Status GroupRepo::persist(Job& job, std::span<const ChangeGraph::Index> added,
                          const automerge::Chunk* document_chunk) const {
  if (added.empty()) return Status::Ok();
  Doc& doc = *job.doc;
  // A whole document from a client that holds everything we do, in canonical order:
  // stored as it came, a snapshot (a fraction of its changes' size, and what
  // compaction would write).
  if (document_chunk && doc.graph.queued_count() == 0) {
    auto heads = automerge::document_heads(document_chunk->body);
    if (heads && *heads == doc.graph.heads()) {
      storage::StorageKey key = storage::snapshot_key(job.document_id, heads_hex(doc.graph.heads()));
      GM_TRY(charge(job, document_chunk->bytes.size()));
      GM_ASSIGN_OR_RETURN(storage::PendingFile file, store_->prepare(key, document_chunk->bytes));
      job.writes.push_back(std::move(file));
      // Its changes were checked as they reached the graph.
      job.verified.emplace_back(key, storage::DocumentStore::fingerprint(document_chunk->bytes));
      const bool alone = doc.files.empty();
      doc.files.insert(key);
      doc.snapshot_bytes += document_chunk->bytes.size();
      if (alone) {
        doc.snapshot.emplace(document_chunk->bytes.begin(), document_chunk->bytes.end());
      } else {
        doc.snapshot.reset();
      }
      job.changes_stored += added.size();
      return Status::Ok();
    }
  }
  // Stored as Automerge saves changes, large ones compressed: a client's compressed
  // change is not stored inflated (a 189 KB upload could fill 193 MB of disk).
  Bytes blob;
  for (ChangeGraph::Index i : added) append(blob, automerge::compress_change(doc.graph.chunk(i)));
  storage::StorageKey key = storage::incremental_key(job.document_id, blob);
  GM_TRY(charge(job, blob.size()));
  GM_ASSIGN_OR_RETURN(storage::PendingFile file, store_->prepare(key, blob));
  job.writes.push_back(std::move(file));
  doc.files.insert(key);
  doc.snapshot.reset();  // no longer the whole document
  doc.incremental_bytes += blob.size();
  job.changes_stored += added.size();
  return Status::Ok();
}

void GroupRepo::generate(Job& job, const std::string& peer_id, Session& session) const {
  Doc& doc = *job.doc;
  std::optional<automerge::SyncMessage> m;
  if (!doc.expanded && !automerge::generate_sync_message(doc.saved(), session.state, {}, &m) && !expand(job)) {
    // Not servable to this peer (only whole, as a V2 message): it hears so.
    return unavailable(job, session.conn, peer_id);
  }
  if (doc.expanded) m = generate_from_graph(job, session);
  if (!m) return;
  SyncMessage out;
  out.sender_id = job.sender(session.conn);
  out.target_id = peer_id;
  out.document_id = job.document_id;
  out.data = automerge::encode_sync_message(*m);
  job.out.push_back({session.conn, encode_message(out), std::nullopt});
}

std::optional<automerge::SyncMessage> GroupRepo::generate_from_graph(Job& job, Session& session) const {
  Doc& doc = *job.doc;
  automerge::SyncOptions options;
  if (doc.snapshot) {
    options.save_document = [&doc] { return *doc.snapshot; };
  } else if (doc.graph.chunk_bytes() >= kSaveForNewPeersBytes && doc.graph.queued_count() == 0) {
    // Saved once, kept until the next change (persist() drops it).
    options.save_document = [&doc, &job] {
      Result<Bytes> saved = save_document(doc.graph);
      if (!saved) {
        job.warnings.push_back("saving the document for a new peer failed: " + saved.error().message);
        Bytes all;  // the changes back to back say the same
        for (ChangeGraph::Index i = 0; i < doc.graph.size(); ++i) append(all, doc.graph.chunk(i));
        return all;
      }
      doc.snapshot = std::move(*saved);
      return *doc.snapshot;
    };
  }
  return automerge::generate_sync_message(doc.graph, session.state, options);
}

GroupRepo::Session GroupRepo::new_session(const Job& job, uint64_t conn) {
  Session session{conn, {}};
  session.state.read_only = job.read_only.count(conn) != 0;
  return session;
}

bool GroupRepo::receive(Job& job, const Inbound& in) const {
  Doc& doc = *job.doc;
  Session& session = doc.sessions[in.peer_id];
  if (session.conn != in.conn) session = new_session(job, in.conn);
  Result<automerge::SyncMessage> message = automerge::decode_sync_message(in.data);
  if (!message) {
    job.fail(in, "bad sync message for " + job.document_id + ": " + message.error().message);
    return true;
  }
  if (session.state.read_only && !message->changes.empty() && !std::exchange(session.told_read_only, true)) {
    // The sync state ignores them (and says so in its flags); the client hears why, once.
    ++job.sync_errors;
    job.out.push_back({in.conn,
                       encode_message(ErrorMessage{job.sender(in.conn), in.peer_id,
                                                   "read-only: your changes to " + job.document_id +
                                                       " are not stored (the grant for this group is read-only)"}),
                       std::nullopt});
  }
  if (!doc.expanded && !automerge::receive_sync_message(doc.saved(), session.state, *message) && !expand(job)) {
    unavailable(job, in.conn, in.peer_id);
    return true;
  }
  if (!doc.expanded) {
    job.answer[in.peer_id] |= in.is_request;
    return true;
  }
  std::vector<ChangeGraph::Index> added;
  std::optional<automerge::ReceivedDocument> document;
  Status received = automerge::receive_sync_message(doc.graph, session.state, *message, &added, &document);
  // What reached the graph is stored before anyone hears of it, even if the rest of
  // the message was bad.
  Status stored = persist(job, added, document && document->servable ? &document->chunk : nullptr);
  if (stored) job.added = job.added || !added.empty();
  if (!stored) {
    job.store_error = stored.error().message;
    job.tell(in, job.over_quota ? stored.error().message : "the server could not store your changes");
    job.store_failed = true;
    return false;
  }
  if (!received) {
    job.fail(in, "bad sync message for " + job.document_id + ": " + received.error().message);
    return true;
  }
  job.answer[in.peer_id] |= in.is_request;
  return true;
}

bool GroupRepo::DocumentAccess::exists() const { return job_.doc->has_changes(); }

std::vector<automerge::ChangeHash> GroupRepo::DocumentAccess::heads() const { return job_.doc->heads(); }

size_t GroupRepo::DocumentAccess::bytes() const { return job_.doc->snapshot_bytes + job_.doc->incremental_bytes; }

Result<std::optional<int64_t>> GroupRepo::DocumentAccess::last_change_time() {
  std::optional<int64_t> latest;
  auto take = [&latest](int64_t t) { latest = std::max(latest.value_or(t), t); };
  const Doc& d = *job_.doc;
  if (!d.expanded && d.snapshot) {
    size_t consumed = 0;
    auto chunk = automerge::parse_chunk(*d.snapshot, &consumed);
    auto decoded = chunk ? automerge::decode_document(chunk->body, automerge::document_row_limit(
                                                                      chunk->body.size(), automerge::kMaxStoredDocumentRows))
                         : Result<automerge::DecodedDocument>(chunk.error());
    if (decoded) {
      for (uint64_t row : decoded->heads_index) {
        if (row < decoded->changes.size()) take(decoded->changes[row].time);
      }
      // A file without head indexes: its last change in topological order is a head.
      if (decoded->heads_index.empty() && !decoded->changes.empty()) take(decoded->changes.back().time);
      return latest;
    }
  }
  GM_ASSIGN_OR_RETURN(const ChangeGraph* g, graph());
  for (const automerge::ChangeHash& h : g->heads()) {
    auto i = g->find(h);
    if (!i) continue;
    size_t consumed = 0;
    auto chunk = automerge::parse_chunk(g->chunk(*i), &consumed);
    if (!chunk) continue;
    auto header = automerge::decode_change_header(chunk->body);
    if (header) take(header->time);
  }
  return latest;
}

Result<const ChangeGraph*> GroupRepo::DocumentAccess::graph() {
  if (!repo_.expand(job_)) return error("the document is too large to read in full here");
  return &job_.doc->graph;
}

Result<automerge::Document*> GroupRepo::DocumentAccess::document() {
  Doc& doc = *job_.doc;
  if (doc.view && doc.view->heads() == doc.heads()) return doc.view.get();
  if (doc.view && doc.expanded && doc.graph.has_all(doc.view->heads())) {
    // Clients changed it since it was built: only their changes are applied.
    Bytes newer;
    for (ChangeGraph::Index i : doc.graph.changes_since(doc.view->heads())) append(newer, doc.graph.chunk(i));
    if (doc.view->apply(newer) && doc.view->heads() == doc.heads()) return doc.view.get();
  }
  doc.view.reset();
  // What the store holds (or a client sent and the store took) loads whatever its size,
  // as load() reads it.
  Result<automerge::Document> built = error("");
  if (!doc.expanded) {
    built = automerge::Document::load(*doc.snapshot, /*trusted=*/true);
  } else {
    Bytes all;
    for (ChangeGraph::Index i = 0; i < doc.graph.size(); ++i) append(all, doc.graph.chunk(i));
    built = automerge::Document::load(all, /*trusted=*/true);
  }
  if (!built) return context("cannot build the document", built.error());
  doc.view = std::make_unique<automerge::Document>(std::move(*built));
  return doc.view.get();
}

Result<const std::string*> GroupRepo::DocumentAccess::json_text() {
  Doc& doc = *job_.doc;
  if (!doc.view_json.empty() && doc.view_json_heads == doc.heads()) return &doc.view_json;
  GM_ASSIGN_OR_RETURN(automerge::Document * d, document());
  doc.view_json = d->to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  doc.view_json_heads = doc.heads();
  return &doc.view_json;
}

bool GroupRepo::run_call(Job& job, const Inbound& in) const {
  PendingCall& call = *in.call;
  if (!job.doc) {
    call.outcome = error(ErrorCode::kIo, "the document cannot be read on the server (see the server's log)");
    return true;
  }
  DocumentAccess access(*this, job);
  Result<std::optional<Bytes>> change = call.call.work(access);
  if (!change) {
    call.outcome = change.error();
    return true;
  }
  call.outcome = Status::Ok();
  if (!*change) return true;
  if (!expand(job)) {
    call.outcome = error("the document is too large to change here");
    return true;
  }
  Doc& doc = *job.doc;
  std::vector<ChangeGraph::Index> added;
  // Checked like a client's change (the same limits), though the server authored it.
  Status applied = doc.graph.add_chunk(**change, &added);
  if (!applied) {
    doc.view.reset();  // it may hold the change the graph refused
    call.outcome = context("the change does not apply", applied.error());
    return true;
  }
  Status stored = persist(job, added, nullptr);
  if (!stored) {
    job.store_error = stored.error().message;
    call.outcome = stored;
    job.store_failed = true;
    return false;
  }
  job.added = job.added || !added.empty();
  return true;
}

void GroupRepo::unavailable(Job& job, uint64_t conn, const std::string& peer_id) const {
  // Only this document is out of reach (load() or expand() said why): the socket stays,
  // and its other documents keep syncing (closing it would make the client reconnect
  // and ask again, forever, and sync nothing else).
  job.warnings.push_back("conn " + std::to_string(conn) + ": cannot be read on the server; answered doc-unavailable");
  ++job.sync_errors;
  job.out.push_back({conn, encode_message(DocUnavailableMessage{job.sender(conn), peer_id, job.document_id}), std::nullopt});
}

Result<Bytes> GroupRepo::compacted_snapshot(const ChangeGraph& graph) {
  GM_ASSIGN_OR_RETURN(Bytes snapshot, save_document(graph));
  // The snapshot must load back as load() will read it, or the changes it replaces
  // would be lost to a limit (a document chunk is denser than its changes).
  ChangeGraph check;
  check.set_trusted(true);
  Status reloads = check.load(snapshot);
  if (!reloads) return context("the compacted snapshot would not load; the changes are kept", reloads.error());
  if (check.heads() != graph.heads()) return error("the compacted snapshot has other heads; the changes are kept");
  return snapshot;
}

Result<size_t> GroupRepo::compact(const std::string& document_id, const Doc& doc) const {
  GM_ASSIGN_OR_RETURN(Bytes snapshot, compacted_snapshot(doc.graph));
  storage::StorageKey key = storage::snapshot_key(document_id, heads_hex(doc.graph.heads()));
  // The new snapshot is durable before anything it replaces goes.
  GM_TRY(store_->save(key, snapshot));
  store_->set_verified(key, storage::DocumentStore::fingerprint(snapshot));  // made from the graph, loaded back
  std::vector<storage::StorageKey> old;
  for (const storage::StorageKey& f : doc.files) {
    if (f != key) old.push_back(f);
  }
  GM_TRY(store_->remove_keys(old));
  return snapshot.size();
}

}  // namespace gm::repo
