// Every lexicon group's GroupRepo, and which connection belongs to which group.
//
// A connection is bound to one group when it opens (the group its session token
// names) and only ever reaches that group's GroupRepo, so a client of one group
// cannot see, request or overwrite another group's documents. Groups are opened on
// first use through the storage GroupRegistry, which validates the name and refuses
// overlapping folders.
//
// Opening a group touches the disk (finding overlaps, creating folders, a syncfs that
// waits for every dirty page of the file system), so it runs on the slow lane, never on
// the caller's (io) thread: the connections that arrive meanwhile wait, their frames
// kept (the first one pauses the socket: a client sends its join and then waits for
// our `peer` reply) and replayed in order once the group is open. A group that cannot
// be opened refuses its waiting connections with an `error` message and close code
// 1008.
//
// A connection whose token also reaches other groups (its grants' scopes: `reach`)
// still joins its own group, which answers its `join` and gives it its one peer id.
// Each document it names is found by id, once: in its own group first, then in the
// other groups it may read, in name order; one that is nowhere is new, and goes to its
// own group. The lookup reads folder listings, so it runs on a worker while the
// connection's frames wait in order (the socket paused). Its messages for a document
// in another group are handed to that group, to which the connection is attached
// (GroupRepo::attach: read-only unless a write scope covers the group).
// Not thread-safe: call from one thread.
#pragma once

#include <deque>
#include <filesystem>
#include <memory>
#include <set>

#include "repo/group_repo.h"
#include "storage/group_registry.h"

namespace gm::repo {

// What one group's files may take on disk by default: far above any one app's data so
// far, and a stop to a runaway client filling the owner's disk.
inline constexpr uint64_t kDefaultMaxGroupBytes = uint64_t{8} << 30;

struct RepoOptions {
  std::filesystem::path data_dir;
  std::string hostname;  // part of our peer id: "storage-server-<hostname>-<group>"
  std::chrono::milliseconds idle_unload{std::chrono::seconds(10)};
  uint64_t max_group_bytes = kDefaultMaxGroupBytes;  // GroupRepoOptions::max_group_bytes
  RepoLogger log;
};

// What a connection may do in a group other than its own.
enum class Reach { kNone, kRead, kWrite };
using ReachOf = std::function<Reach(const std::string& group)>;

class Repo {
 public:
  static Result<std::unique_ptr<Repo>> open(RepoOptions options);

  // Binds `conn` to `group`, at once or once the group is open. A group that is
  // invalid or cannot be opened refuses the connection (an `error` message, then
  // Peer::refuse); the caller still calls disconnect() when the socket goes. `reach`
  // (may be empty) says which other groups it reaches.
  void connect(uint64_t conn, const std::string& group, std::shared_ptr<Peer> peer, ReachOf reach = {});
  void receive(uint64_t conn, ByteView frame);
  void disconnect(uint64_t conn);

  // Runs `then` with the group's GroupRepo once it is open (at once if it is), or with
  // why it cannot be opened. For the JSON API, which reaches a group without a socket.
  void with_group(const std::string& group, std::function<void(Result<GroupRepo*>)> then);
  // The group's GroupRepo if it is open, else null (nothing is opened).
  GroupRepo* open_group(const std::string& group) {
    auto it = groups_.find(group);
    return it == groups_.end() ? nullptr : it->second.get();
  }

  // Jobs, commits or group openings under way.
  bool busy() const;

  // Unloads idle documents; call every few seconds.
  void tick(Clock::time_point now);
  // Compacts and unloads everything (shutdown; once !busy()).
  void flush();
  // Where every group runs its jobs (GroupRepoOptions::executor).
  void set_executor(Executor executor);
  // Told (group, document id) whenever a document's heads move, in every group, open
  // or opened later (GroupRepoOptions::on_changed). Listeners are told in the order
  // added; on this thread.
  using ChangeListener = std::function<void(const std::string& group, const std::string& document_id)>;
  void add_change_listener(ChangeListener listener);

  // Per group, for metrics and /healthz.
  std::vector<std::pair<std::string, GroupStats>> stats() const;
  std::vector<std::string> groups() const { return registry_->groups(); }

 private:
  Repo(RepoOptions options, std::unique_ptr<storage::GroupRegistry> registry)
      : options_(std::move(options)), registry_(std::move(registry)) {}

  // A connection whose group is being opened.
  struct Waiting {
    std::string group;
    std::shared_ptr<Peer> peer;
    std::vector<Bytes> frames;  // received meanwhile, replayed in order
    size_t bytes = 0;
  };
  // What a connection may send before its group is open: its join, and little more.
  static constexpr size_t kMaxWaitingFrames = 16;
  static constexpr size_t kMaxWaitingBytes = 1 << 20;

  // A connection that reaches other groups than its own (see above).
  struct Route {
    ReachOf reach;
    std::shared_ptr<Peer> peer;
    std::string group;  // its own
    std::unordered_map<std::string, GroupRepo*> documents;  // where each was found
    std::set<GroupRepo*> attached;
    std::deque<Bytes> held;  // frames waiting for a lookup, in order
    bool locating = false;
    bool paused = false;  // by us, for the lookup
  };
  // Frames a connection may have sent after the one that started a lookup paused it.
  static constexpr size_t kMaxHeldFrames = 16;
  // Documents whose group a connection remembers (GroupRepoOptions'
  // max_documents_per_connection): past it, a new one goes to its own group, which
  // answers doc-unavailable past that same limit.
  static constexpr size_t kMaxRoutedDocuments = 16384;

  void refuse(uint64_t conn, Peer& peer, const std::string& group, const std::string& why);
  // A frame of a connection whose group is open.
  void deliver(uint64_t conn, GroupRepo& own, ByteView frame);
  // Routes one frame of a routed connection to the group of its document; one naming
  // a document not yet found is held (first in line) while locate() finds it.
  void route(uint64_t conn, Route& route, GroupRepo& own, ByteView frame);
  // Finds the group holding `document_id` among those the connection reaches.
  void locate(uint64_t conn, const std::shared_ptr<Route>& route, const std::string& document_id);
  // The lookup is over: routes the frames held meanwhile.
  void located(uint64_t conn, Route& route, const std::string& document_id, GroupRepo* group);
  // Opens `group` on the slow lane unless that is under way; opened() runs then.
  void start_opening(const std::string& group);
  // On this thread, once the slow lane has opened (or failed to open) `group`.
  void opened(const std::string& group, Result<std::shared_ptr<storage::DocumentStore>> store);

  RepoOptions options_;
  Executor executor_;
  std::vector<ChangeListener> on_changed_;
  std::unique_ptr<storage::GroupRegistry> registry_;
  std::map<std::string, std::unique_ptr<GroupRepo>> groups_;
  std::unordered_map<uint64_t, GroupRepo*> conns_;
  std::map<std::string, std::vector<uint64_t>> opening_;  // group → connections waiting, in order
  // group → with_group callers waiting for it to open
  std::map<std::string, std::vector<std::function<void(Result<GroupRepo*>)>>> group_waiters_;
  std::unordered_map<uint64_t, Waiting> waiting_;
  std::unordered_map<uint64_t, std::shared_ptr<Route>> routes_;
  // Expires with the repo: an opening that ends after it does nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace gm::repo
