#include "repo/group_repo.h"

#include <algorithm>

#include "automerge/document.h"

namespace gm::repo {

using automerge::ChangeGraph;

namespace {

std::vector<std::string> heads_hex(std::span<const automerge::ChangeHash> heads) {
  std::vector<std::string> hex;
  for (const auto& h : heads) hex.push_back(h.hex());
  return hex;
}

// Applies the changes of a document chunk a client sent, as receive_sync_message
// would (which then finds nothing new in it), and tells whether the chunk itself may
// be stored and served: its changes are checked by their hashes, but a loader takes
// the chunk's op order as the document's state, so that order must be the canonical
// one (doc_chunk.h). Done here because the decoded chunk is needed for both.
Status apply_document_chunk(ChangeGraph& graph, ByteView body, std::vector<ChangeGraph::Index>* added, bool* servable) {
  GM_ASSIGN_OR_RETURN(std::vector<automerge::ChangeHash> heads, automerge::document_heads(body));
  if (graph.has_all(heads) && !heads.empty()) return Status::Ok();
  auto decoded = graph.decode_document_chunk(body);
  if (!decoded) return context("sync message changes: document chunk", decoded.error());
  *servable = automerge::has_canonical_op_order(decoded->doc);
  decoded->doc.release_ops();
  GM_TRY(graph.load_document(decoded->doc, std::move(decoded->expanded), added));
  return Status::Ok();
}

// The document chunk a sync message carries when that is all it carries: a client
// sending us its whole document (V2, §2.6).
std::optional<automerge::Chunk> whole_document_chunk(const automerge::SyncMessage& m) {
  if (m.version != automerge::SyncVersion::kV2 || m.changes.size() != 1) return std::nullopt;
  size_t consumed = 0;
  auto chunk = automerge::parse_chunk(m.changes[0], &consumed);
  if (!chunk || consumed != m.changes[0].size() || chunk->type != automerge::ChunkType::kDocument) return std::nullopt;
  return std::move(*chunk);
}

}  // namespace

GroupRepo::GroupRepo(std::string group, std::shared_ptr<storage::DocumentStore> store, GroupRepoOptions options,
                     RepoLogger log)
    : group_(std::move(group)), store_(std::move(store)), options_(std::move(options)), log_(std::move(log)) {}

GroupRepo::~GroupRepo() = default;

void GroupRepo::connect(uint64_t conn, std::shared_ptr<Peer> peer) {
  conns_[conn] = Connection{conn, std::move(peer), {}};
}

void GroupRepo::disconnect(uint64_t conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  const std::string peer_id = it->second.peer_id;
  conns_.erase(it);
  if (peer_id.empty()) return;
  auto p = peers_.find(peer_id);
  if (p == peers_.end() || p->second != conn) return;  // replaced by a newer socket
  peers_.erase(p);
  // Sync sessions live only as long as the connection (§2.3): a reconnecting client
  // starts afresh, so nothing lost with the old socket stays "in flight".
  for (auto& [id, doc] : docs_) doc->sessions.erase(peer_id);
}

void GroupRepo::send(Connection& c, const Message& m) {
  if (has_uncommitted()) {  // wait behind what is not durable yet
    held_.push_back(Held{c.id, encode_message(m), std::nullopt});
  } else {
    c.peer->send(encode_message(m));
  }
}

void GroupRepo::close(Connection& c, const std::string& reason) {
  if (has_uncommitted()) {
    held_.push_back(Held{c.id, {}, reason});
  } else {
    c.peer->close(reason);
  }
}

void GroupRepo::fail(uint64_t conn, Connection& c, const std::string& why) {
  log_.warn("group " + group_ + ", conn " + std::to_string(conn) + ": " + why + "; closing");
  ++stats_.sync_errors;
  send(c, ErrorMessage{options_.peer_id, c.peer_id, why});
  close(c, why.substr(0, 100));
}

void GroupRepo::commit() {
  if (!has_uncommitted()) return;
  Status s = store_->commit();
  std::vector<Held> held = std::move(held_);
  held_.clear();
  std::set<std::string> docs = std::move(uncommitted_docs_);
  uncommitted_docs_.clear();
  if (!s) {
    // Nothing held may leave: it could reveal changes that are not on disk. The
    // documents go back to what the disk holds; their clients start over.
    log_.warn("group " + group_ + ": storing changes failed: " + s.error().message);
    for (const std::string& id : docs) docs_.erase(id);
    stats_.documents_loaded = static_cast<int64_t>(docs_.size());
    std::set<uint64_t> told;
    for (const Held& h : held) {
      auto it = conns_.find(h.conn);
      if (it == conns_.end() || !told.insert(h.conn).second) continue;
      fail(h.conn, it->second, "the server could not store your changes");
    }
    return;
  }
  for (Held& h : held) {
    auto it = conns_.find(h.conn);
    if (it == conns_.end()) continue;
    if (h.close) {
      it->second.peer->close(*h.close);
    } else {
      it->second.peer->send(std::move(h.frame));
    }
  }
}

GroupRepo::Connection* GroupRepo::find_peer(const std::string& peer_id) {
  auto p = peers_.find(peer_id);
  if (p == peers_.end()) return nullptr;
  auto c = conns_.find(p->second);
  return c == conns_.end() ? nullptr : &c->second;
}

void GroupRepo::receive(uint64_t conn, ByteView frame) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  Connection& c = it->second;
  Result<Message> decoded = decode_message(frame);
  if (!decoded) return fail(conn, c, "malformed message: " + decoded.error().message);
  const Message& m = *decoded;

