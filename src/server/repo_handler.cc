#include "server/repo_handler.h"

#include <malloc.h>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "auth/scopes.h"

namespace gm::server {

namespace {

// The repo layer's view of a socket.
class PeerAdapter : public repo::Peer {
 public:
  explicit PeerAdapter(std::shared_ptr<PeerConnection> conn) : conn_(std::move(conn)) {}
  bool send(Bytes frame) override { return conn_->send(std::move(frame)); }
  bool send_shared(Frame frame) override { return conn_->send(std::move(frame)); }
  void close(std::string reason) override { conn_->close(std::move(reason)); }
  void refuse(std::string reason) override { conn_->refuse(std::move(reason)); }
  void pause(bool paused) override { conn_->pause(paused); }
  bool has_room(size_t bytes) const override { return conn_->has_room(bytes); }

 private:
  std::shared_ptr<PeerConnection> conn_;
};

// What the socket's scopes let it reach beyond its own group; empty without scopes
// (the socket then reaches its own group only, with no lookups).
repo::ReachOf reach_of(const PeerIdentity& identity) {
  auth::Access access{identity.group, {}};
  for (const std::string& text : identity.scopes) {
    if (auto scope = auth::parse_scope(text)) access.scopes.push_back(std::move(*scope));
  }
  if (access.scopes.empty()) return {};
  return [access = std::move(access)](const std::string& group) {
    return access.can_write(group) ? repo::Reach::kWrite : access.can_read(group) ? repo::Reach::kRead : repo::Reach::kNone;
  };
}

}  // namespace

void RepoHandler::start_timer(boost::asio::any_io_executor executor, std::chrono::milliseconds period) {
  executor_ = executor;
  timer_ = std::make_unique<boost::asio::steady_timer>(executor);
  period_ = period;
  arm_timer();
  repo_.set_executor([this](repo::Lane lane, std::function<void()> work, std::function<void()> done) {
    boost::asio::thread_pool& pool = lane == repo::Lane::kQuick ? quick_ : lane == repo::Lane::kSlow ? slow_ : disk_;
    boost::asio::post(pool, [this, lane, work = std::move(work), done = std::move(done)]() mutable {
      work();
      work = nullptr;  // what it held goes here, on the worker
      {
        std::lock_guard lock(finished_mutex_);
        finished_.push_back(std::move(done));
        trim_ = trim_ || lane == repo::Lane::kSlow;
      }
      finished_cv_.notify_one();
      boost::asio::post(*executor_, [this] { run_finished(); });
    });
  });
}

void RepoHandler::run_finished() {
  std::vector<std::function<void()>> finished;
  bool trim = false;
  {
    std::lock_guard lock(finished_mutex_);
    finished.swap(finished_);
    trim = std::exchange(trim_, false);
  }
  for (auto& done : finished) done();
  finished.clear();
  // A load or compaction freed a whole document, partly on a worker thread: give the
  // memory back (glibc keeps it otherwise).
  if (trim) malloc_trim(0);
}

void RepoHandler::stop_workers() {
  for (boost::asio::thread_pool* pool : {&quick_, &slow_, &disk_}) {
    pool->stop();
    pool->join();
  }
}

void RepoHandler::arm_timer() {
  if (!timer_ || stopped_) return;
  timer_->expires_after(period_);
  timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    int64_t before = 0, after = 0;
    for (const auto& [group, stats] : repo_.stats()) before += stats.documents_loaded;
    repo_.tick(repo::Clock::now());
    for (const auto& [group, stats] : repo_.stats()) after += stats.documents_loaded;
    // Give the memory of unloaded documents back to the system, so an idle server is
    // as small as a fresh one (glibc keeps freed memory otherwise).
    if (after < before) malloc_trim(0);
    arm_timer();
  });
}

void RepoHandler::on_open(std::shared_ptr<PeerConnection> peer) {
  groups_[peer->id()] = peer->group();
  repo_.connect(peer->id(), peer->group(), std::make_shared<PeerAdapter>(peer), reach_of(peer->identity()));
}

void RepoHandler::on_message(PeerConnection& peer, ByteView frame) {
  auto it = groups_.find(peer.id());
  if (it == groups_.end()) return;
  repo_.receive(peer.id(), frame);
}

void RepoHandler::on_close(PeerConnection& peer) {
  auto it = groups_.find(peer.id());
  if (it == groups_.end()) return;
  repo_.disconnect(peer.id());
  groups_.erase(it);
}

void RepoHandler::flush() {
  stopped_ = true;
  // Destroyed here, while its io_context still exists (this handler outlives the
  // server); a wait under way ends with operation_aborted.
  timer_.reset();
  // The jobs under way finish, and what they stored is committed; the io_context no
  // longer runs what they post, so their ends run here.
  while (repo_.busy()) {
    {
      std::unique_lock lock(finished_mutex_);
      finished_cv_.wait(lock, [this] { return !finished_.empty(); });
    }
    run_finished();
  }
  stop_workers();
  repo_.flush();
  malloc_trim(0);
}

void RepoHandler::refresh_metrics() {
  for (const auto& [name, stats] : repo_.stats()) {
    GroupMetrics& m = metrics_.group(name);
    m.documents_loaded = stats.documents_loaded;
    m.sync_errors = stats.sync_errors;
    m.ephemeral_dropped = stats.ephemeral_dropped;
    m.disk_bytes = static_cast<int64_t>(stats.disk_bytes);
  }
}

}  // namespace gm::server
