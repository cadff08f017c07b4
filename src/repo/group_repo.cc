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

}  // namespace

namespace {

// Messages at most this large for a loaded document are quick work.
constexpr size_t kQuickJobBytes = 64 * 1024;
// A document with no single snapshot and this many bytes of changes is sent to a peer
// with nothing as a document chunk saved for it (a fraction of the size), not as every
// change: a million changes make a message of 100 MiB. Saving takes a while, so all
// work on such a document is slow.
constexpr size_t kSaveForNewPeersBytes = 1 << 20;

// The whole document as Automerge.save() writes it: a document chunk.
Result<Bytes> save_document(const ChangeGraph& graph) {
  Bytes all;
  for (ChangeGraph::Index i = 0; i < graph.size(); ++i) append(all, graph.chunk(i));
  // What the store holds loads whatever its size (GroupRepo::load reads it so too).
  GM_ASSIGN_OR_RETURN(automerge::Document full, automerge::Document::load(all, /*trusted=*/true));
  return full.save();
}

}  // namespace

// One document's turn on a worker: its state, the messages that came for it, and what
// the work produced for the repo's thread.
struct GroupRepo::Job {
  std::string document_id;
  std::unique_ptr<Doc> doc;  // null: load it first
  bool load = false;
  bool compact = false;  // a compaction of the unloaded document instead
  std::vector<Inbound> inbox;
  std::map<std::string, uint64_t> watchers;  // live peers of the document, as the job began
  size_t max_orphan_bytes = 0;  // what the document may hold of changes missing dependencies
  uint64_t max_write_bytes = UINT64_MAX;  // what it may write before the group's quota is full
  bool over_quota = false;
  int64_t disk_bytes = 0;  // written (a compaction: minus what it removed)
  // Results.
  bool store_failed = false;  // inbox[next..] was not worked on; the document is dropped
  size_t next = 0;
  std::set<uint64_t> failed;  // connections told to go
  std::vector<Outgoing> out;
  std::vector<storage::PendingFile> writes;
  uint64_t changes_stored = 0;
  uint64_t sync_errors = 0;
  std::vector<std::string> warnings, infos;

  void fail(const Inbound& in, const std::string& peer_id, const std::string& why) {
    warnings.push_back("conn " + std::to_string(in.conn) + ": " + why + "; closing");
    ++sync_errors;
    if (!failed.insert(in.conn).second) return;
    out.push_back({in.conn, encode_message(ErrorMessage{peer_id, in.peer_id, why}), std::nullopt});
    out.push_back({in.conn, {}, why.substr(0, 100)});
  }
};

// A commit's turn on the disk lane.
struct GroupRepo::CommitJob {
  std::vector<storage::PendingFile> files;
  std::vector<Outgoing> held;  // sent once the files are durable
  std::map<std::string, size_t> docs;  // files per document
  Status status = Status::Ok();
};

GroupRepo::GroupRepo(std::string group, std::shared_ptr<storage::DocumentStore> store, GroupRepoOptions options,
                     RepoLogger log)
    : group_(std::move(group)), store_(std::move(store)), options_(std::move(options)), log_(std::move(log)) {}

GroupRepo::~GroupRepo() = default;

void GroupRepo::run(Lane lane, std::function<void()> work, std::function<void()> done) {
  if (options_.executor) return options_.executor(lane, std::move(work), std::move(done));
  work();
  done();
}

void GroupRepo::log_limit(const std::string& limit, const std::string& message) {
  LimitLog& l = limit_logs_[limit];
  const Clock::time_point now = Clock::now();
  if (l.last != Clock::time_point{} && now - l.last < std::chrono::minutes(1)) {
    ++l.unsaid;
    return;
  }
  const uint64_t unsaid = std::exchange(l.unsaid, 0);
  l.last = now;
  log_.warn("group " + group_ + ": " + message +
            (unsaid ? " (and " + std::to_string(unsaid) + " more times since the last such line)" : ""));
}