  if (auto* join = std::get_if<JoinMessage>(&m)) return on_join(conn, c, *join);
  if (c.peer_id.empty()) {
    log_.info("group " + group_ + ", conn " + std::to_string(conn) + ": " + std::string(message_type(m)) +
              " before join ignored");
    return;
  }
  if (auto* sync = std::get_if<SyncMessage>(&m)) {
    if (sync->sender_id != c.peer_id) return;
    return on_sync(c, sync->document_id, sync->data, false);
  }
  if (auto* request = std::get_if<RequestMessage>(&m)) {
    if (request->sender_id != c.peer_id) return;
    return on_sync(c, request->document_id, request->data, true);
  }
  if (auto* eph = std::get_if<EphemeralMessage>(&m)) return on_ephemeral(c, *eph);
  // leave, doc-unavailable, remote-*, peer, error and unknown types: nothing to do.
}

void GroupRepo::on_join(uint64_t conn, Connection& c, const JoinMessage& m) {
  if (m.supported_protocol_versions) {
    const auto& v = *m.supported_protocol_versions;
    if (std::find(v.begin(), v.end(), "1") == v.end()) {
      return fail(conn, c, "unsupported protocol version (this server speaks version 1)");
    }
  }
  if (m.sender_id.empty()) return fail(conn, c, "join without a senderId");
  if (!c.peer_id.empty() && c.peer_id != m.sender_id) return fail(conn, c, "a second join with another senderId");
  // A peer id that reconnects replaces its old socket (§3.2).
  if (auto p = peers_.find(m.sender_id); p != peers_.end() && p->second != conn) {
    uint64_t old = p->second;
    if (auto oc = conns_.find(old); oc != conns_.end()) {
      oc->second.peer->close("replaced by a new connection of the same peer");
      oc->second.peer_id.clear();
    }
    for (auto& [id, doc] : docs_) doc->sessions.erase(m.sender_id);
  }
  c.peer_id = m.sender_id;
  peers_[m.sender_id] = conn;
  PeerMessage reply;
  reply.sender_id = options_.peer_id;
  reply.target_id = m.sender_id;
  reply.peer_metadata.storage_id = store_->storage_id();
  reply.peer_metadata.is_ephemeral = false;
  send(c, reply);
}

void GroupRepo::keep_snapshot(const std::string& document_id, Doc& doc) {
  const bool whole = doc.files.size() == 1 && doc.graph.queued_count() == 0 &&
                     *doc.files.begin() == storage::snapshot_key(document_id, heads_hex(doc.graph.heads()));
  if (!whole) doc.snapshot.reset();
}

