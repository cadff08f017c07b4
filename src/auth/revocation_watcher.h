// Keeps the serving process's view of revoked sessions in step with the state database,
// which the owner's commands (`sessions revoke`, `devices revoke`) change from another
// process. `on_change` runs after every reload that found the database changed.
//
// Usage:
//   RevocationWatcher watcher(store, std::chrono::milliseconds(500),
//                             [&](const RevocationState& now) { server.close_peers(...); });
//   GM_TRY(watcher.load());            // before serving: tokens are checked from the start
//   watcher.start();                   // a thread polls StateStore::fingerprint
//   if (watcher.current()->revoked(id, iat)) refuse();   // from any thread, cheap
//
// Polling the store's fingerprint costs one tiny query per period and sees every commit
// of any other connection and every row this process changed (the console revokes
// through the server's own connection); the state is reloaded only when it moved. `on_change` runs on the
// watcher's thread after each such reload.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "auth/state_store.h"

namespace gm::auth {

class RevocationWatcher {
 public:
  using OnChange = std::function<void(const RevocationState& state)>;
  RevocationWatcher(StateStore& store, std::chrono::milliseconds period, OnChange on_change);
  ~RevocationWatcher();
  RevocationWatcher(const RevocationWatcher&) = delete;
  RevocationWatcher& operator=(const RevocationWatcher&) = delete;

  Status load();
  void start();
  void stop();
  std::shared_ptr<const RevocationState> current() const;
  // Looks at the database now rather than at the end of the period (a token named a
  // grant the state does not know yet: approved a moment ago, most likely). Any thread.
  void poke();

 private:
  void run();
  Status reload(bool notify);

  StateStore& store_;
  const std::chrono::milliseconds period_;
  OnChange on_change_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool poked_ = false;
  std::shared_ptr<const RevocationState> state_ = std::make_shared<RevocationState>();
  StateStore::Fingerprint version_;
  bool loaded_ = false;
  std::thread thread_;
};

}  // namespace gm::auth
