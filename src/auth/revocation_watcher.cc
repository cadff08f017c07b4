#include "auth/revocation_watcher.h"

#include <spdlog/spdlog.h>

#include "auth/session_token.h"

namespace gm::auth {

RevocationWatcher::RevocationWatcher(StateStore& store, std::chrono::milliseconds period, OnChange on_change)
    : store_(store), period_(period), on_change_(std::move(on_change)) {}

RevocationWatcher::~RevocationWatcher() { stop(); }

Status RevocationWatcher::load() { return reload(/*notify=*/false); }

void RevocationWatcher::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void RevocationWatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RevocationWatcher::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  wake_.notify_all();
}

std::shared_ptr<const RevocationState> RevocationWatcher::current() const {
  std::lock_guard lock(mutex_);
  return state_;
}

Status RevocationWatcher::reload(bool notify) {
  GM_ASSIGN_OR_RETURN(StateStore::Fingerprint version, store_.fingerprint());
  if (loaded_ && version == version_) return Status::Ok();
  GM_ASSIGN_OR_RETURN(RevocationState fresh, store_.revocation_state(unix_now()));
  auto next = std::make_shared<const RevocationState>(std::move(fresh));
  {
    std::lock_guard lock(mutex_);
    state_ = next;
    version_ = version;
    loaded_ = true;
  }
  // Every change, not only new revocations: a grant approved and revoked between two
  // looks was never seen standing, yet its sockets must close.
  if (notify && on_change_) on_change_(*next);
  return Status::Ok();
}

void RevocationWatcher::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, period_, [this] { return stopping_ || poked_; });
    poked_ = false;
    if (stopping_) break;
    lock.unlock();
    if (Status s = reload(/*notify=*/true); !s.ok()) spdlog::warn("revocations: {}", s.error().message);
    lock.lock();
  }
}

}  // namespace gm::auth
