// One lexicon group's automerge-repo peer (spec/automerge.md §3.2–§3.4, §3.6): its
// documents, the clients connected to it, and the sync sessions between them.
//
// The server is a relay with a memory: it keeps each document's change graph (never
// its op set; it does not need the document's state to sync it), runs one sync
// session per (document, client), and stores every change durably before any message
// that could reveal it leaves the server. A client only reaches the documents of the
// group its token names, because each group is a separate GroupRepo over a separate
// store.
//
// Per message from a joined client:
//   sync / request   feed the client's sync session; new changes are written to the
//                    store (an `incremental` file, or a `snapshot` when a client sent
//                    its whole document), then the client gets its reply and
//                    every other client of that document a message; a `request` for
//                    a document with no changes gets `doc-unavailable`, and the client
//                    stays subscribed, so the document reaches it once someone uploads
//                    it.
//   ephemeral        a peer's own (senderId = its peer id) relayed to the document's
//                    other clients with room for it, each (sessionId, count) once.
//   others           ignored (remote-*, leave, doc-unavailable, unknown types).
// A malformed message or sync payload gets an `error` message and the socket is
// closed; nobody else notices.
//
// Threads. The repo's own thread (the server's io thread) parses frames, routes them
// and sends; everything that may be slow runs elsewhere (options.executor): each
// document is worked on by one job at a time (load it from disk, receive the sync
// messages that came for it, store what they added, make the replies), and messages
// arriving meanwhile wait in the document's inbox for the next job, so per (document,
// peer) replies keep their order. A job gets the document's state for its duration
// and hands it back. Jobs whose work is small (a loaded document, little to receive)
// run on a quick lane, the others on a slow lane, so a long load or upload never
// delays another document's edit. The flush of a job's writes runs on a third lane, and
// the job's replies wait for it (see busy()). docs/architecture.md tells the whole path.
//
// Documents are unloaded once no client has used them for `idle_unload`; unloading
// compacts a document whose incremental files outweigh its snapshot into one snapshot,
// written durably before the files it replaces are removed. Compaction is a job on the
// document like the others, so a message for the document waits for it and then loads
// the compacted document. Not thread-safe: call from one thread.
//
// The code: group_repo.cc (connections, message routing, jobs and their flush),
// group_repo_work.cc (what a job does on its worker), group_repo_ephemeral.cc (the
// relay) and group_repo_unload.cc (unloading and compaction).
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "automerge/change_graph.h"
#include "automerge/document.h"
#include "automerge/sync.h"
#include "repo/message.h"
#include "storage/document_store.h"

