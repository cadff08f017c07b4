#include "repo/repo.h"

namespace gm::repo {

Result<std::unique_ptr<Repo>> Repo::open(RepoOptions options) {
  storage::GroupRegistry::Options registry_options;
  RepoLogger log = options.log;
  registry_options.report = [log](const storage::StorageProblem& p) {
    log.warn("storage: " + p.path.string() + ": " + p.reason +
             (p.moved_to ? ", set aside as " + p.moved_to->string() : std::string()));
  };
  GM_ASSIGN_OR_RETURN(auto registry, storage::GroupRegistry::open(options.data_dir, registry_options));
  return std::unique_ptr<Repo>(new Repo(std::move(options), std::move(registry)));
}

Status Repo::connect(uint64_t conn, const std::string& group, std::shared_ptr<Peer> peer) {
  auto it = groups_.find(group);
  if (it == groups_.end()) {
    GM_ASSIGN_OR_RETURN(std::shared_ptr<storage::DocumentStore> store, registry_->open_group(group));
    GroupRepoOptions o;
    o.peer_id = "storage-server-" + options_.hostname + "-" + group;
    o.idle_unload = options_.idle_unload;
    o.max_group_bytes = options_.max_group_bytes;
    o.executor = executor_;
    it = groups_.emplace(group, std::make_unique<GroupRepo>(group, std::move(store), o, options_.log)).first;
  }
  it->second->connect(conn, std::move(peer));
  conns_[conn] = it->second.get();
  return Status::Ok();
}

void Repo::receive(uint64_t conn, ByteView frame) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  it->second->receive(conn, frame);
}

bool Repo::busy() const {
  for (const auto& [name, group] : groups_) {
    if (group->busy()) return true;
  }
  return false;
}

void Repo::disconnect(uint64_t conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  it->second->disconnect(conn);
  conns_.erase(it);
}

void Repo::tick(Clock::time_point now) {
  for (auto& [name, group] : groups_) group->unload_idle(now);
}

void Repo::set_executor(Executor executor) {
  executor_ = std::move(executor);
  for (auto& [name, group] : groups_) group->set_executor(executor_);
}

void Repo::flush() {
  for (auto& [name, group] : groups_) group->flush();
}

std::vector<std::pair<std::string, GroupStats>> Repo::stats() const {
  std::vector<std::pair<std::string, GroupStats>> out;
  for (const auto& [name, group] : groups_) out.emplace_back(name, group->stats());
  return out;
}

}  // namespace gm::repo