void GroupRepo::connect(uint64_t conn, std::shared_ptr<Peer> peer) {
  conns_[conn] = Connection{conn, std::move(peer)};
  if (options_.max_group_bytes == 0 || std::exchange(measuring_, true)) return;
  // What the group holds already, measured once, while writes count from zero.
  auto measured = std::make_shared<Result<uint64_t>>(uint64_t{0});
  ++jobs_;
  run(
      Lane::kSlow, [store = store_, measured] { *measured = store->document_bytes(); },
      [this, measured, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        --jobs_;
        if (!*measured) return log_.warn("group " + group_ + ": " + measured->error().message);
        stats_.disk_bytes += **measured;
      });
}

void GroupRepo::disconnect(uint64_t conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  const std::string peer_id = it->second.peer_id;
  conns_.erase(it);
  if (peer_id.empty()) return;
  auto p = peers_.find(peer_id);
  if (p != peers_.end() && p->second == conn) peers_.erase(p);
  // Its sync sessions end with the socket (§2.3): each document's next job drops them
  // (Session::conn no longer matches a live socket).
}

void GroupRepo::send(Connection& c, Bytes frame) {
  if (has_uncommitted()) {  // wait behind what is not durable yet
    held_.push_back({c.id, std::move(frame), std::nullopt});
  } else {
    c.peer->send(std::move(frame));
  }
}

void GroupRepo::close(Connection& c, const std::string& reason) {
  if (has_uncommitted()) {
    held_.push_back({c.id, {}, reason});
  } else {
    c.peer->close(reason);
  }
}

void GroupRepo::deliver(Outgoing out) {
  auto it = conns_.find(out.conn);
  if (it == conns_.end()) return;
  if (out.close) return close(it->second, *out.close);
  send(it->second, std::move(out.frame));
}

void GroupRepo::fail(uint64_t conn, Connection& c, const std::string& why) {
  log_.warn("group " + group_ + ", conn " + std::to_string(conn) + ": " + why + "; closing");
  ++stats_.sync_errors;
  send(c, ErrorMessage{options_.peer_id, c.peer_id, why});
  close(c, why.substr(0, 100));
}

void GroupRepo::commit() {
  if (committing_) return;  // its end starts the next
  if (!store_->has_pending()) {
    // Nothing to flush: what waited behind an earlier commit may go.
    for (Outgoing& h : std::exchange(held_, {})) deliver(std::move(h));
    return;
  }
  committing_ = true;
  auto job = std::make_shared<CommitJob>();
  job->files = store_->take_pending();
  job->held = std::exchange(held_, {});
  job->docs = std::exchange(batch_docs_, {});
  run(
      Lane::kDisk, [job] { job->status = storage::DurableBatch::commit(job->files); },
      [this, job, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        committing_ = false;
        finish_commit(*job);
        commit();
      });
}

void GroupRepo::finish_commit(CommitJob& job) {
  for (const auto& [id, n] : job.docs) {
    auto it = slots_.find(id);
    if (it != slots_.end()) it->second.pending_writes -= std::min(n, it->second.pending_writes);
  }
  if (job.status) {
    for (Outgoing& h : job.held) deliver(std::move(h));
    tidy();
    return;
  }
  // Nothing not yet durable may leave: it could reveal changes that are not on disk.
  // The documents go back to what the disk holds, and the clients waiting start over.
  log_.warn("group " + group_ + ": storing changes failed: " + job.status.error().message);
  std::vector<storage::PendingFile> unflushed = store_->take_pending();  // deleted with it
  batch_docs_.clear();
  std::set<uint64_t> told;
  auto tell = [&](uint64_t conn) {
    auto it = conns_.find(conn);
    if (it == conns_.end() || !told.insert(conn).second) return;
    Connection& c = it->second;
    log_.warn("group " + group_ + ", conn " + std::to_string(conn) + ": its changes could not be stored; closing");
    ++stats_.sync_errors;
    c.peer->send(encode_message(ErrorMessage{options_.peer_id, c.peer_id, "the server could not store your changes"}));
    c.peer->close("the server could not store your changes");
  };
  for (const Outgoing& h : job.held) tell(h.conn);
  for (const Outgoing& h : std::exchange(held_, {})) tell(h.conn);
  // A document with nothing in the lost batches is as the disk has it, and its job
  // under way too.
  for (auto& [id, slot] : slots_) {
    if (slot.pending_writes == 0 && !job.docs.count(id)) continue;
    if (slot.busy) {
      slot.stale = true;
    } else {
      drop(id);
    }
    slot.pending_writes = 0;
  }
  tidy();
}