namespace gm::repo {

using Clock = std::chrono::steady_clock;

// A connected client as the repo layer sees it.
class Peer {
 public:
  virtual ~Peer() = default;
  // Queues one binary frame; false if the connection is closing.
  virtual bool send(Bytes frame) = 0;
  // The same for a frame whose middle is shared with other sockets' frames.
  virtual bool send_shared(Frame frame) { return send(frame.flatten()); }
  // Closes the connection after what is queued; the owner calls disconnect() later.
  virtual void close(std::string reason) = 0;
  // The same, for a connection asking what this server will not serve (e.g. a group
  // that cannot be opened): the server's close code 1008.
  virtual void refuse(std::string reason) { close(std::move(reason)); }
  // Stops (true) or resumes (false) reading the connection's messages.
  virtual void pause(bool paused) { (void)paused; }
  // Whether a droppable message of `bytes` (ephemeral) should be sent now.
  virtual bool has_room(size_t bytes) const {
    (void)bytes;
    return true;
  }
};

struct RepoLogger {
  std::function<void(const std::string&)> info = [](const std::string&) {};
  std::function<void(const std::string&)> warn = [](const std::string&) {};
};

// Counters the server exports; updated by the repo layer.
struct GroupStats {
  int64_t documents_loaded = 0;
  uint64_t sync_errors = 0;
  uint64_t changes_stored = 0;
  uint64_t documents_expanded = 0;  // snapshots expanded into their changes (Doc::expanded)
  uint64_t ephemeral_dropped = 0;  // not relayed: the receiving socket had no room
  uint64_t disk_bytes = 0;         // of the document files (an estimate between restarts)
};

// Where a job runs: quick (small work on a loaded document), slow (loading, large
// uploads, compaction) or disk (the flush of a job's writes).
enum class Lane { kQuick, kSlow, kDisk };

// Runs `work` on a worker of `lane` and then `done` on the repo's thread (the server: a
// post back to the io thread). Empty: both at once, in the caller.
using Executor = std::function<void(Lane lane, std::function<void()> work, std::function<void()> done)>;

struct GroupRepoOptions {
  std::string peer_id;  // our senderId: "storage-server-<hostname>-<group>"
  std::chrono::milliseconds idle_unload{std::chrono::seconds(10)};
  // A connection's sync messages not yet stored and answered, past which its socket
  // stops reading (Peer::pause) until the jobs and the disk catch up: in bytes, and in
  // messages (each costs a file and a flush). What a client can make the server hold is
  // this, one more message, and the replies to it.
  size_t pause_inbox_bytes = 16u << 20;
  size_t pause_inbox_messages = 256;
  // Documents one connection may sync: each costs the server a sync session, and one
  // loaded from disk. Past it, a new document gets `doc-unavailable` (and a log line).
  size_t max_documents_per_connection = 16384;
  // Bytes of changes held while they wait for missing dependencies: per document, and
  // for the whole group (a client could otherwise spread them over many documents).
  size_t max_orphan_bytes_per_document = 32u << 20;
  size_t max_orphan_bytes = 128u << 20;
  // Bytes the group's document files may take on disk (0: no limit). Past it, changes
  // are refused with an error that says so; compaction usually gives some back.
  uint64_t max_group_bytes = 0;
  Executor executor;
  // On the repo's thread, when a document's heads moved: its new changes are durable
  // and on their way to its clients (the point where a job's replies leave). For
  // watchers outside the sync protocol (the API's event streams); may be empty.
  std::function<void(const std::string& document_id)> on_changed;
};

class GroupRepo {
  struct Job;

 public:
  // A document as a DocumentCall sees it, on the call's worker, for its duration.
  class DocumentAccess {
   public:
    // Whether it has changes (from the store or from clients). A document that has
    // none is new: a call may create it by adding the first change.
    bool exists() const;
    // Its heads, sorted.
    std::vector<automerge::ChangeHash> heads() const;
    // Bytes of its files, as stored.
    size_t bytes() const;
    // Its change graph (a document loaded unexpanded is expanded first: slow for a
    // large one); an error if it cannot be.
    Result<const automerge::ChangeGraph*> graph();
    // The latest time among its heads' changes (as their authors' clocks said; nullopt
    // for a document with none). A document at rest (one snapshot, not expanded) is
    // not expanded for it: the snapshot's change columns say it.
    Result<std::optional<int64_t>> last_change_time();
    // The whole document with its op set, for the JSON view or to author a change on.
    // Built from the graph (or the snapshot) once and kept with the document while its
    // heads stay; a change authored on it must be what the call returns.
    Result<automerge::Document*> document();
    // The JSON view as compact text (a JSON.stringify of npm's toJS, invalid UTF-8
    // replaced), kept with the document while its heads stay: a read of an unchanged
    // document is a copy.
    Result<const std::string*> json_text();

   private:
    friend class GroupRepo;
    DocumentAccess(const GroupRepo& repo, Job& job) : repo_(repo), job_(job) {}
    const GroupRepo& repo_;
    Job& job_;
  };
  // Work on one document from outside the sync protocol (the JSON API). It runs as a
  // job on the document's slot, in order with the sync messages that came before and
  // after it, so it sees the document as the clients' acknowledged changes left it. A
  // change it returns goes the way a client's change goes: added to the graph,
  // persisted, made durable (the job's DurableBatch commit), and only then sent to
  // every client of the document and `done`.
  struct DocumentCall {
    // On a worker: a change chunk to add (nullopt: nothing to add), or an error
    // (nothing is added). What it computes for the caller it keeps itself.
    std::function<Result<std::optional<Bytes>>(DocumentAccess& doc)> work;
    // On the repo's thread: the outcome of `work`, or why it did not run or its change
    // could not be stored.
    std::function<void(Status)> done;
    // Work that grows with the document's history (a view at other heads, every
    // change's metadata): on the slow lane unless the document is small, never beside
    // the clients' quick sync work.
    bool heavy = false;
  };

