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
//   ephemeral        relayed to the document's other clients, each
//                    (senderId, sessionId, count) once.
//   others           ignored (remote-*, leave, doc-unavailable, unknown types).
// A malformed message or sync payload gets an `error` message and the socket is
// closed; nobody else notices.
//
// Documents load on first use (snapshot + incremental files) and are unloaded once
// no client has used them for `idle_unload`; unloading compacts a document whose
// incremental files outweigh its snapshot into one snapshot, written durably before
// the files it replaces are removed. Compaction loads and saves the whole document
// (a second for a long history), so it runs in the background (options.background)
// while this thread goes on serving; its snapshot then replaces exactly the files it
// was made from, also when the document was loaded again meanwhile (from those files
// and maybe newer ones). Not thread-safe: call from one thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "automerge/change_graph.h"
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
  // Closes the connection after what is queued; the owner calls disconnect() later.
  virtual void close(std::string reason) = 0;
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
};

// Runs `work` away from the repo's thread and then `done` on it (the server: a worker
// thread, then a post back to the io thread). Empty: both at once, in the caller.
using Background = std::function<void(std::function<void()> work, std::function<void()> done)>;

struct GroupRepoOptions {
  std::string peer_id;  // our senderId: "storage-server-<hostname>-<group>"
  std::chrono::milliseconds idle_unload{std::chrono::seconds(10)};
  // Most ephemeral (senderId, sessionId) pairs remembered for de-duplication.
  size_t ephemeral_memory = 4096;
  Background background;
};

class GroupRepo {
 public:
  GroupRepo(std::string group, std::shared_ptr<storage::DocumentStore> store, GroupRepoOptions options,
            RepoLogger log);
  ~GroupRepo();

  const std::string& group() const { return group_; }
  const GroupStats& stats() const { return stats_; }

  void connect(uint64_t conn, std::shared_ptr<Peer> peer);
  void receive(uint64_t conn, ByteView frame);
  void disconnect(uint64_t conn);

  // Group commit: changes received are written without waiting for the disk, and
  // every message sent after them waits (in order) until commit() has made them
  // durable. The owner calls commit() once it has handled the messages at hand, so
  // one disk flush covers them all. On a storage failure the documents concerned are
  // dropped from memory and the clients waiting on them get an error and are closed.
  void commit();
  bool has_uncommitted() const { return !held_.empty() || store_->has_pending(); }
  // Unloads documents idle since before now - idle_unload (and compacts them, in the
  // background).
  void unload_idle(Clock::time_point now);
  // Compacts and unloads every document (shutdown).
  void flush();

  bool has_connections() const { return !conns_.empty(); }
  void set_background(Background background) { options_.background = std::move(background); }

 private:
  struct Connection {
    uint64_t id = 0;
    std::shared_ptr<Peer> peer;
    std::string peer_id;  // empty until join
  };
  // A message (or, with `close`, a close) waiting for commit().
  struct Held {
    uint64_t conn = 0;
    Bytes frame;
    std::optional<std::string> close;
  };
  struct Doc {
    automerge::ChangeGraph graph;
    std::map<std::string, automerge::SyncState> sessions;  // by peer id
    std::set<storage::StorageKey> files;  // snapshot and incremental keys on disk
    size_t snapshot_bytes = 0;
    size_t incremental_bytes = 0;
    // The document chunk of the one snapshot file, kept while that file is all the
    // document has (loaded from it, nothing since): a peer with nothing gets it as a
    // V2 whole-document message instead of every change.
    std::optional<Bytes> snapshot;
    Clock::time_point last_used;
  };

  void on_join(uint64_t conn, Connection& c, const JoinMessage& m);
  void on_sync(Connection& c, const std::string& document_id, ByteView data, bool is_request);
  void on_ephemeral(Connection& c, const EphemeralMessage& m);
  void fail(uint64_t conn, Connection& c, const std::string& why);

  // The document, loaded from the store on first use; nullptr if loading failed.
  Doc* load(const std::string& document_id);
  // Keeps doc.snapshot only if it is the whole document (see Doc::snapshot).
  void keep_snapshot(const std::string& document_id, Doc& doc);
  // Stores the changes just added (`document_chunk`: the message carried them as one
  // whole document).
  Status persist(const std::string& document_id, Doc& doc, std::span<const automerge::ChangeGraph::Index> added,
                 const automerge::Chunk* document_chunk = nullptr);
  // Whether compacting is worth it, and safe (nothing queued).
  static bool worth_compacting(const Doc& doc);
  // The snapshot that replaces every file of the document; pure (any thread).
  static Result<Bytes> compacted_snapshot(const automerge::ChangeGraph& graph);
  // Stores `snapshot` durably, then removes the `files` it replaces; its key.
  Result<storage::StorageKey> replace_files(const std::string& document_id, const std::set<storage::StorageKey>& files,
                                            const std::vector<automerge::ChangeHash>& heads, ByteView snapshot);
  // Compacts a document being unloaded, in the background.
  void compact_unloaded(const std::string& document_id, std::unique_ptr<Doc> doc);
  void send_sync(const std::string& peer_id, const std::string& document_id, Doc& doc);
  Connection* find_peer(const std::string& peer_id);
  void send(Connection& c, const Message& m);
  void close(Connection& c, const std::string& reason);

  std::string group_;
  std::shared_ptr<storage::DocumentStore> store_;
  GroupRepoOptions options_;
  RepoLogger log_;
  GroupStats stats_;

  std::unordered_map<uint64_t, Connection> conns_;
  std::unordered_map<std::string, uint64_t> peers_;  // peer id → connection
  std::unordered_map<std::string, std::unique_ptr<Doc>> docs_;
  std::vector<Held> held_;
  std::set<std::string> uncommitted_docs_;  // documents with changes not yet durable
  // Ephemeral de-duplication: "senderId\0sessionId" → highest count seen, with
  // insertion order for forgetting the oldest.
  std::unordered_map<std::string, uint64_t> ephemeral_seen_;
  std::vector<std::string> ephemeral_order_;
  size_t ephemeral_next_ = 0;
  std::set<std::string> compacting_;  // documents with a compaction in the background
  // Expires with the repo: a compaction that finishes after it does nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace gm::repo
