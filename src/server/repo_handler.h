// The server side of the seam in connection.h: hands every authenticated socket to
// the repo layer (repo/repo.h), each bound to the group its token names, keeps the
// per-group metrics the repo layer is responsible for, runs its idle-unload timer on
// the io thread, and its jobs on worker threads: one for quick work, two for slow work
// (loads, large uploads, compactions), one for disk flushes.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>
#include <unordered_map>

#include "repo/repo.h"
#include "server/connection.h"
#include "server/metrics.h"

namespace gm::server {

class RepoHandler : public ConnectionHandler {
 public:
  RepoHandler(repo::Repo& repo, MetricsRegistry& metrics) : repo_(repo), metrics_(metrics) {
    metrics_.set_refresh([this] { refresh_metrics(); });
  }
  // flush() (the server calls it before its io_context goes) has stopped the workers
  // already; this only covers a handler that never served.
  ~RepoHandler() override {
    metrics_.set_refresh(nullptr);
    stop_workers();
  }

  // Starts the timer that unloads idle documents (every `period`), and from then on
  // runs the repo's jobs on the workers, their ends posted to `executor`. Without it
  // every job runs in the caller.
  void start_timer(boost::asio::any_io_executor executor, std::chrono::milliseconds period);

  void on_open(std::shared_ptr<PeerConnection> peer) override;
  void on_message(PeerConnection& peer, ByteView frame) override;
  void on_close(PeerConnection& peer) override;
  void flush() override;

 private:
  // Copies the repo's per-group counts into the metrics (when /metrics is asked for).
  void refresh_metrics();
  void arm_timer();
  void run_finished();
  void stop_workers();

  repo::Repo& repo_;
  MetricsRegistry& metrics_;
  std::unordered_map<uint64_t, std::string> groups_;  // connection → group
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::optional<boost::asio::any_io_executor> executor_;
  std::chrono::milliseconds period_{5000};
  bool stopped_ = false;
  // What each job does next (on the io thread) waits in finished_; flush() waits on
  // finished_cv_ for the jobs under way. The pools come last, so they are stopped
  // before the rest goes.
  std::mutex finished_mutex_;
  std::condition_variable finished_cv_;
  std::vector<std::function<void()>> finished_;
  bool trim_ = false;  // a slow job ended: trim the heap once its end has run
  boost::asio::thread_pool quick_{1};
  boost::asio::thread_pool slow_{2};
  boost::asio::thread_pool disk_{1};
};

}  // namespace gm::server