  GroupRepo(std::string group, std::shared_ptr<storage::DocumentStore> store, GroupRepoOptions options,
            RepoLogger log);
  ~GroupRepo();

  const std::string& group() const { return group_; }
  const GroupStats& stats() const { return stats_; }

  void connect(uint64_t conn, std::shared_ptr<Peer> peer);
  void receive(uint64_t conn, ByteView frame);
  void disconnect(uint64_t conn);

  // A connection that joined another group and reaches this one through its token's
  // scopes (Repo routes it here, document by document). It is joined already: it is
  // `peer_id` to us, and hears from us as `sender` (the peer id its own group gave it in
  // `peer`: a client knows one peer per socket, and drops messages from any other). A
  // `read_only` one gets every document it asks for, but its changes are never stored
  // or forwarded: it is told once per document with an `error` message, and its sync
  // sessions are read-only (sync.h), so neither side asks again.
  // False (and nothing changes) if `peer_id` is a live connection of this group's own:
  // an attached socket never takes a peer id from under one.
  bool attach(uint64_t conn, std::shared_ptr<Peer> peer, std::string peer_id, std::string sender, bool read_only);
  // The peer id the connection joined with (empty before its join, or unknown).
  std::string peer_of(uint64_t conn) const;
  const std::string& peer_id() const { return options_.peer_id; }
  // Whether the document is in memory with changes (a quick answer; the store knows
  // the rest: DocumentStore::has_document).
  bool holds(const std::string& document_id) const;
  const std::shared_ptr<storage::DocumentStore>& store() const { return store_; }

  // Durability: a job writes what its messages added beside its place (temp files),
  // then the disk lane makes them durable (DurableBatch::commit), and only then do the
  // job's replies leave and the document's next job start, with every message that
  // came meanwhile. If the flush fails, nothing the job made leaves: the document goes
  // back to what the disk holds, and the clients whose changes were lost get an error
  // and are closed (they keep their changes and send them again).
  //
  // Jobs or flushes under way (the owner waits for them before flush()); jobs must end
  // before the repo goes.
  bool busy() const { return jobs_ > 0; }
  // Unloads documents idle since before now - idle_unload, compacting those worth it.
  void unload_idle(Clock::time_point now);
  // Compacts and unloads every document, in the caller (shutdown, once !busy()).
  void flush();

  // Runs `call` on the document (see DocumentCall).
  void call(const std::string& document_id, DocumentCall call);
  // The document's JSON view as text (DocumentAccess::json_text), when this thread can
  // answer it at once: the document is loaded, no job is on it or waiting for it, and
  // its text was made for its current heads. A copy (nothing is built here), with those
  // heads; nullopt otherwise (then a DocumentCall reads it). What it answers is what a
  // call would: every change answered before (a call's, a client's) is in it, as a
  // change makes new heads and the text is not for them until a job has made it. It
  // counts as a use of the document (idle unload).
  struct JsonText {
    std::string text;
    std::vector<automerge::ChangeHash> heads;
  };
  std::optional<JsonText> kept_json_text(const std::string& document_id);
  // The largest kept text copied on the io thread; larger ones are read by a call.
  static constexpr size_t kIoThreadCopyBytes = 1 << 20;
  // Runs `work` with the group's store on the slow lane (listings and measures that
  // walk the folder), then `done` on this thread; counted in busy().
  void with_store(std::function<void(storage::DocumentStore& store)> work, std::function<void()> done);

  bool has_connections() const { return !conns_.empty(); }
  void set_executor(Executor executor) { options_.executor = std::move(executor); }