GroupRepo::Doc* GroupRepo::load(const std::string& document_id) {
  auto found = docs_.find(document_id);
  if (found != docs_.end()) return found->second.get();
  auto doc = std::make_unique<Doc>();
  // What is on disk loads whatever its size (it may predate the op limit, or come from
  // another server): refusing it would set the user's data aside as damaged. The limit
  // applies to what clients send from here on.
  doc->graph.set_trusted(true);
  // Snapshots first, then incrementals: the order automerge-repo loads them in (§4.1).
  for (const char* kind : {"snapshot", "incremental"}) {
    auto blobs = store_->load_range({document_id, kind});
    if (!blobs) {
      log_.warn("group " + group_ + ": cannot read document " + document_id + ": " + blobs.error().message);
      return nullptr;
    }
    for (auto& [key, bytes] : *blobs) {
      Status s = doc->graph.load(bytes);
      if (!s && s.error().over_limit) {
        // Not damage: a document past what this server handles (npm may well load it).
        // Nothing is moved, and it is not served.
        log_.warn("group " + group_ + ": document " + document_id + " is not served: its " + key[1] + " " +
                  key.back() + ": " + s.error().message);
        return nullptr;
      }
      if (!s) {
        // A damaged file is set aside; the rest of the document still loads.
        (void)store_->quarantine(key, s.error().message);
        continue;
      }
      doc->files.insert(key);
      const bool snapshot = std::string(kind) == "snapshot";
      (snapshot ? doc->snapshot_bytes : doc->incremental_bytes) += bytes.size();
      if (snapshot) doc->snapshot = std::move(bytes);  // kept only if it is all (keep_snapshot)
    }
  }
  doc->graph.set_trusted(false);
  // A document stored past the op limit (written by npm, which has none) still takes
  // edits: its limit is what it holds plus as much again as any document may have.
  if (doc->graph.op_count() >= doc->graph.max_ops()) {
    doc->graph.set_max_ops(doc->graph.op_count() + automerge::kMaxDocumentRows);
  }
  Doc* raw = doc.get();
  docs_.emplace(document_id, std::move(doc));
  keep_snapshot(document_id, *raw);
  stats_.documents_loaded = static_cast<int64_t>(docs_.size());
  return raw;
}

Status GroupRepo::persist(const std::string& document_id, Doc& doc, std::span<const ChangeGraph::Index> added,
                          const automerge::Chunk* document_chunk) {
  if (added.empty()) return Status::Ok();
  uncommitted_docs_.insert(document_id);
  // A whole document from a client that holds everything we do, in canonical order:
  // stored as it came, a snapshot (a fraction of its changes' size, and what
  // compaction would write).
  if (document_chunk && doc.graph.queued_count() == 0) {
    auto heads = automerge::document_heads(document_chunk->body);
    if (heads && *heads == doc.graph.heads()) {
      storage::StorageKey key = storage::snapshot_key(document_id, heads_hex(doc.graph.heads()));
      GM_TRY(store_->save_deferred(key, document_chunk->bytes));
      const bool alone = doc.files.empty();
      doc.files.insert(key);
      doc.snapshot_bytes += document_chunk->bytes.size();
      if (alone) {
        doc.snapshot.emplace(document_chunk->bytes.begin(), document_chunk->bytes.end());
      } else {
        doc.snapshot.reset();
      }
      stats_.changes_stored += added.size();
      return Status::Ok();
    }
  }
  // Changes applied together lie back to back in the graph: no copy then.
  ByteView blob = doc.graph.contiguous_chunks(added);
  Bytes joined;
  if (blob.empty()) {
    for (ChangeGraph::Index i : added) append(joined, doc.graph.chunk(i));
    blob = joined;
  }
  storage::StorageKey key = storage::incremental_key(document_id, blob);
  GM_TRY(store_->save_deferred(key, blob));
  doc.files.insert(key);
  doc.snapshot.reset();  // no longer the whole document
  doc.incremental_bytes += blob.size();
  stats_.changes_stored += added.size();
  return Status::Ok();
}

void GroupRepo::send_sync(const std::string& peer_id, const std::string& document_id, Doc& doc) {
  Connection* c = find_peer(peer_id);
  if (!c) return;
  automerge::SyncState& state = doc.sessions[peer_id];
  automerge::SyncOptions options;
  if (doc.snapshot) options.save_document = [&doc] { return *doc.snapshot; };
  std::optional<automerge::SyncMessage> m = automerge::generate_sync_message(doc.graph, state, options);
  if (!m) return;
  SyncMessage out;
  out.sender_id = options_.peer_id;
  out.target_id = peer_id;
  out.document_id = document_id;
  out.data = automerge::encode_sync_message(*m);
  send(*c, std::move(out));  // a Message made from it without copying the data
}

