#include "repo/repo.h"

namespace gm::repo {

namespace {

// A socket that more than one party may pause (the repo while a group opens or a
// document is looked up, each group whose inbox fills up): it is read again once every
// one of them has resumed it. Each party pauses and resumes in pairs.
class SharedPause : public Peer {
 public:
  explicit SharedPause(std::shared_ptr<Peer> peer) : peer_(std::move(peer)) {}
  bool send(Bytes frame) override { return peer_->send(std::move(frame)); }
  bool send_shared(Frame frame) override { return peer_->send_shared(std::move(frame)); }
  void close(std::string reason) override { peer_->close(std::move(reason)); }
  void refuse(std::string reason) override { peer_->refuse(std::move(reason)); }
  void pause(bool paused) override {
    if (paused ? pauses_++ == 0 : pauses_ > 0 && --pauses_ == 0) peer_->pause(paused);
  }
  bool has_room(size_t bytes) const override { return peer_->has_room(bytes); }

 private:
  std::shared_ptr<Peer> peer_;
  int pauses_ = 0;
};

// The document a message is about, if it is one that is routed by document.
const std::string* routed_document(const Message& m) {
  if (auto* sync = std::get_if<SyncMessage>(&m)) return &sync->document_id;
  if (auto* request = std::get_if<RequestMessage>(&m)) return &request->document_id;
  if (auto* eph = std::get_if<EphemeralMessage>(&m)) return &eph->document_id;
  return nullptr;
}

}  // namespace

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

void Repo::connect(uint64_t conn, const std::string& group, std::shared_ptr<Peer> peer, ReachOf reach) {
  peer = std::make_shared<SharedPause>(std::move(peer));
  routes_.erase(conn);
  if (reach) routes_[conn] = std::make_shared<Route>(Route{std::move(reach), peer, group});
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
      for (const ChangeListener& listener : on_changed_) listener(group, document_id);
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
    for (const Bytes& frame : w.frames) deliver(conn, *g, frame);
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
  if (auto it = conns_.find(conn); it != conns_.end()) return deliver(conn, *it->second, frame);
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

void Repo::deliver(uint64_t conn, GroupRepo& own, ByteView frame) {
  auto it = routes_.find(conn);
  if (it == routes_.end()) return own.receive(conn, frame);
  Route& r = *it->second;
  if (!r.locating) {
    route(conn, r, own, frame);
    return;
  }
  // Paused when the lookup began: only what was read before that can come.
  if (r.held.size() >= kMaxHeldFrames) return r.peer->close("too many messages while a document was looked up");
  r.held.emplace_back(frame.begin(), frame.end());
}

void Repo::route(uint64_t conn, Route& r, GroupRepo& own, ByteView frame) {
  Result<Message> m = decode_message(frame);
  const std::string* document_id = m ? routed_document(*m) : nullptr;
  // Its own group answers the rest (a join, a malformed message), and whatever comes
  // before its join (ignored there).
  const std::string peer_id = document_id ? own.peer_of(conn) : std::string();
  if (peer_id.empty()) return own.receive(conn, frame);
  GroupRepo* group = &own;
  if (auto found = r.documents.find(*document_id); found != r.documents.end()) {
    group = found->second;
  } else if (r.documents.size() < kMaxRoutedDocuments && !std::holds_alternative<EphemeralMessage>(*m)) {
    // Looked up first; this frame waits, ahead of any held after it.
    r.held.emplace_front(frame.begin(), frame.end());
    return locate(conn, routes_.at(conn), *document_id);
  }
  if (group != &own && !r.attached.count(group)) {
    if (!group->attach(conn, r.peer, peer_id, own.peer_id(), r.reach(group->group()) != Reach::kWrite)) {
      // Its peer id is a live socket of that group's own, which it must not displace.
      r.peer->send(encode_message(DocUnavailableMessage{own.peer_id(), peer_id, *document_id}));
      return;
    }
    r.attached.insert(group);
  }
  group->receive(conn, frame);
}

void Repo::locate(uint64_t conn, const std::shared_ptr<Route>& route, const std::string& document_id) {
  route->locating = true;
  if (!std::exchange(route->paused, true)) route->peer->pause(true);
  std::vector<std::string> candidates{route->group};
  for (const std::string& g : registry_->groups()) {
    if (g != route->group && route->reach(g) != Reach::kNone) candidates.push_back(g);
  }
  struct Lookup {
    std::vector<GroupRepo*> groups;  // null: could not be opened
    size_t opening = 0;
    std::optional<size_t> found;
  };
  auto lookup = std::make_shared<Lookup>(Lookup{std::vector<GroupRepo*>(candidates.size()), candidates.size()});
  std::weak_ptr<Route> weak = route;
  auto done = [this, alive = std::weak_ptr<bool>(alive_), conn, weak, document_id, lookup] {
    auto r = weak.lock();
    if (!alive.lock() || !r) return;  // the repo, or the connection, went meanwhile
    located(conn, *r, document_id, lookup->found ? lookup->groups[*lookup->found] : nullptr);
  };
  auto look = [this, lookup, document_id, done] {
    // In order: a group that holds it in memory counts only once every group before it
    // was found not to have it on disk (the own group first).
    std::vector<bool> held;
    for (GroupRepo* g : lookup->groups) held.push_back(g && g->holds(document_id));
    if (held[0]) {
      lookup->found = 0;
      return done();
    }
    std::vector<std::shared_ptr<storage::DocumentStore>> stores;
    for (GroupRepo* g : lookup->groups) stores.push_back(g ? g->store() : nullptr);
    auto work = [stores = std::move(stores), held = std::move(held), lookup, document_id] {
      for (size_t i = 0; i < stores.size(); ++i) {
        // A folder that cannot be listed holds nothing we could serve.
        Result<bool> has = held[i] ? Result<bool>(true)
                           : stores[i] ? stores[i]->has_document(document_id)
                                       : Result<bool>(false);
        if (has && *has) {
          lookup->found = i;
          return;
        }
      }
    };
    if (!executor_) {
      work();
      return done();
    }
    executor_(Lane::kQuick, std::move(work), done);
  };
  for (size_t i = 0; i < candidates.size(); ++i) {
    with_group(candidates[i], [lookup, i, look](Result<GroupRepo*> g) {
      if (g) lookup->groups[i] = *g;
      if (--lookup->opening == 0) look();
    });
  }
}

void Repo::located(uint64_t conn, Route& r, const std::string& document_id, GroupRepo* group) {
  r.locating = false;
  auto own = conns_.find(conn);
  if (own == conns_.end()) return;
  r.documents[document_id] = group ? group : own->second;
  while (!r.locating && !r.held.empty()) {
    Bytes frame = std::move(r.held.front());
    r.held.pop_front();
    route(conn, r, *own->second, frame);
  }
  if (!r.locating && std::exchange(r.paused, false)) r.peer->pause(false);
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
  if (auto r = routes_.find(conn); r != routes_.end()) {
    for (GroupRepo* g : r->second->attached) g->disconnect(conn);
    routes_.erase(r);
  }
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

void Repo::add_change_listener(ChangeListener listener) { on_changed_.push_back(std::move(listener)); }

void Repo::flush() {
  for (auto& [name, group] : groups_) group->flush();
}

std::vector<std::pair<std::string, GroupStats>> Repo::stats() const {
  std::vector<std::pair<std::string, GroupStats>> out;
  for (const auto& [name, group] : groups_) out.emplace_back(name, group->stats());
  return out;
}

}  // namespace gm::repo