 private:
  struct Connection {
    uint64_t id = 0;
    std::shared_ptr<Peer> peer;
    std::string peer_id;  // empty until join
    std::string sender;   // our peer id to it, if not options.peer_id (attach)
    bool read_only = false;
    size_t inbox_bytes = 0;     // of its messages not yet stored and answered
    size_t inbox_messages = 0;
    bool paused = false;
    std::map<std::string, uint64_t> ephemeral_counts;  // session id → highest count relayed
    std::unordered_set<std::string> documents;  // it synced (max_documents_per_connection)
    bool over_document_limit = false;            // logged once
  };
  // A message (or, with `close`, a close) for a connection.
  struct Outgoing {
    uint64_t conn = 0;
    Bytes frame;
    std::optional<std::string> close;
  };
  // A DocumentCall with its outcome (set on the worker).
  struct PendingCall {
    DocumentCall call;
    Status outcome = error("the document's job did not reach this call");
  };
  // A sync or request message (or a DocumentCall) waiting for its document's next job.
  struct Inbound {
    uint64_t conn = 0;  // 0 for a call
    std::string peer_id;
    Bytes data;
    bool is_request = false;
    std::shared_ptr<PendingCall> call;
    // From an attached read-only connection: kept with the message, since the
    // connection may be gone (and unknown to start_job) by the time it is worked on.
    bool read_only = false;
  };
  struct Session {
    uint64_t conn = 0;  // the socket it was made with: another one starts afresh (§2.3)
    automerge::SyncState state;
    bool told_read_only = false;  // the peer heard its changes are not taken
  };
  // A document's state; owned by the repo's thread or by the one job working on it.
  struct Doc {
    automerge::ChangeGraph graph;
    std::map<std::string, Session> sessions;  // by peer id
    std::set<storage::StorageKey> files;  // snapshot and incremental keys on disk
    size_t snapshot_bytes = 0;
    size_t incremental_bytes = 0;
    // The document chunk of the one snapshot file, kept while that file is all the
    // document has (loaded from it, nothing since): a peer with nothing gets it as a
    // V2 whole-document message instead of every change.
    std::optional<Bytes> snapshot;
    // Loaded from its one snapshot and not yet expanded into `graph` (empty until then):
    // a peer with nothing or with everything is answered from the snapshot and its
    // heads (automerge::SavedDocument); the first message that needs the changes
    // expands it (expand()). A document of millions of ops opens in milliseconds.
    bool expanded = true;
    bool unexpandable = false;  // expanding it failed on a limit: served whole only
    std::vector<automerge::ChangeHash> saved_heads;

    // The document with its op set, for DocumentCalls; current while its heads are
    // the document's (DocumentAccess::document).
    std::unique_ptr<automerge::Document> view;
    // Its JSON view as text, and the heads it is of (DocumentAccess::json_text).
    std::string view_json;
    std::vector<automerge::ChangeHash> view_json_heads;

    bool has_changes() const { return !expanded || !graph.empty(); }
    const std::vector<automerge::ChangeHash>& heads() const { return expanded ? graph.heads() : saved_heads; }
    automerge::SavedDocument saved() const { return {saved_heads, *snapshot}; }
  };
  // The repo thread's view of a document.
  struct Slot {
    std::unique_ptr<Doc> doc;  // null while a job has it, or until loaded
    bool busy = false;         // a job is working on it, or its writes are being flushed
    // Dropped after a failed write: the next job reloads it and starts every watcher's
    // session afresh, so that what was stored is announced and nobody loses the document.
    bool resync = false;
    std::deque<Inbound> inbox;
    std::map<std::string, uint64_t> watchers;  // peers that synced it → their socket
    Clock::time_point last_used;
  };
  // One document's turn on a worker: its state, the messages that came for it, and what
  // the work produced for the repo's thread.
  struct Job {
    std::string document_id;
    std::unique_ptr<Doc> doc;  // null: load it first
    bool load = false;
    bool resync = false;   // fresh sessions for every watcher (Slot::resync)
    bool compact = false;  // a compaction of the unloaded document instead
    std::vector<Inbound> inbox;
    std::map<std::string, uint64_t> watchers;  // live peers of the document, as the job began
    // Our peer id to each connection: `peer_id`, or the one `senders` names (attach).
    const std::string* peer_id = nullptr;  // set by run_job
    std::unordered_map<uint64_t, std::string> senders;
    std::unordered_set<uint64_t> read_only;  // attached read-only connections
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
    bool expanded = false;  // expand() expanded the document
    std::string store_error;  // why storing failed (logged at most once a minute)
    // Snapshots it wrote from checked changes, with their fingerprints.
    std::vector<std::pair<storage::StorageKey, std::string>> verified;
    std::vector<std::string> warnings;
    // Peers to answer once every message is in (one reply each, however many messages
    // they sent) → whether one of their messages was a `request` (so a peer asking for a
    // document nobody has hears `doc-unavailable` whatever it sent after).
    std::map<std::string, bool> answer;
    bool added = false;  // changes reached the graph: every peer of the document hears

