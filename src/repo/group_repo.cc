// GroupRepo's protocol side (group_repo.h): connections, the routing of join, sync and
// request messages, and the jobs that work on a document, with their flushes.
#include "repo/group_repo.h"

#include <algorithm>

namespace gm::repo {

// The flush of what one job wrote, on the disk lane; its replies leave once it is done.
struct GroupRepo::CommitJob {
  std::string document_id;
  std::vector<storage::PendingFile> files;
  std::vector<Outgoing> out;
  std::vector<Inbound> inbox;  // the messages it covers (their bytes still count)
  uint64_t changes_stored = 0;
  int64_t disk_bytes = 0;
  std::vector<std::pair<storage::StorageKey, std::string>> verified;  // as Job::verified
  Status status = Status::Ok();
};

GroupRepo::GroupRepo(std::string group, std::shared_ptr<storage::DocumentStore> store, GroupRepoOptions options,
                     RepoLogger log)
    : group_(std::move(group)), store_(std::move(store)), options_(std::move(options)), log_(std::move(log)) {}

GroupRepo::~GroupRepo() = default;

void GroupRepo::run(Lane lane, std::function<void()> work, std::function<void()> done) {
  if (!options_.executor) {
    work();
    return done();
  }
  options_.executor(lane, std::move(work), [alive = std::weak_ptr<bool>(alive_), done = std::move(done)] {
    if (!alive.expired()) done();
  });
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
  measure_once();
}

bool GroupRepo::attach(uint64_t conn, std::shared_ptr<Peer> peer, std::string peer_id, std::string sender,
                       bool read_only) {
  if (auto p = peers_.find(peer_id); p != peers_.end() && p->second != conn) {
    auto other = conns_.find(p->second);
    if (other != conns_.end() && other->second.sender.empty()) return false;
  }
  Connection c{conn, std::move(peer)};
  c.peer_id = std::move(peer_id);
  c.sender = std::move(sender);
  c.read_only = read_only;
  // The same client over a new socket replaces the old one here too (its own group
  // closes the old socket).
  peers_[c.peer_id] = conn;
  if (!conns_.count(conn)) ++attached_;
  conns_[conn] = std::move(c);
  measure_once();
  return true;
}

std::string GroupRepo::peer_of(uint64_t conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? std::string() : it->second.peer_id;
}

bool GroupRepo::holds(const std::string& document_id) const {
  auto it = slots_.find(document_id);
  return it != slots_.end() && it->second.doc && it->second.doc->has_changes();
}

void GroupRepo::measure_once() {
  if (options_.max_group_bytes == 0 || std::exchange(measuring_, true)) return;
  // What the group holds already, measured once, while writes count from zero.
  auto measured = std::make_shared<Result<uint64_t>>(uint64_t{0});
  ++jobs_;
  run(
      Lane::kSlow, [store = store_, measured] { *measured = store->document_bytes(); },
      [this, measured] {
        --jobs_;
        if (!*measured) return log_.warn("group " + group_ + ": " + measured->error().message);
        stats_.disk_bytes += **measured;
      });
}

void GroupRepo::disconnect(uint64_t conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  const std::string peer_id = it->second.peer_id;
  if (!it->second.sender.empty()) --attached_;
  conns_.erase(it);
  if (peer_id.empty()) return;
  auto p = peers_.find(peer_id);
  if (p != peers_.end() && p->second == conn) peers_.erase(p);
  // Its sync sessions end with the socket (§2.3): each document's next job drops them
  // (Session::conn no longer matches a live socket).
}

void GroupRepo::send(Connection& c, Bytes frame) { c.peer->send(std::move(frame)); }

void GroupRepo::close(Connection& c, const std::string& reason) { c.peer->close(reason); }

void GroupRepo::deliver(Outgoing out) {
  auto it = conns_.find(out.conn);
  if (it == conns_.end()) return;
  if (out.close) return close(it->second, *out.close);
  send(it->second, std::move(out.frame));
}

void GroupRepo::add_disk_bytes(int64_t bytes) {
  stats_.disk_bytes = static_cast<uint64_t>(std::max<int64_t>(0, static_cast<int64_t>(stats_.disk_bytes) + bytes));
}

void GroupRepo::release(std::span<const Inbound> handled) {
  for (const Inbound& in : handled) {
    auto it = conns_.find(in.conn);
    if (it == conns_.end()) continue;
    Connection& c = it->second;
    c.inbox_bytes -= std::min(c.inbox_bytes, in.data.size());
    c.inbox_messages -= std::min<size_t>(c.inbox_messages, 1);
    if (c.paused && c.inbox_bytes < options_.pause_inbox_bytes && c.inbox_messages < options_.pause_inbox_messages) {
      c.paused = false;
      c.peer->pause(false);
    }
  }
}

void GroupRepo::fail(uint64_t conn, Connection& c, const std::string& why) {
  log_.warn("group " + group_ + ", conn " + std::to_string(conn) + ": " + why + "; closing");
  ++stats_.sync_errors;
  send(c, ErrorMessage{sender(c), c.peer_id, why});
  close(c, why.substr(0, 100));
}

void GroupRepo::finish_commit(CommitJob& commit) {
  auto it = slots_.find(commit.document_id);
  if (commit.status) {
    stats_.changes_stored += commit.changes_stored;
    add_disk_bytes(commit.disk_bytes);
    for (Outgoing& o : commit.out) deliver(std::move(o));
    finish_calls(commit.inbox, Status::Ok());
    // Every change reaches the graph through a flush: this is where heads move.
    if (commit.changes_stored > 0 && options_.on_changed) options_.on_changed(commit.document_id);
  } else {
    // Nothing the job made may leave: it could reveal changes that are not on disk. The
    // document goes back to what the disk holds; the clients whose changes these were
    // are told, and send them again.
    // A full or failing disk fails every retry: said once a minute, with a count.
    log_limit("store", "document " + commit.document_id + ": storing changes failed: " +
                           commit.status.error().message + "; its clients were told and closed");
    if (it != slots_.end()) {
      drop(commit.document_id);
      it->second.resync = true;
    }
    std::set<uint64_t> told;
    for (const Inbound& in : commit.inbox) {
      auto c = conns_.find(in.conn);
      if (c != conns_.end() && told.insert(in.conn).second) fail(in.conn, c->second, "the server could not store your changes");
    }
    finish_calls(commit.inbox, context("storing the change failed", commit.status.error()));
  }
  release(commit.inbox);
  if (it != slots_.end()) return end_turn(commit.document_id, it->second);
  --jobs_;  // cannot happen: a busy slot stays
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
      return send(c, DocUnavailableMessage{sender(c), c.peer_id, document_id});
    }
    c.documents.insert(document_id);
  }
  Slot& slot = slots_[document_id];
  slot.last_used = Clock::now();
  slot.watchers[c.peer_id] = c.id;
  c.inbox_bytes += data.size();
  ++c.inbox_messages;
  if (!c.paused && (c.inbox_bytes >= options_.pause_inbox_bytes || c.inbox_messages >= options_.pause_inbox_messages)) {
    log_limit("pause", "conn " + std::to_string(c.id) + " has " + std::to_string(c.inbox_messages) + " messages (" +
                           std::to_string(c.inbox_bytes) + " bytes) not yet stored and answered; not read until then");
    c.paused = true;
    c.peer->pause(true);
  }
  slot.inbox.push_back({c.id, c.peer_id, std::move(data), is_request, nullptr, c.read_only});
  stats_.documents_loaded = static_cast<int64_t>(slots_.size());
  if (!slot.busy) start_job(document_id, slot);
}

