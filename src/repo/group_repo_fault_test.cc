// The repo over a disk that fails (storage/fault_env.h), at every step of storing a
// client's change and of compacting a document, in every way a disk fails, and with the
// process stopping there, with and without a power loss. The rules (issue 13):
//   - a change the server acknowledged (its heads in a sync message to the client) is
//     never lost;
//   - a change that could not be stored is never acknowledged: the client gets an
//     `error` and keeps the change, to send again;
//   - reads keep being served while the disk fails;
//   - writes resume by themselves once the disk accepts them again;
//   - compaction never leaves the document unreadable (GM_FAULT_KEEP=dir keeps every
//     folder compaction left, with its expected heads, for the JS reference to load:
//     tests/interop/tools/load_folders.mjs, ctest interop_fault_folders).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "automerge/change.h"
#include "automerge/change_graph.h"
#include "automerge/sync.h"
#include "repo/group_repo.h"
#include "storage/fault_env.h"
#include "util/hex.h"

namespace gm::repo {
namespace {

namespace fs = std::filesystem;
using automerge::ChangeGraph;
using automerge::ChangeHash;

const char* kDocId = "3Rvncn6vGfW9LAndSNbqedrx1V2g";
const char* kServer = "storage-server-test";

// A change by actor `a` (its only one), setting a key of its own.
Bytes change_by(uint8_t a) {
  automerge::Change change;
  change.actor = Bytes(16, a);
  change.seq = 1;
  change.start_op = 1;
  change.ops.resize(1);
  change.ops[0].key.map_key = "key" + std::to_string(a);
  return automerge::encode_change(change);
}

ChangeHash hash_of(const Bytes& change) {
  ChangeGraph g;
  EXPECT_TRUE(g.load(change).ok());
  return g.heads().at(0);
}

struct Peer : repo::Peer {
  std::vector<Message> received;
  bool closed = false;
  bool send(Bytes frame) override {
    auto m = decode_message(frame);
    EXPECT_TRUE(m.ok());
    if (m.ok()) received.push_back(*m);
    return !closed;
  }
  bool send_shared(Frame frame) override { return send(frame.flatten()); }
  void close(std::string) override { closed = true; }
};

struct Client {
  uint64_t conn;
  std::string id;
  std::shared_ptr<Peer> peer = std::make_shared<Peer>();
  ChangeGraph graph;
  automerge::SyncState state;
  size_t seen = 0;
  // Heads the server has announced (its sync messages' heads): what it acknowledged.
  std::set<ChangeHash> acknowledged;
  bool told_error() const {
    return std::any_of(peer->received.begin(), peer->received.end(),
                       [](const Message& m) { return std::holds_alternative<ErrorMessage>(m); });
  }
};

// One way a step goes wrong (as in storage/fault_env_test.cc).
struct Fault {
  const char* name;
  std::function<void(storage::FaultEnv&, uint64_t)> arm;
  bool crash = false;
  bool power_loss = false;
};

std::vector<Fault> faults() {
  return {
      {"ENOSPC once", [](storage::FaultEnv& e, uint64_t k) { e.fail_at(k, ENOSPC); }},
      {"EIO once", [](storage::FaultEnv& e, uint64_t k) { e.fail_at(k, EIO); }},
      {"EACCES once", [](storage::FaultEnv& e, uint64_t k) { e.fail_at(k, EACCES); }},
      {"disk full from here", [](storage::FaultEnv& e, uint64_t k) { e.fail_from(k, ENOSPC); }},
      {"short write, then full",
       [](storage::FaultEnv& e, uint64_t k) {
         e.short_write_at(k);
         e.fail_from(k + 1, ENOSPC);
       }},
      {"crash", [](storage::FaultEnv& e, uint64_t k) { e.crash_at(k); }, true},
      {"crash and power loss", [](storage::FaultEnv& e, uint64_t k) { e.crash_at(k); }, true, true},
  };
}

fs::path fresh_dir() {
  const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  std::string tmpl = (base / "gm-repo-fault-XXXXXX").string();
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

class GroupRepoFaultTest : public ::testing::Test {
 protected:
  void TearDown() override {
    repo_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // A fresh folder and a repo whose store goes through env_.
  void start() {
    repo_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
    dir_ = fresh_dir();
    env_ = std::make_unique<storage::FaultEnv>(dir_);
    open(env_.get());
  }
  // The repo over the folder again (a restart), through `env`.
  void open(storage::Env* env) {
    repo_.reset();
    storage::StoreOptions so;
    so.env = env;
    so.report = [](const storage::StorageProblem&) {};
    auto store = storage::DocumentStore::open(dir_ / "group", so);
    ASSERT_TRUE(store.ok()) << store.error().message;
    GroupRepoOptions o;
    o.peer_id = kServer;
    repo_ = std::make_unique<GroupRepo>("xyz.groundmist.test", std::shared_ptr<storage::DocumentStore>(std::move(*store)),
                                        o, RepoLogger{});
  }

  void join(Client& c) {
    repo_->connect(c.conn, c.peer);
    JoinMessage j;
    j.sender_id = c.id;
    j.supported_protocol_versions = std::vector<std::string>{"1"};
    repo_->receive(c.conn, encode_message(j));
    c.seen = c.peer->received.size();
  }
  // The client's sync messages and the server's answers, until both are quiet (or the
  // server closed the client).
  void sync(Client& c, bool request = false) {
    for (int round = 0; round < 10 && !c.peer->closed; ++round) {
      auto m = automerge::generate_sync_message(c.graph, c.state);
      if (m) {
        Bytes data = automerge::encode_sync_message(*m);
        if (request) {
          repo_->receive(c.conn, encode_message(RequestMessage{c.id, kServer, kDocId, data}));
        } else {
          repo_->receive(c.conn, encode_message(SyncMessage{c.id, kServer, kDocId, data}));
        }
      }
      bool got = false;
      for (; c.seen < c.peer->received.size(); ++c.seen) {
        auto* s = std::get_if<SyncMessage>(&c.peer->received[c.seen]);
        if (!s) continue;
        auto decoded = automerge::decode_sync_message(ByteView(s->data));
        ASSERT_TRUE(decoded.ok());
        c.acknowledged.insert(decoded->heads.begin(), decoded->heads.end());
        ASSERT_TRUE(automerge::receive_sync_message(c.graph, c.state, ByteView(s->data)).ok());
        got = true;
      }
      if (!m && !got) return;
    }
  }
  // What a new client gets from the server.
  std::vector<ChangeHash> fetch(uint64_t conn) {
    Client c{conn, "reader-" + std::to_string(conn)};
    join(c);
    sync(c, /*request=*/true);
    repo_->disconnect(c.conn);
    return c.graph.heads();
  }
  // The server restarted on the folder as the disk has it, read by a new client.
  std::vector<ChangeHash> after_restart() {
    open(&storage::Env::posix());
    return fetch(900);
  }

  fs::path dir_;
  std::unique_ptr<storage::FaultEnv> env_;
  std::unique_ptr<GroupRepo> repo_;
};

bool contains(const std::vector<ChangeHash>& heads, const ChangeHash& h) {
  return std::find(heads.begin(), heads.end(), h) != heads.end();
}

// A client stores a second change while the disk fails at step k of storing it.
TEST_F(GroupRepoFaultTest, StoringAChangeAtEveryStep) {
  const Bytes first = change_by(1), second = change_by(2);
  const ChangeHash h1 = hash_of(first), h2 = hash_of(second);
  // The steps one change takes, and what a power loss right after leaves.
  uint64_t steps = 0;
  {
    start();
    Client a{1, "alice"};
    join(a);
    ASSERT_TRUE(a.graph.load(first).ok());
    sync(a);
    ASSERT_TRUE(a.graph.load(second).ok());
    const uint64_t from = env_->steps();
    sync(a);
    steps = env_->steps() - from;
    ASSERT_GT(steps, 0u);
    ASSERT_TRUE(a.acknowledged.count(h2));
    repo_.reset();
    env_->lose_unsynced();
    EXPECT_TRUE(contains(after_restart(), h2)) << "acknowledged, then lost to a power loss";
  }
  size_t cases = 0;
  for (const Fault& fault : faults()) {
    for (uint64_t k = 1; k <= steps; ++k, ++cases) {
      start();
      Client a{1, "alice"};
      join(a);
      ASSERT_TRUE(a.graph.load(first).ok());
      sync(a);
      ASSERT_TRUE(a.graph.load(second).ok());
      const std::string where = std::string(fault.name) + " at step " + std::to_string(k) + " of " + std::to_string(steps);
      fault.arm(*env_, env_->steps() + k);
      sync(a);
      const bool acknowledged = a.acknowledged.count(h2) > 0;
      if (fault.crash) {
        // The process is gone: what it acknowledged must be on disk.
        repo_.reset();
        if (fault.power_loss) env_->lose_unsynced();
        env_->heal();
        // Restarted on the disk as the crash left it: what it serves then is served as
        // stored, so a power loss after that must not take it.
        open(env_.get());
        const auto served = fetch(800);
        EXPECT_TRUE(contains(served, h1)) << where << ": an older change was lost";
        if (acknowledged) {
          EXPECT_TRUE(contains(served, h2)) << where << ": acknowledged, then lost";
        }
        repo_.reset();
        env_->lose_unsynced();
        const auto heads = after_restart();
        for (const ChangeHash& h : served) {
          EXPECT_TRUE(contains(heads, h)) << where << ": served after the restart, then lost to a power loss";
        }
        continue;
      }
      // Told one way or the other, never both, never silence.
      EXPECT_NE(acknowledged, a.told_error()) << where << ": acknowledged " << acknowledged << ", told an error "
                                              << a.told_error();
      // Reads are served while the disk still fails.
      EXPECT_TRUE(contains(fetch(2), h1)) << where << ": reads stopped";
      env_->heal();
      if (!acknowledged) {
        // The client still has its change and sends it again on its next connection.
        EXPECT_TRUE(a.peer->closed) << where;
        Client again{3, "alice"};
        again.graph = std::move(a.graph);
        join(again);
        sync(again);
        EXPECT_TRUE(again.acknowledged.count(h2)) << where << ": not stored once the disk is healthy";
      }
      repo_.reset();
      env_->lose_unsynced();
      const auto heads = after_restart();
      EXPECT_TRUE(contains(heads, h1) && contains(heads, h2)) << where << ": lost after acknowledgement";
    }
  }
  EXPECT_GT(cases, 20u);
}

// Copies the folder the way compaction left it, with the heads it must load with, for
// the JS reference to read (GM_FAULT_KEEP).
void keep_for_js(const fs::path& dir, const std::string& name, const std::vector<ChangeHash>& heads) {
  const char* keep = std::getenv("GM_FAULT_KEEP");
  if (!keep || !*keep) return;
  const fs::path dest = fs::path(keep) / name;
  fs::remove_all(dest);
  fs::create_directories(dest);
  fs::copy(dir / "group", dest / "store", fs::copy_options::recursive);
  std::ofstream out(dest / "expected.txt");
  out << kDocId << "\n";
  std::vector<std::string> hex;
  for (const ChangeHash& h : heads) hex.push_back(h.hex());
  std::sort(hex.begin(), hex.end());
  for (const std::string& h : hex) out << h << "\n";
}

// A document of three files is compacted while the disk fails at step k.
TEST_F(GroupRepoFaultTest, CompactingAtEveryStep) {
  const std::vector<Bytes> changes = {change_by(1), change_by(2), change_by(3)};
  std::vector<ChangeHash> want;
  auto fill = [&] {
    start();
    Client a{1, "alice"};
    join(a);
    for (const Bytes& c : changes) {
      ASSERT_TRUE(a.graph.load(c).ok());
      sync(a);
    }
    want = a.graph.heads();
    std::sort(want.begin(), want.end());
    repo_->disconnect(a.conn);
  };
  auto sorted = [](std::vector<ChangeHash> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  uint64_t steps = 0;
  {
    fill();
    const uint64_t from = env_->steps();
    repo_->unload_idle(Clock::now() + std::chrono::hours(1));
    steps = env_->steps() - from;
    ASSERT_GT(steps, 2u);
    repo_.reset();
    env_->lose_unsynced();
    keep_for_js(dir_, "compacted", want);
    EXPECT_EQ(sorted(after_restart()), want) << "compacted, then a power loss";
  }
  size_t cases = 0;
  for (const Fault& fault : faults()) {
    for (uint64_t k = 1; k <= steps; ++k, ++cases) {
      fill();
      const std::string where = std::string(fault.name) + " at step " + std::to_string(k) + " of " + std::to_string(steps);
      fault.arm(*env_, env_->steps() + k);
      repo_->unload_idle(Clock::now() + std::chrono::hours(1));
      if (!fault.crash) {
        // The document still serves, from whatever compaction left.
        EXPECT_EQ(sorted(fetch(5)), want) << where << ": not served after a failed compaction";
        env_->heal();
        repo_->unload_idle(Clock::now() + std::chrono::hours(2));
      }
      repo_.reset();
      if (fault.power_loss) env_->lose_unsynced();
      env_->heal();
      std::string name = std::string(fault.name) + "-" + std::to_string(k);
      std::replace(name.begin(), name.end(), ' ', '-');
      std::replace(name.begin(), name.end(), ',', '-');
      keep_for_js(dir_, name, want);
      EXPECT_EQ(sorted(after_restart()), want) << where << ": the document is not whole";
    }
  }
  EXPECT_GT(cases, 20u);
}

}  // namespace
}  // namespace gm::repo