    const std::string& sender(uint64_t conn) const {
      auto it = senders.find(conn);
      return it == senders.end() ? *peer_id : it->second;
    }
    void fail(const Inbound& in, const std::string& why) {
      warnings.push_back("conn " + std::to_string(in.conn) + ": " + why + "; closing");
      tell(in, why);
    }
    // fail() without a log line (the caller logs, e.g. at most once a minute).
    void tell(const Inbound& in, const std::string& why) {
      ++sync_errors;
      if (!failed.insert(in.conn).second) return;
      out.push_back({in.conn, encode_message(ErrorMessage{sender(in.conn), in.peer_id, why}), std::nullopt});
      out.push_back({in.conn, {}, why.substr(0, 100)});
    }
    // The work failed midway (an exception, `what`): nothing it made is kept. A
    // compaction leaves the files as they were; a sync job's clients are told.
    void abandon(const std::string& what) {
      if (compact) {
        warnings.push_back("compacting failed: " + what);
        doc.reset();
        return;
      }
      const std::string why = "cannot work on the document: " + what;
      doc.reset();
      out.clear();
      writes.clear();
      disk_bytes = 0;
      answer.clear();
      store_failed = true;
      next = inbox.size();
      failed.clear();  // their earlier error and close went with `out`
      for (const Inbound& in : inbox) {
        if (in.call) {
          in.call->outcome = error(why);
        } else {
          fail(in, why);
        }
      }
    }
  };
  struct CommitJob;

  // Messages at most this large for a loaded document are quick work.
  static constexpr size_t kQuickJobBytes = 64 * 1024;
  // A document with no single snapshot and this many bytes of changes is sent to a peer
  // with nothing as a document chunk saved for it (a fraction of the size), not as every
  // change: a million changes make a message of 100 MiB. Saving takes a while, so all
  // work on such a document is slow.
  static constexpr size_t kSaveForNewPeersBytes = 1 << 20;

  void on_join(uint64_t conn, Connection& c, const JoinMessage& m);
  void on_sync(Connection& c, const std::string& document_id, Bytes data, bool is_request);
  void on_ephemeral(Connection& c, EphemeralMessage& m);
  void fail(uint64_t conn, Connection& c, const std::string& why);

