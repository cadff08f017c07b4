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
// 1008. Not thread-safe: call from one thread.
#pragma once

#include <filesystem>
#include <memory>

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

class Repo {
 public:
  static Result<std::unique_ptr<Repo>> open(RepoOptions options);

  // Binds `conn` to `group`, at once or once the group is open. A group that is
  // invalid or cannot be opened refuses the connection (an `error` message, then
  // Peer::refuse); the caller still calls disconnect() when the socket goes.
  void connect(uint64_t conn, const std::string& group, std::shared_ptr<Peer> peer);
  void receive(uint64_t conn, ByteView frame);
  void disconnect(uint64_t conn);

  // Runs `then` with the group's GroupRepo once it is open (at once if it is), or with
  // why it cannot be opened. For the JSON API, which reaches a group without a socket.
  void with_group(const std::string& group, std::function<void(Result<GroupRepo*>)> then);

  // Jobs, commits or group openings under way.
  bool busy() const;

  // Unloads idle documents; call every few seconds.
  void tick(Clock::time_point now);
  // Compacts and unloads everything (shutdown; once !busy()).
  void flush();
  // Where every group runs its jobs (GroupRepoOptions::executor).
  void set_executor(Executor executor);
  // Told (group, document id) whenever a document's heads move, in every group, open
  // or opened later (GroupRepoOptions::on_changed). One listener; on this thread.
  using ChangeListener = std::function<void(const std::string& group, const std::string& document_id)>;
  void set_change_listener(ChangeListener listener);

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

  void refuse(uint64_t conn, Peer& peer, const std::string& group, const std::string& why);
  // Opens `group` on the slow lane unless that is under way; opened() runs then.
  void start_opening(const std::string& group);
  // On this thread, once the slow lane has opened (or failed to open) `group`.
  void opened(const std::string& group, Result<std::shared_ptr<storage::DocumentStore>> store);

  RepoOptions options_;
  Executor executor_;
  ChangeListener on_changed_;
  std::unique_ptr<storage::GroupRegistry> registry_;
  std::map<std::string, std::unique_ptr<GroupRepo>> groups_;
  std::unordered_map<uint64_t, GroupRepo*> conns_;
  std::map<std::string, std::vector<uint64_t>> opening_;  // group → connections waiting, in order
  // group → with_group callers waiting for it to open
  std::map<std::string, std::vector<std::function<void(Result<GroupRepo*>)>>> group_waiters_;
  std::unordered_map<uint64_t, Waiting> waiting_;
  // Expires with the repo: an opening that ends after it does nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace gm::repo
