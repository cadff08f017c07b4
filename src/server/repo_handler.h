// The server side of the seam in connection.h: hands every authenticated socket to
// the repo layer (repo/repo.h), each bound to the group its token names, keeps the
// per-group metrics the repo layer is responsible for, runs its idle-unload timer on
// the io thread, and its compactions on a worker thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
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
  RepoHandler(repo::Repo& repo, MetricsRegistry& metrics) : repo_(repo), metrics_(metrics) {}
  // flush() (the server calls it before its io_context goes) has stopped the worker
  // already; this only covers a handler that never served.
  ~RepoHandler() override {
    worker_.stop();
    worker_.join();
  }

  // Starts the timer that unloads idle documents (every `period`), and from then on
  // commits received changes in groups (Repo::commit) from a handler posted to
  // `executor`, which runs once the messages already at hand are handled. Without it
  // every message is committed on its own, and compactions run in the caller.
  void start_timer(boost::asio::any_io_executor executor, std::chrono::milliseconds period);

  void on_open(std::shared_ptr<PeerConnection> peer) override;
  void on_message(PeerConnection& peer, ByteView frame) override;
  void on_close(PeerConnection& peer) override;
  void flush() override;

 private:
  void update_metrics(const std::string& group);
  void arm_timer();
  void schedule_commit();
  void run_finished();

  repo::Repo& repo_;
  MetricsRegistry& metrics_;
  std::unordered_map<uint64_t, std::string> groups_;  // connection → group
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::optional<boost::asio::any_io_executor> executor_;
  bool commit_posted_ = false;
  std::chrono::milliseconds period_{5000};
  bool stopped_ = false;
  // Compactions run one at a time on worker_ (each holds a whole document in memory);
  // what each does next waits in finished_ for the io thread. worker_ comes last, so
  // it is stopped before the rest goes.
  std::mutex finished_mutex_;
  std::vector<std::function<void()>> finished_;
  boost::asio::thread_pool worker_{1};
};

}  // namespace gm::server