void GroupRepo::start_job(const std::string& document_id, Slot& slot) {
  auto job = std::make_shared<Job>();
  job->document_id = document_id;
  job->load = !slot.doc;
  job->resync = std::exchange(slot.resync, false);
  job->doc = std::move(slot.doc);
  size_t bytes = 0;
  bool calls = false, heavy = false;
  for (Inbound& in : slot.inbox) {
    bytes += in.data.size();
    calls = calls || in.call;
    heavy = heavy || (in.call && in.call->call.heavy);
    job->inbox.push_back(std::move(in));
  }
  slot.inbox.clear();
  for (const auto& [peer_id, conn] : slot.watchers) {
    if (auto p = peers_.find(peer_id); p != peers_.end() && p->second == conn) job->watchers.emplace(peer_id, conn);
  }
  slot.watchers = job->watchers;
  if (attached_ > 0) {
    // Who is an attached connection, for the worker (it cannot look in conns_).
    auto note = [&](uint64_t conn) {
      auto c = conns_.find(conn);
      if (c == conns_.end() || c->second.sender.empty()) return;
      job->senders.emplace(conn, c->second.sender);
      if (c->second.read_only) job->read_only.insert(conn);
    };
    for (const auto& [peer_id, conn] : job->watchers) note(conn);
    for (const Inbound& in : job->inbox) note(in.conn);
  }
  // Whatever became of its socket, a read-only message stays read-only.
  for (const Inbound& in : job->inbox) {
    if (in.read_only) job->read_only.insert(in.conn);
  }
  size_t others = 0;
  for (const auto& [id, bytes] : orphan_bytes_) others += id == document_id ? 0 : bytes;
  job->max_orphan_bytes = std::min(options_.max_orphan_bytes_per_document,
                                   options_.max_orphan_bytes - std::min(options_.max_orphan_bytes, others));
  if (options_.max_group_bytes > 0) {
    job->max_write_bytes = options_.max_group_bytes - std::min(options_.max_group_bytes, stats_.disk_bytes);
  }
  // Expanding a large snapshot, or saving a document for a new peer, is slow work.
  const bool big = job->doc && (job->doc->snapshot ? !job->doc->expanded && job->doc->snapshot_bytes > kQuickJobBytes
                                                   : job->doc->graph.chunk_bytes() >= kSaveForNewPeersBytes);
  // A call may build the document's op set: slow work unless it is built or small.
  const bool build = calls && job->doc &&
                     (heavy || !job->doc->view || job->doc->view->heads() != job->doc->heads()) &&
                     job->doc->snapshot_bytes + job->doc->incremental_bytes > kQuickJobBytes;
  const Lane lane = job->load || big || build || bytes > kQuickJobBytes ? Lane::kSlow : Lane::kQuick;
  run_job(lane, slot, std::move(job));
}

