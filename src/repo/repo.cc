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

void Repo::connect(uint64_t conn, const std::string& group, std::shared_ptr<Peer> peer) {
  if (auto it = groups_.find(group); it != groups_.end()) {
    it->second->connect(conn, std::move(peer));
    conns_[conn] = it->second.get();
    return;
  }
  if (Status s = storage::validate_group_name(group); !s) return refuse(conn, *peer, group, s.error().message);
  waiting_[conn] = Waiting{group, std::move(peer)};
  opening_[group].push_back(conn);
  start_opening(group);
}

void Repo::with_group(const std::string& group, std::function<void(Result<GroupRepo*>)> then) {
  if (auto it = groups_.find(group); it != groups_.end()) return then(it->second.get());
  if (Status s = storage::validate_group_name(group); !s) return then(s.error());
  group_waiters_[group].push_back(std::move(then));
  start_opening(group);
}

void Repo::start_opening(const std::string& group) {
  auto waiting = [&group](const auto& by_group) {
    auto it = by_group.find(group);
    return it == by_group.end() ? 0 : it->second.size();
  };
  if (waiting(opening_) + waiting(group_waiters_) > 1) return;  // already being opened
  auto store = std::make_shared<Result<std::shared_ptr<storage::DocumentStore>>>(error("not opened"));
  auto work = [registry = registry_.get(), group, store] { *store = registry->open_group(group); };
  auto done = [this, alive = std::weak_ptr<bool>(alive_), group, store] {
    if (alive.lock()) opened(group, std::move(*store));
  };
  if (!executor_) {
    work();
    return done();
  }
  executor_(Lane::kSlow, std::move(work), std::move(done));
}

void Repo::opened(const std::string& group, Result<std::shared_ptr<storage::DocumentStore>> store) {
  std::vector<uint64_t> conns = std::move(opening_[group]);
  opening_.erase(group);
  std::vector<std::function<void(Result<GroupRepo*>)>> waiters = std::move(group_waiters_[group]);
  group_waiters_.erase(group);
  GroupRepo* g = nullptr;
  if (store) {
    GroupRepoOptions o;
    o.peer_id = "storage-server-" + options_.hostname + "-" + group;
    o.idle_unload = options_.idle_unload;
    o.max_group_bytes = options_.max_group_bytes;
    o.executor = executor_;
    o.on_changed = [this, group](const std::string& document_id) {
      if (on_changed_) on_changed_(group, document_id);
    };
    g = groups_.emplace(group, std::make_unique<GroupRepo>(group, std::move(*store), o, options_.log))
            .first->second.get();
  }
  for (uint64_t conn : conns) {
    auto it = waiting_.find(conn);
    // Gone meanwhile (or its id now waits for another group).
    if (it == waiting_.end() || it->second.group != group) continue;
    Waiting w = std::move(it->second);
    waiting_.erase(it);
    if (!g) {
      refuse(conn, *w.peer, group, store.error().message);
      continue;
    }
    g->connect(conn, w.peer);
    conns_[conn] = g;
    for (const Bytes& frame : w.frames) g->receive(conn, frame);
    if (!w.frames.empty()) w.peer->pause(false);
  }
  for (auto& then : waiters) {
    if (g) {
      then(g);
    } else {
      then(context("group " + group + " cannot be opened", store.error()));
    }
  }
}

void Repo::refuse(uint64_t conn, Peer& peer, const std::string& group, const std::string& why) {
  options_.log.warn("conn " + std::to_string(conn) + ": group " + group + " refused: " + why);
  // Before any join the peer id is not known: the message has no target.
  const std::string message = "group refused: " + why;
  peer.send(encode_message(ErrorMessage{"groundmist-sync", "", message}));
  peer.refuse(message.substr(0, 100));
}

void Repo::receive(uint64_t conn, ByteView frame) {
  if (auto it = conns_.find(conn); it != conns_.end()) return it->second->receive(conn, frame);
  auto w = waiting_.find(conn);
  if (w == waiting_.end()) return;
  Waiting& waiting = w->second;
  if (waiting.frames.size() >= kMaxWaitingFrames || waiting.bytes + frame.size() > kMaxWaitingBytes) {
    std::shared_ptr<Peer> peer = waiting.peer;
    const std::string group = waiting.group;
    waiting_.erase(w);
    return refuse(conn, *peer, group, "too many messages before the group was open");
  }
  if (waiting.frames.empty()) waiting.peer->pause(true);
  waiting.frames.emplace_back(frame.begin(), frame.end());
  waiting.bytes += frame.size();
}

bool Repo::busy() const {
  if (!opening_.empty() || !group_waiters_.empty()) return true;
  for (const auto& [name, group] : groups_) {
    if (group->busy()) return true;
  }
  return false;
}

void Repo::disconnect(uint64_t conn) {
  waiting_.erase(conn);
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

void Repo::set_change_listener(ChangeListener listener) { on_changed_ = std::move(listener); }

void Repo::flush() {
  for (auto& [name, group] : groups_) group->flush();
}

std::vector<std::pair<std::string, GroupStats>> Repo::stats() const {
  std::vector<std::pair<std::string, GroupStats>> out;
  for (const auto& [name, group] : groups_) out.emplace_back(name, group->stats());
  return out;
}

}  // namespace gm::repo