void GroupRepo::on_sync(Connection& c, const std::string& document_id, ByteView data, bool is_request) {
  Doc* doc = load(document_id);
  uint64_t conn = peers_[c.peer_id];
  if (!doc) {
    // load() said why. Only this document is out of reach: the socket stays, and its
    // other documents keep syncing (closing it would make the client reconnect and
    // ask again, forever, and sync nothing else).
    log_.warn("group " + group_ + ", conn " + std::to_string(conn) + ": document " + document_id +
              " cannot be read on the server; answered doc-unavailable");
    ++stats_.sync_errors;
    send(c, DocUnavailableMessage{options_.peer_id, c.peer_id, document_id});
    return;
  }
  doc->last_used = Clock::now();
  automerge::SyncState& state = doc->sessions[c.peer_id];
  Result<automerge::SyncMessage> message = automerge::decode_sync_message(data);
  if (!message) return fail(conn, c, "bad sync message for " + document_id + ": " + message.error().message);
  std::optional<automerge::Chunk> document_chunk = whole_document_chunk(*message);
  std::vector<ChangeGraph::Index> added;
  bool servable = false;  // the document chunk may be stored and served as it came
  Status received = document_chunk && !state.read_only
                        ? apply_document_chunk(doc->graph, document_chunk->body, &added, &servable)
                        : Status::Ok();
  // A whole document is in the graph by now; the message's other fields still count.
  if (received) received = automerge::receive_sync_message(doc->graph, state, *message, &added);
  // What reached the graph is stored before anyone hears of it, even if the rest of
  // the message was bad.
  Status stored = persist(document_id, *doc, added, servable ? &*document_chunk : nullptr);
  if (!stored) {
    log_.warn("group " + group_ + ": storing changes of " + document_id + " failed: " + stored.error().message);
    // What is in memory must not outrun the disk: reload the document when next used.
    docs_.erase(document_id);
    stats_.documents_loaded = static_cast<int64_t>(docs_.size());
    return fail(conn, c, "the server could not store your changes");
  }
  if (!received) return fail(conn, c, "bad sync message for " + document_id + ": " + received.error().message);

  if (is_request && doc->graph.empty()) {
    // We do not have it either. The client stays subscribed (its session is kept)
    // and gets the document when another client uploads it.
    send(c, DocUnavailableMessage{options_.peer_id, c.peer_id, document_id});
  } else {
    send_sync(c.peer_id, document_id, *doc);
  }
  if (!added.empty()) {
    std::vector<std::string> others;
    for (const auto& [peer_id, session] : doc->sessions) {
      if (peer_id != c.peer_id) others.push_back(peer_id);
    }
    for (const std::string& p : others) send_sync(p, document_id, *doc);
  }
}

void GroupRepo::on_ephemeral(Connection& c, const EphemeralMessage& m) {
  // Clients forward ephemeral messages to their own peers, so without this check
  // one message would circle forever (§3.4).
  std::string key = m.sender_id + '\0' + m.session_id;
  auto seen = ephemeral_seen_.find(key);
  if (seen != ephemeral_seen_.end() && seen->second >= m.count) return;
  if (seen == ephemeral_seen_.end()) {
    if (ephemeral_order_.size() < options_.ephemeral_memory) {
      ephemeral_order_.push_back(key);
    } else {
      ephemeral_seen_.erase(ephemeral_order_[ephemeral_next_]);
      ephemeral_order_[ephemeral_next_] = key;
      ephemeral_next_ = (ephemeral_next_ + 1) % ephemeral_order_.size();
    }
  }
  ephemeral_seen_[key] = m.count;
  auto d = docs_.find(m.document_id);
  if (d == docs_.end()) return;
  d->second->last_used = Clock::now();
  for (const auto& [peer_id, session] : d->second->sessions) {
    if (peer_id == c.peer_id) continue;
    Connection* other = find_peer(peer_id);
    if (!other) continue;
    EphemeralMessage out = m;
    out.target_id = peer_id;
    send(*other, out);
  }
}

bool GroupRepo::worth_compacting(const Doc& doc) {
  // Worth it when several files hold the document, or one large file of changes (a
  // document chunk is far smaller); safe only when every stored change is applied (a
  // queued change lives only in its incremental file).
  constexpr size_t kCompactSingleFileBytes = 64 * 1024;
  bool worth = doc.files.size() > 1 || (doc.snapshot_bytes == 0 && doc.incremental_bytes >= kCompactSingleFileBytes);
  return worth && doc.graph.queued_count() == 0 && !doc.graph.empty();
}

Result<Bytes> GroupRepo::compacted_snapshot(const ChangeGraph& graph) {
  Bytes all;
  for (ChangeGraph::Index i = 0; i < graph.size(); ++i) append(all, graph.chunk(i));
  // What the store holds loads whatever its size (GroupRepo::load reads it so too).
  GM_ASSIGN_OR_RETURN(automerge::Document full, automerge::Document::load(all, /*trusted=*/true));
  Bytes snapshot = full.save();
  // The snapshot must load back as load() will read it, or the changes it replaces
  // would be lost to a limit (a document chunk is denser than its changes).
  ChangeGraph check;
  check.set_trusted(true);
  Status reloads = check.load(snapshot);
  if (!reloads) return context("the compacted snapshot would not load; the changes are kept", reloads.error());
  if (check.heads() != graph.heads()) return error("the compacted snapshot has other heads; the changes are kept");
  return snapshot;
}

