// Every lexicon group's GroupRepo, and which connection belongs to which group.
//
// A connection is bound to one group when it opens (the group its session token
// names) and only ever reaches that group's GroupRepo, so a client of one group
// cannot see, request or overwrite another group's documents. Groups are opened on
// first use through the storage GroupRegistry, which validates the name and refuses
// overlapping folders. Not thread-safe: call from one thread.
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

  // Binds `conn` to `group`. Fails (and binds nothing) if the group is invalid or
  // refused; the caller then closes the connection.
  Status connect(uint64_t conn, const std::string& group, std::shared_ptr<Peer> peer);
  void receive(uint64_t conn, ByteView frame);
  void disconnect(uint64_t conn);

  // Jobs or commits under way in some group.
  bool busy() const;

  // Unloads idle documents; call every few seconds.
  void tick(Clock::time_point now);
  // Compacts and unloads everything (shutdown; once !busy()).
  void flush();
  // Where every group runs its jobs (GroupRepoOptions::executor).
  void set_executor(Executor executor);

  // Per group, for metrics and /healthz.
  std::vector<std::pair<std::string, GroupStats>> stats() const;
  std::vector<std::string> groups() const { return registry_->groups(); }

 private:
  Repo(RepoOptions options, std::unique_ptr<storage::GroupRegistry> registry)
      : options_(std::move(options)), registry_(std::move(registry)) {}

  RepoOptions options_;
  Executor executor_;
  std::unique_ptr<storage::GroupRegistry> registry_;
  std::map<std::string, std::unique_ptr<GroupRepo>> groups_;
  std::unordered_map<uint64_t, GroupRepo*> conns_;
};

}  // namespace gm::repo