void GroupRepo::run_job(Lane lane, Slot& slot, std::shared_ptr<Job> job) {
  job->peer_id = &options_.peer_id;
  slot.busy = true;
  ++jobs_;
  run(
      lane,
      [this, job] {
        try {
          work(*job);
        } catch (const std::exception& e) {
          // Out of memory, most likely: only this job's document and clients notice.
          job->abandon(e.what());
        }
      },
      [this, job] { finish_job(*job); });
}

void GroupRepo::finish_job(Job& job) {
  auto it = slots_.find(job.document_id);
  if (it == slots_.end()) {  // cannot happen: a busy slot stays
    --jobs_;
    return;
  }
  Slot& slot = it->second;
  for (const std::string& w : job.warnings) log_.warn("group " + group_ + ", document " + job.document_id + ": " + w);
  stats_.sync_errors += job.sync_errors;
  stats_.documents_expanded += job.expanded;
  if (!job.store_error.empty() && !job.over_quota) {
    log_limit("store", "document " + job.document_id + ": storing changes failed: " + job.store_error +
                           "; the client was told and closed");
  }
  if (job.writes.empty()) add_disk_bytes(job.disk_bytes);  // a compaction's; else once flushed
  if (job.over_quota) {
    log_limit("quota", "its files take " + std::to_string(stats_.disk_bytes) +
                           " bytes, the most --max-group-bytes allows; changes are refused until there is room");
  }
  // A write failed: what is in memory must not outrun the disk, and what the job did
  // not reach is worked on again, from the document as the disk has it.
  const size_t handled = job.store_failed ? std::min(job.next + 1, job.inbox.size()) : job.inbox.size();
  if (job.store_failed) {
    job.doc.reset();
    slot.resync = true;
    for (size_t i = job.inbox.size(); i-- > handled;) slot.inbox.push_front(std::move(job.inbox[i]));
    job.inbox.resize(handled);
  }
  slot.doc = std::move(job.doc);
  if (slot.doc && slot.doc->graph.queued_bytes() > 0) {
    orphan_bytes_[job.document_id] = slot.doc->graph.queued_bytes();
  } else {
    orphan_bytes_.erase(job.document_id);
  }
  if (!job.writes.empty()) {
    // Its replies leave once its files are durable, and the document's next job waits
    // for that too: a reply never reveals a change before it is on disk, and the
    // messages a client sends faster than the disk takes them wait (and pause it).
    auto commit = std::make_shared<CommitJob>();
    commit->document_id = job.document_id;
    commit->files = std::move(job.writes);
    commit->out = std::move(job.out);
    commit->inbox = std::move(job.inbox);
    commit->changes_stored = job.changes_stored;
    commit->disk_bytes = job.disk_bytes;
    commit->verified = std::move(job.verified);
    run(
        Lane::kDisk,
        [commit, store = store_] {
          commit->status = storage::DurableBatch::commit(commit->files);
          if (!commit->status) return;
          for (const auto& [key, print] : commit->verified) store->set_verified(key, print);
        },
        [this, commit] { finish_commit(*commit); });
    return;
  }
  for (Outgoing& o : job.out) deliver(std::move(o));
  finish_calls(job.inbox, Status::Ok());
  release(job.inbox);
  end_turn(job.document_id, slot);
}