  // Jobs: start_job hands the slot's document and inbox to a worker (work), and
  // finish_job takes the document back on this thread.
  void start_job(const std::string& document_id, Slot& slot);
  // The one way a job runs, for start_job and compact_unloaded: the slot is busy until
  // finish_job (on this thread) has ended the job's turn.
  void run_job(Lane lane, Slot& slot, std::shared_ptr<Job> job);
  void work(Job& job) const;
  void finish_job(Job& job);
  // Loads a document from the store; nullptr if it cannot be read (job.warnings says why).
  std::unique_ptr<Doc> load(const std::string& document_id, Job& job) const;
  // Reads files into the document's graph; false if the document is not to be served.
  bool read_files(Doc& doc, const std::string& document_id,
                  std::vector<std::pair<storage::StorageKey, Bytes>> files, Job& job) const;
  // Expands a document loaded unexpanded; false (and unexpandable) if it cannot be.
  bool expand(Job& job) const;
  // Answers `doc-unavailable` to the message: the document cannot be read here.
  void unavailable(Job& job, uint64_t conn, const std::string& peer_id) const;
  // A fresh sync session with the connection (read-only for an attached read-only one).
  static Session new_session(const Job& job, uint64_t conn);
  // One sync message: false if storing its changes failed (the job stops there).
  bool receive(Job& job, const Inbound& in) const;
  // One DocumentCall: the same.
  bool run_call(Job& job, const Inbound& in) const;
  // Tells the calls among `handled` their outcome, or (storing failed) `stored`.
  static void finish_calls(std::span<const Inbound> handled, const Status& stored);
  // Writes the changes just added (`document_chunk`: the message carried them as one
  // whole document) beside their place, for the job's flush.
  Status persist(Job& job, std::span<const automerge::ChangeGraph::Index> added,
                 const automerge::Chunk* document_chunk) const;
  void generate(Job& job, const std::string& peer_id, Session& session) const;
  std::optional<automerge::SyncMessage> generate_from_graph(Job& job, Session& session) const;
  void finish_commit(CommitJob& commit);
  // The job (and its flush) is over: the document's next job starts, or its slot goes.
  void end_turn(const std::string& document_id, Slot& slot);
  // The messages no longer count against their connections (Connection::inbox_bytes).
  void release(std::span<const Inbound> handled);
  void add_disk_bytes(int64_t bytes);
  // Forgets the document's state (it is read from disk again when next used).
  void drop(const std::string& document_id);
  // Runs `work` on `lane` (options.executor), then `done` on this thread unless the
  // repo has gone meanwhile (alive_).
  void run(Lane lane, std::function<void()> work, std::function<void()> done);
  // A line saying which limit was hit: at most once a minute per limit, with how many
  // times it was hit since the last line.
  void log_limit(const std::string& limit, const std::string& message);

  // Whether compacting is worth it, and safe (nothing queued).
  static bool worth_compacting(const Doc& doc);
  // The snapshot that replaces every file of the document; pure (any thread).
  static Result<Bytes> compacted_snapshot(const automerge::ChangeGraph& graph);
  // Stores the compacted snapshot durably, then removes the files it replaces; the
  // snapshot's size.
  Result<size_t> compact(const std::string& document_id, const Doc& doc) const;
  // Counts `bytes` the job is about to write against the group's quota.
  Status charge(Job& job, size_t bytes) const;
  void compact_unloaded(const std::string& document_id, Slot& slot);

  Connection* find_peer(const std::string& peer_id);
  const std::string& sender(const Connection& c) const { return c.sender.empty() ? options_.peer_id : c.sender; }
  // Measures what the group holds on disk, once (for max_group_bytes).
  void measure_once();
  void send(Connection& c, Bytes frame);
  void send(Connection& c, const Message& m) { send(c, encode_message(m)); }
  void close(Connection& c, const std::string& reason);
  void deliver(Outgoing out);

  std::string group_;
  std::shared_ptr<storage::DocumentStore> store_;
  GroupRepoOptions options_;
  RepoLogger log_;
  GroupStats stats_;

  std::unordered_map<uint64_t, Connection> conns_;
  std::unordered_map<std::string, uint64_t> peers_;  // peer id → connection
  size_t attached_ = 0;  // connections among conns_ that came by attach()
  std::unordered_map<std::string, Slot> slots_;
  size_t jobs_ = 0;  // jobs under way, with their flushes
  struct LimitLog {
    Clock::time_point last{};
    uint64_t unsaid = 0;
  };
  std::map<std::string, LimitLog> limit_logs_;
  // Bytes on disk: measured once (a walk, on the slow lane) and kept up to date.
  bool measuring_ = false;
  // Documents holding changes that wait for dependencies → their bytes, as of the end
  // of their last job (max_orphan_bytes).
  std::map<std::string, size_t> orphan_bytes_;
  // Expires with the repo: a job or commit that finishes after it does nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace gm::repo