Result<storage::StorageKey> GroupRepo::replace_files(const std::string& document_id,
                                                     const std::set<storage::StorageKey>& files,
                                                     const std::vector<automerge::ChangeHash>& heads, ByteView snapshot) {
  storage::StorageKey key = storage::snapshot_key(document_id, heads_hex(heads));
  // The new snapshot is durable before anything it replaces goes.
  GM_TRY(store_->save(key, snapshot));
  std::vector<storage::StorageKey> old;
  for (const storage::StorageKey& f : files) {
    if (f != key) old.push_back(f);
  }
  GM_TRY(store_->remove_keys(old));
  return key;
}

void GroupRepo::compact_unloaded(const std::string& document_id, std::unique_ptr<Doc> doc) {
  if (!worth_compacting(*doc) || compacting_.count(document_id)) return;
  compacting_.insert(document_id);
  struct Job {
    std::string id;
    std::unique_ptr<Doc> doc;
    std::vector<automerge::ChangeHash> heads;
    std::optional<Result<Bytes>> snapshot;
  };
  auto job = std::make_shared<Job>();
  job->id = document_id;
  job->heads = doc->graph.heads();
  job->doc = std::move(doc);
  auto work = [job] {
    job->snapshot = compacted_snapshot(job->doc->graph);
    job->doc->graph = ChangeGraph();  // its memory goes back now, on the worker
  };
  auto done = [this, job, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    compacting_.erase(job->id);
    Result<Bytes> snapshot = std::move(*job->snapshot);
    const std::set<storage::StorageKey> files = std::move(job->doc->files);
    job->doc.reset();
    if (!snapshot) {
      log_.warn("group " + group_ + ": compacting " + job->id + " failed: " + snapshot.error().message);
      return;
    }
    // Loaded again meanwhile: the snapshot still replaces the files it was made from
    // if the loaded document was read from all of them (none was set aside).
    auto it = docs_.find(job->id);
    Doc* loaded = it == docs_.end() ? nullptr : it->second.get();
    if (loaded && !std::includes(loaded->files.begin(), loaded->files.end(), files.begin(), files.end())) {
      log_.info("group " + group_ + ": " + job->id + " was loaded again from other files while being compacted");
      return;
    }
    Result<storage::StorageKey> key = replace_files(job->id, files, job->heads, *snapshot);
    if (!key) {
      log_.warn("group " + group_ + ": compacting " + job->id + " failed: " + key.error().message);
      return;
    }
    if (!loaded) return;
    for (const storage::StorageKey& f : files) loaded->files.erase(f);
    loaded->files.insert(*key);
    if (loaded->files.size() == 1) {  // the snapshot is all it has: served whole
      loaded->snapshot_bytes = snapshot->size();
      loaded->incremental_bytes = 0;
      loaded->snapshot = std::move(*snapshot);
    } else {
      loaded->snapshot_bytes += snapshot->size();  // an estimate: only worth_compacting reads it
      loaded->snapshot.reset();
    }
  };
  if (options_.background) {
    options_.background(std::move(work), std::move(done));
  } else {
    work();
    done();
  }
}

void GroupRepo::unload_idle(Clock::time_point now) {
  commit();  // compaction reads and replaces files: they must all be in place
  for (auto it = docs_.begin(); it != docs_.end();) {
    Doc& doc = *it->second;
    bool idle = now - doc.last_used >= options_.idle_unload;
    bool watched = false;
    for (const auto& [peer_id, session] : doc.sessions) watched = watched || peers_.count(peer_id) != 0;
    if (!idle || watched) {
      ++it;
      continue;
    }
    const std::string id = it->first;
    std::unique_ptr<Doc> unloaded = std::move(it->second);
    it = docs_.erase(it);
    compact_unloaded(id, std::move(unloaded));
  }
  stats_.documents_loaded = static_cast<int64_t>(docs_.size());
}

void GroupRepo::flush() {
  commit();
  // At shutdown, compaction runs here: the server stops once this returns.
  for (auto& [id, doc] : docs_) {
    if (!worth_compacting(*doc) || compacting_.count(id)) continue;
    Result<Bytes> snapshot = compacted_snapshot(doc->graph);
    Status s = snapshot ? Status::Ok() : Status(snapshot.error());
    if (s) {
      if (auto key = replace_files(id, doc->files, doc->graph.heads(), *snapshot); !key) s = key.error();
    }
    if (!s) log_.warn("group " + group_ + ": compacting " + id + " failed: " + s.error().message);
  }
  docs_.clear();
  stats_.documents_loaded = 0;
}

}  // namespace gm::repo