void GroupRepo::finish_calls(std::span<const Inbound> handled, const Status& stored) {
  for (const Inbound& in : handled) {
    if (in.call && in.call->call.done) in.call->call.done(stored ? in.call->outcome : stored);
  }
}

void GroupRepo::call(const std::string& document_id, DocumentCall call) {
  Slot& slot = slots_[document_id];
  slot.last_used = Clock::now();
  Inbound in;
  in.call = std::make_shared<PendingCall>(PendingCall{std::move(call)});
  slot.inbox.push_back(std::move(in));
  stats_.documents_loaded = static_cast<int64_t>(slots_.size());
  if (!slot.busy) start_job(document_id, slot);
}

std::optional<GroupRepo::JsonText> GroupRepo::kept_json_text(const std::string& document_id) {
  auto it = slots_.find(document_id);
  if (it == slots_.end()) return std::nullopt;
  Slot& slot = it->second;
  // A busy slot's document is a job's (or holds changes not yet durable), and what
  // waits in its inbox comes first.
  if (slot.busy || !slot.inbox.empty() || slot.resync || !slot.doc) return std::nullopt;
  const Doc& doc = *slot.doc;
  if (doc.view_json.empty() || doc.view_json_heads != doc.heads()) return std::nullopt;
  // A copy on the io thread: a large one (about a millisecond per 10 MB) goes to a job.
  if (doc.view_json.size() > kIoThreadCopyBytes) return std::nullopt;
  slot.last_used = Clock::now();
  return JsonText{doc.view_json, doc.view_json_heads};
}

void GroupRepo::with_store(std::function<void(storage::DocumentStore& store)> work, std::function<void()> done) {
  ++jobs_;
  run(
      Lane::kSlow, [store = store_, work = std::move(work)] { work(*store); },
      [this, done = std::move(done)] {
        --jobs_;
        done();
      });
}

void GroupRepo::end_turn(const std::string& document_id, Slot& slot) {
  --jobs_;
  slot.busy = false;
  if (!slot.inbox.empty() || slot.resync) {
    start_job(document_id, slot);
  } else if (!slot.doc) {
    orphan_bytes_.erase(document_id);
    slots_.erase(document_id);  // unreadable, dropped or compacted: read again when next used
  }
  stats_.documents_loaded = static_cast<int64_t>(slots_.size());
}

}  // namespace gm::repo