void GroupRepo::tidy() {
  for (auto it = slots_.begin(); it != slots_.end();) {
    const Slot& slot = it->second;
    const bool empty = !slot.busy && !slot.doc && slot.inbox.empty() && slot.pending_writes == 0;
    if (empty) orphan_bytes_.erase(it->first);
    it = empty ? slots_.erase(it) : std::next(it);
  }
  stats_.documents_loaded = static_cast<int64_t>(slots_.size());
}

void GroupRepo::drop(const std::string& document_id) {
  orphan_bytes_.erase(document_id);
  auto it = slots_.find(document_id);
  if (it == slots_.end()) return;
  it->second.doc.reset();
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
  Message& m = *decoded;

  if (auto* join = std::get_if<JoinMessage>(&m)) return on_join(conn, c, *join);
  if (c.peer_id.empty()) {
    log_.info("group " + group_ + ", conn " + std::to_string(conn) + ": " + std::string(message_type(m)) +
              " before join ignored");
    return;
  }
  if (auto* sync = std::get_if<SyncMessage>(&m)) {
    if (sync->sender_id != c.peer_id) return;
    return on_sync(c, sync->document_id, std::move(sync->data), false);
  }
  if (auto* request = std::get_if<RequestMessage>(&m)) {
    if (request->sender_id != c.peer_id) return;
    return on_sync(c, request->document_id, std::move(request->data), true);
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
  // A peer id that reconnects replaces its old socket (§3.2); its sessions start afresh
  // because they belong to the old socket.
  if (auto p = peers_.find(m.sender_id); p != peers_.end() && p->second != conn) {
    if (auto oc = conns_.find(p->second); oc != conns_.end()) {
      oc->second.peer->close("replaced by a new connection of the same peer");
      oc->second.peer_id.clear();
    }
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

void GroupRepo::on_sync(Connection& c, const std::string& document_id, Bytes data, bool is_request) {
  if (!c.documents.count(document_id)) {
    if (c.documents.size() >= options_.max_documents_per_connection) {
      if (!std::exchange(c.over_document_limit, true)) {
        log_limit("documents", "conn " + std::to_string(c.id) + ": more than " +
                                   std::to_string(options_.max_documents_per_connection) +
                                   " documents on one connection; the others get doc-unavailable");
      }
      ++stats_.sync_errors;
      return send(c, DocUnavailableMessage{options_.peer_id, c.peer_id, document_id});
    }
    c.documents.insert(document_id);
  }
  Slot& slot = slots_[document_id];
  slot.last_used = Clock::now();
  slot.watchers[c.peer_id] = c.id;
  c.inbox_bytes += data.size();
  if (c.inbox_bytes >= options_.pause_inbox_bytes && c.inbox_bytes - data.size() < options_.pause_inbox_bytes) {
    log_limit("pause", "conn " + std::to_string(c.id) + " sent " + std::to_string(c.inbox_bytes) +
                           " bytes not yet worked on; not read until they are");
    c.peer->pause(true);
  }
  slot.inbox.push_back({c.id, c.peer_id, std::move(data), is_request});
  stats_.documents_loaded = static_cast<int64_t>(slots_.size());
  if (!slot.busy) start_job(document_id, slot);
}

void GroupRepo::start_job(const std::string& document_id, Slot& slot) {
  auto job = std::make_shared<Job>();
  job->document_id = document_id;
  job->load = !slot.doc;
  job->doc = std::move(slot.doc);
  size_t bytes = 0;
  for (Inbound& in : slot.inbox) {
    bytes += in.data.size();
    job->inbox.push_back(std::move(in));
  }
  slot.inbox.clear();
  for (const auto& [peer_id, conn] : slot.watchers) {
    if (auto p = peers_.find(peer_id); p != peers_.end() && p->second == conn) job->watchers.emplace(peer_id, conn);
  }
  slot.watchers = job->watchers;
  size_t others = 0;
  for (const auto& [id, bytes] : orphan_bytes_) others += id == document_id ? 0 : bytes;
  job->max_orphan_bytes = std::min(options_.max_orphan_bytes_per_document,
                                   options_.max_orphan_bytes - std::min(options_.max_orphan_bytes, others));
  if (options_.max_group_bytes > 0) {
    job->max_write_bytes = options_.max_group_bytes - std::min(options_.max_group_bytes, stats_.disk_bytes);
  }
  slot.busy = true;
  ++jobs_;
  const bool big = job->doc && !job->doc->snapshot && job->doc->graph.chunk_bytes() >= kSaveForNewPeersBytes;
  const Lane lane = job->load || big || bytes > kQuickJobBytes ? Lane::kSlow : Lane::kQuick;
  run(
      lane, [this, job] { work(*job); },
      [this, job, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        finish_job(*job);
      });
}

void GroupRepo::finish_job(Job& job) {
  --jobs_;
  auto it = slots_.find(job.document_id);
  if (it == slots_.end()) return;  // cannot happen: a busy slot stays
  Slot& slot = it->second;
  slot.busy = false;
  for (const std::string& w : job.warnings) log_.warn("group " + group_ + ", document " + job.document_id + ": " + w);
  for (const std::string& i : job.infos) log_.info("group " + group_ + ", document " + job.document_id + ": " + i);
  stats_.sync_errors += job.sync_errors;
  // What the job did not reach (a write failed) is worked on again, from the document
  // as the disk has it; the rest no longer counts against its connection.
  const size_t handled = job.store_failed ? job.next + 1 : job.inbox.size();
  for (size_t i = 0; i < handled; ++i) {
    auto c = conns_.find(job.inbox[i].conn);
    if (c == conns_.end()) continue;
    const size_t before = c->second.inbox_bytes;
    c->second.inbox_bytes -= std::min(before, job.inbox[i].data.size());
    if (before >= options_.pause_inbox_bytes && c->second.inbox_bytes < options_.pause_inbox_bytes) {
      c->second.peer->pause(false);
    }
  }
  if (slot.stale) {
    // A commit failed while this job ran, on state that included what it lost: nothing
    // the job did may leave, and its clients start over.
    slot.stale = false;
    job.writes.clear();  // their temp files go
    job.out.clear();
    for (size_t i = 0; i < handled; ++i) {
      const Inbound& in = job.inbox[i];
      if (!job.failed.insert(in.conn).second) continue;
      if (auto c = conns_.find(in.conn); c != conns_.end()) fail(in.conn, c->second, "the server could not store your changes");
    }
    job.doc.reset();
  }
  stats_.disk_bytes = static_cast<uint64_t>(
      std::max<int64_t>(0, static_cast<int64_t>(stats_.disk_bytes) + job.disk_bytes));
  if (job.over_quota) {
    log_limit("quota", "its files take " + std::to_string(stats_.disk_bytes) +
                           " bytes, the most --max-group-bytes allows; changes are refused until there is room");
  }
  if (!job.writes.empty()) {
    slot.pending_writes += job.writes.size();
    batch_docs_[job.document_id] += job.writes.size();
    for (storage::PendingFile& f : job.writes) store_->defer(std::move(f));
    stats_.changes_stored += job.changes_stored;
  }
  if (job.store_failed) {
    // What is in memory must not outrun the disk.
    job.doc.reset();
    for (size_t i = job.inbox.size(); i-- > handled;) slot.inbox.push_front(std::move(job.inbox[i]));
  }
  slot.doc = std::move(job.doc);
  if (slot.doc && slot.doc->graph.queued_bytes() > 0) {
    orphan_bytes_[job.document_id] = slot.doc->graph.queued_bytes();
  } else {
    orphan_bytes_.erase(job.document_id);
  }
  for (Outgoing& o : job.out) deliver(std::move(o));
  if (!slot.inbox.empty()) {
    start_job(job.document_id, slot);
  } else if (!slot.doc && slot.pending_writes == 0) {
    slots_.erase(it);  // unreadable, dropped or compacted: read again when next used
  }
  stats_.documents_loaded = static_cast<int64_t>(slots_.size());
  commit();
}

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
  }
  for (; job.next < job.inbox.size(); ++job.next) {
    const Inbound& in = job.inbox[job.next];
    if (job.failed.count(in.conn)) continue;
    if (!job.doc) {
      // Only this document is out of reach (load() said why): the socket stays, and its
      // other documents keep syncing (closing it would make the client reconnect and
      // ask again, forever, and sync nothing else).
      job.warnings.push_back("conn " + std::to_string(in.conn) + ": cannot be read on the server; answered doc-unavailable");
      ++job.sync_errors;
      job.out.push_back(
          {in.conn, encode_message(DocUnavailableMessage{options_.peer_id, in.peer_id, job.document_id}), std::nullopt});
      continue;
    }
    if (!receive(job, in)) return;
  }
}

std::unique_ptr<GroupRepo::Doc> GroupRepo::load(const std::string& document_id, Job& job) const {
  auto doc = std::make_unique<Doc>();
  // What is on disk loads whatever its size (it may predate the op limit, or come from
  // another server): refusing it would set the user's data aside as damaged. The limit
  // applies to what clients send from here on.
  doc->graph.set_trusted(true);
  // Snapshots first, then incrementals: the order automerge-repo loads them in (§4.1).
  for (const char* kind : {"snapshot", "incremental"}) {
    auto blobs = store_->load_range({document_id, kind});
    if (!blobs) {
      job.warnings.push_back("cannot read the document: " + blobs.error().message);
      return nullptr;
    }
    for (auto& [key, bytes] : *blobs) {
      Status s = doc->graph.load(bytes);
      if (!s && s.error().over_limit) {
        // Not damage: a document past what this server handles (npm may well load it).
        // Nothing is moved, and it is not served.
        job.warnings.push_back("not served: its " + key[1] + " " + key.back() + ": " + s.error().message);
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
      if (snapshot) doc->snapshot = std::move(bytes);  // kept only if it is all (below)
    }
  }
  doc->graph.set_trusted(false);
  // A document stored past the op limit (written by npm, which has none) still takes
  // edits: its limit is what it holds plus as much again as any document may have.
  if (doc->graph.op_count() >= doc->graph.max_ops()) {
    doc->graph.set_max_ops(doc->graph.op_count() + automerge::kMaxDocumentRows);
  }
  const bool whole = doc->files.size() == 1 && doc->graph.queued_count() == 0 &&
                     *doc->files.begin() == storage::snapshot_key(document_id, heads_hex(doc->graph.heads()));
  if (!whole) doc->snapshot.reset();
  return doc;
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
  std::optional<automerge::SyncMessage> m = automerge::generate_sync_message(doc.graph, session.state, options);
  if (!m) return;
  SyncMessage out;
  out.sender_id = options_.peer_id;
  out.target_id = peer_id;
  out.document_id = job.document_id;
  out.data = automerge::encode_sync_message(*m);
  job.out.push_back({session.conn, encode_message(out), std::nullopt});
}

bool GroupRepo::receive(Job& job, const Inbound& in) const {
  Doc& doc = *job.doc;
  Session& session = doc.sessions[in.peer_id];
  if (session.conn != in.conn) session = Session{in.conn, {}};
  Result<automerge::SyncMessage> message = automerge::decode_sync_message(in.data);
  if (!message) {
    job.fail(in, options_.peer_id, "bad sync message for " + job.document_id + ": " + message.error().message);
    return true;
  }
  std::vector<ChangeGraph::Index> added;
  std::optional<automerge::ReceivedDocument> document;
  Status received = automerge::receive_sync_message(doc.graph, session.state, *message, &added, &document);
  // What reached the graph is stored before anyone hears of it, even if the rest of
  // the message was bad.
  Status stored = persist(job, added, document && document->servable ? &document->chunk : nullptr);
  if (!stored) {
    job.warnings.push_back("storing changes failed: " + stored.error().message);
    job.fail(in, options_.peer_id, job.over_quota ? stored.error().message : "the server could not store your changes");
    job.store_failed = true;
    return false;
  }
  if (!received) {
    job.fail(in, options_.peer_id, "bad sync message for " + job.document_id + ": " + received.error().message);
    return true;
  }
  if (in.is_request && doc.graph.empty()) {
    // We do not have it either. The client stays subscribed (its session is kept)
    // and gets the document when another client uploads it.
    job.out.push_back(
        {in.conn, encode_message(DocUnavailableMessage{options_.peer_id, in.peer_id, job.document_id}), std::nullopt});
  } else {
    generate(job, in.peer_id, session);
  }
  if (!added.empty()) {
    for (auto& [peer_id, other] : doc.sessions) {
      if (peer_id != in.peer_id && !job.failed.count(other.conn)) generate(job, peer_id, other);
    }
  }
  return true;
}

void GroupRepo::on_ephemeral(Connection& c, const EphemeralMessage& m) {
  // Only a peer's own messages are relayed. Clients forward the ephemeral messages they
  // get to their other peers, us included (§3.4): relaying those back would make one
  // message circle forever, and would let anyone in the group speak as anyone. A star
  // needs nothing more: the server is every client's hub.
  if (m.sender_id != c.peer_id) return;
  // Each (session, count) once: the highest count of the peer's last few sessions (a
  // repo has one session id for its life; ids are at most 1 KiB).
  constexpr size_t kSessionsKept = 8;
  auto seen = c.ephemeral_counts.find(m.session_id);
  if (seen != c.ephemeral_counts.end() && seen->second >= m.count) return;
  if (seen == c.ephemeral_counts.end() && c.ephemeral_counts.size() >= kSessionsKept) c.ephemeral_counts.clear();
  c.ephemeral_counts[m.session_id] = m.count;
  auto d = slots_.find(m.document_id);
  if (d == slots_.end()) return;
  d->second.last_used = Clock::now();
  for (const auto& [peer_id, conn] : d->second.watchers) {
    if (peer_id == c.peer_id) continue;
    Connection* other = find_peer(peer_id);
    if (!other || other->id != conn) continue;
    EphemeralMessage out = m;
    out.target_id = peer_id;
    Bytes frame = encode_message(out);
    // Droppable, and it reveals no change: sent at once, to sockets with room only.
    if (other->peer->has_room(frame.size())) {
      other->peer->send(std::move(frame));
    } else {
      ++stats_.ephemeral_dropped;
      log_limit("ephemeral", "an ephemeral message was not relayed to conn " + std::to_string(other->id) +
                                 ": its outgoing queue, or all queues together, are filling up");
    }
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
  std::vector<storage::StorageKey> old;
  for (const storage::StorageKey& f : doc.files) {
    if (f != key) old.push_back(f);
  }
  GM_TRY(store_->remove_keys(old));
  return snapshot.size();
}

void GroupRepo::compact_unloaded(const std::string& document_id, Slot& slot) {
  auto job = std::make_shared<Job>();
  job->document_id = document_id;
  job->compact = true;
  job->doc = std::move(slot.doc);
  slot.busy = true;
  ++jobs_;
  run(
      Lane::kSlow, [this, job] { work(*job); },
      [this, job, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        finish_job(*job);
      });
}

void GroupRepo::unload_idle(Clock::time_point now) {
  std::vector<std::string> idle;
  for (auto& [id, slot] : slots_) {
    if (slot.busy || !slot.doc || slot.pending_writes > 0 || now - slot.last_used < options_.idle_unload) continue;
    bool watched = false;
    for (const auto& [peer_id, conn] : slot.watchers) {
      auto p = peers_.find(peer_id);
      watched = watched || (p != peers_.end() && p->second == conn);
    }
    if (!watched) idle.push_back(id);
  }
  for (const std::string& id : idle) {
    orphan_bytes_.erase(id);
    Slot& slot = slots_[id];
    if (worth_compacting(*slot.doc)) {
      compact_unloaded(id, slot);  // the slot goes once it is done
    } else {
      slots_.erase(id);
    }
  }
  stats_.documents_loaded = static_cast<int64_t>(slots_.size());
}

void GroupRepo::flush() {
  // At shutdown, once no job or commit is under way: compaction runs here, and the
  // server stops once this returns.
  for (auto& [id, slot] : slots_) {
    if (slot.busy || !slot.doc || slot.pending_writes > 0 || !worth_compacting(*slot.doc)) continue;
    Result<size_t> s = compact(id, *slot.doc);
    if (!s) log_.warn("group " + group_ + ": compacting " + id + " failed: " + s.error().message);
  }
  slots_.clear();
  orphan_bytes_.clear();
  stats_.documents_loaded = 0;
}

}  // namespace gm::repo
