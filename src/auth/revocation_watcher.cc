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

std::shared_ptr<const RevocationState> RevocationWatcher::current() const {
  std::lock_guard lock(mutex_);
  return state_;
}

Status RevocationWatcher::reload(bool notify) {
  GM_ASSIGN_OR_RETURN(int64_t version, store_.data_version());
  if (version == version_) return Status::Ok();
  GM_ASSIGN_OR_RETURN(RevocationState fresh, store_.revocation_state(unix_now()));
  auto next = std::make_shared<const RevocationState>(std::move(fresh));
  bool more = false;
  {
    std::lock_guard lock(mutex_);
    more = next->revoked_before > state_->revoked_before;
    for (const std::string& id : next->revoked_sessions) more = more || !state_->revoked_sessions.count(id);
    for (const std::string& id : next->fallen_grants) more = more || !state_->fallen_grants.count(id);
    state_ = next;
    version_ = version;
  }
  if (notify && more && on_change_) on_change_(*next);
  return Status::Ok();
}

void RevocationWatcher::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, period_);
    if (stopping_) break;
    lock.unlock();
    if (Status s = reload(/*notify=*/true); !s.ok()) spdlog::warn("revocations: {}", s.error().message);
    lock.lock();
  }
}

}  // namespace gm::auth
