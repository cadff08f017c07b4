// The stores under injected faults (fault_env.h): every step of every write fails in
// each way a disk fails, or the process stops there, with and without a power loss
// after it. Whatever happens, the store opens again, every key holds its old value or
// its new one (never a part), what a call reported as done is there after a power loss,
// and the same call succeeds once the disk is healthy again.
#include "storage/fault_env.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <functional>
#include <map>

#include "storage/document_store.h"
#include "storage/durable_file.h"

namespace gm::storage {
namespace {
namespace fs = std::filesystem;

// In memory where there is a tmpfs: the model, not the disk, decides what is durable,
// and the thousands of flushes cost nothing there.
fs::path fresh_dir() {
  const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  std::string tmpl = (base / "gm-fault-XXXXXX").string();
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string content(const fs::path& p) {
  auto r = read_file(p);
  return r.ok() && r->has_value() ? std::string((*r)->begin(), (*r)->end()) : "<absent>";
}

// --- The crash model itself -------------------------------------------------------

class FaultModelTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fresh_dir(); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FaultModelTest, WhatWasFlushedSurvivesAPowerLoss) {
  FaultEnv env(dir_);
  ASSERT_TRUE(write_file_durably(env, dir_ / "a", bytes_of("hello")));
  env.lose_unsynced();
  EXPECT_EQ(content(dir_ / "a"), "hello");
}

TEST_F(FaultModelTest, ANewNameIsLostUntilItsFolderIsFlushed) {
  FaultEnv env(dir_);
  int fd = env.open((dir_ / "a").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(env.write(fd, "hello", 5), 5);
  ASSERT_EQ(env.fsync(fd), 0);
  ASSERT_EQ(env.close(fd), 0);
  env.lose_unsynced();
  EXPECT_FALSE(fs::exists(dir_ / "a"));
}

// The classic mistake: renaming a file whose data was never flushed. The model finds it.
TEST_F(FaultModelTest, DataRenamedWithoutAFlushIsLostThoughTheNameSurvives) {
  FaultEnv env(dir_);
  ASSERT_TRUE(write_file_durably(env, dir_ / "a", bytes_of("old")));
  int fd = env.open((dir_ / "tmp").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_EQ(env.write(fd, "new!", 4), 4);
  ASSERT_EQ(env.close(fd), 0);
  ASSERT_EQ(env.rename((dir_ / "tmp").c_str(), (dir_ / "a").c_str()), 0);
  ASSERT_TRUE(sync_directory(env, dir_));
  env.lose_unsynced();
  EXPECT_EQ(content(dir_ / "a"), "");
}

TEST_F(FaultModelTest, AnUnflushedRenameAndUnlinkAreUndone) {
  FaultEnv env(dir_);
  ASSERT_TRUE(write_file_durably(env, dir_ / "a", bytes_of("A")));
  ASSERT_TRUE(write_file_durably(env, dir_ / "b", bytes_of("B")));
  ASSERT_EQ(env.rename((dir_ / "a").c_str(), (dir_ / "b").c_str()), 0);
  ASSERT_TRUE(write_file_durably(env, dir_ / "c", bytes_of("C")));  // flushes the folder: the rename is durable
  ASSERT_EQ(env.unlink((dir_ / "c").c_str()), 0);
  env.lose_unsynced();
  EXPECT_EQ(content(dir_ / "a"), "<absent>");
  EXPECT_EQ(content(dir_ / "b"), "A");
  EXPECT_EQ(content(dir_ / "c"), "C");
}

TEST_F(FaultModelTest, StepsFailAsAskedAndACrashStopsEverything) {
  FaultEnv env(dir_);
  env.fail_at(env.steps() + 1, ENOSPC);
  Status s = write_file_durably(env, dir_ / "a", bytes_of("x"));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("No space"), std::string::npos) << s.error().message;
  EXPECT_TRUE(write_file_durably(env, dir_ / "a", bytes_of("x")));
  env.crash_at(env.steps() + 1);
  EXPECT_FALSE(write_file_durably(env, dir_ / "b", bytes_of("y")));
  EXPECT_TRUE(env.crashed());
  EXPECT_FALSE(read_file(env, dir_ / "a").ok());  // a dead process reads nothing either
  env.heal();
  EXPECT_EQ(content(dir_ / "a"), "x");
}

// --- The stores at every step -----------------------------------------------------

// One way a step goes wrong.
struct Fault {
  const char* name;
  std::function<void(FaultEnv&, uint64_t)> arm;
  bool power_loss = false;  // after it, what was not durable is undone
};

std::vector<Fault> faults() {
  return {
      {"ENOSPC once", [](FaultEnv& e, uint64_t k) { e.fail_at(k, ENOSPC); }},
      {"EIO once", [](FaultEnv& e, uint64_t k) { e.fail_at(k, EIO); }},
      {"EACCES once", [](FaultEnv& e, uint64_t k) { e.fail_at(k, EACCES); }},
      {"disk full from here", [](FaultEnv& e, uint64_t k) { e.fail_from(k, ENOSPC); }},
      {"short write, then full", [](FaultEnv& e, uint64_t k) {
         e.short_write_at(k);
         e.fail_from(k + 1, ENOSPC);
       }},
      {"crash", [](FaultEnv& e, uint64_t k) { e.crash_at(k); }},
      {"crash and power loss", [](FaultEnv& e, uint64_t k) { e.crash_at(k); }, true},
  };
}

using Contents = std::map<StorageKey, std::string>;

const std::string kDoc = "3Rvncn6vGfW9LAndSNbqedrx1V2g";

StorageKey inc(const std::string& s) { return incremental_key(kDoc, as_bytes(s)); }

// One store operation: the keys before it, the keys once it is done, and whether a
// state in between is acceptable (default: each key old or new).
struct Scenario {
  const char* name;
  Contents before, after;
  std::function<Status(DocumentStore&)> run;
  std::function<bool(const Contents&)> acceptable;
  // Whether a write that failed (without a crash) leaves exactly what was there before:
  // nothing that may not be durable stays visible.
  bool all_or_nothing = false;
};

std::vector<Scenario> scenarios() {
  const Contents two = {{inc("change one"), "change one"}, {inc("change two"), "change two"}};
  const StorageKey snap = snapshot_key(kDoc, {"aa"});
  Contents three = two;
  three[inc("change three")] = "change three";
  Contents batch = two;
  for (std::string s : {"b1", "b2", "b3"}) batch[inc(s)] = s;
  Contents compacted = {{snap, "the snapshot"}};
  return {
      {"save", two, three, [](DocumentStore& s) { return s.save(inc("change three"), as_bytes("change three")); }, {},
       true},
      {"batch", two, batch,
       [](DocumentStore& s) -> Status {
         std::vector<PendingFile> files;
         for (std::string v : {"b1", "b2", "b3"}) {
           GM_ASSIGN_OR_RETURN(PendingFile f, s.prepare(inc(v), as_bytes(v)));
           files.push_back(std::move(f));
         }
         return DurableBatch::commit(files);
       },
       {}, true},
      // A name written again with other bytes (a snapshot of the same heads, encoded
      // anew): the old value or the new, never neither, never a part.
      {"overwrite", compacted, {{snap, "the snapshot, again"}},
       [snap](DocumentStore& s) { return s.save(snap, as_bytes("the snapshot, again")); }, {}},
      {"remove_keys", two, {},
       [](DocumentStore& s) {
         std::vector<StorageKey> keys = {inc("change one"), inc("change two")};
         return s.remove_keys(keys);
       },
       {}},
      {"remove_range", two, {}, [](DocumentStore& s) { return s.remove_range({kDoc}); }, {}},
      // What compaction does (group_repo_work.cc): the snapshot durable first, then
      // the files it replaces go. The document is whole at every moment.
      {"compaction", two, compacted,
       [snap](DocumentStore& s) -> Status {
         GM_TRY(s.save(snap, as_bytes("the snapshot")));
         std::vector<StorageKey> old = {inc("change one"), inc("change two")};
         return s.remove_keys(old);
       },
       [snap, two](const Contents& c) {
         if (c.count(snap)) return c.at(snap) == "the snapshot";
         for (const auto& [k, v] : two) {
           if (!c.count(k) || c.at(k) != v) return false;
         }
         return true;
       }},
  };
}

class StoreFaultTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // A fresh folder with `before` stored (no faults); the store's Env is `env_`.
  std::unique_ptr<DocumentStore> setup(const Contents& before) {
    if (!dir_.empty()) fs::remove_all(dir_);
    dir_ = fresh_dir();
    env_ = std::make_unique<FaultEnv>(dir_);
    auto store = DocumentStore::open(dir_ / "group", options());
    EXPECT_TRUE(store.ok()) << store.error().message;
    for (const auto& [k, v] : before) EXPECT_TRUE((*store)->save(k, as_bytes(v)));
    return std::move(*store);
  }

  // Problems the store reports (a removal it could not finish) are expected here.
  StoreOptions options(Env* env = nullptr) {
    return StoreOptions{.report = [](const StorageProblem&) {}, .env = env ? env : env_.get()};
  }

  // What a store opened afresh, on the operating system, finds. Anything it has to
  // set aside (a torn file) or report is a failure: it is what the fault left.
  Contents reopen_and_read(std::string& why) {
    auto problems = std::make_shared<std::vector<std::string>>();
    StoreOptions o;
    o.report = [problems](const StorageProblem& p) { problems->push_back(p.path.string() + ": " + p.reason); };
    auto store = DocumentStore::open(dir_ / "group", o);
    if (!store.ok()) {
      why = "does not open: " + store.error().message;
      return {};
    }
    auto all = (*store)->load_range({kDoc});
    if (!all.ok()) {
      why = "does not load: " + all.error().message;
      return {};
    }
    Contents c;
    for (auto& [k, v] : *all) c[k] = std::string(v.begin(), v.end());
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "group")) {
      if (e.path().filename().string().starts_with(kTempPrefix)) why = "a temp file is left: " + e.path().string();
    }
    if (!problems->empty()) why = "the store found a problem: " + problems->front();
    return c;
  }

  fs::path dir_;
  std::unique_ptr<FaultEnv> env_;
};

TEST_F(StoreFaultTest, EveryStepOfEveryWriteFailsSafely) {
  size_t cases = 0;
  for (const Scenario& sc : scenarios()) {
    // How many steps the operation takes when nothing goes wrong.
    uint64_t steps = 0;
    {
      auto store = setup(sc.before);
      const uint64_t from = env_->steps();
      ASSERT_TRUE(sc.run(*store)) << sc.name;
      steps = env_->steps() - from;
      ASSERT_GT(steps, 0u) << sc.name;
      // Done is durable: a power loss right after takes nothing away.
      store.reset();
      env_->lose_unsynced();
      std::string why;
      EXPECT_EQ(reopen_and_read(why), sc.after) << sc.name << ": done, then a power loss";
      EXPECT_TRUE(why.empty()) << why;
    }
    for (const Fault& fault : faults()) {
      for (uint64_t k = 1; k <= steps; ++k) {
        ++cases;
        auto store = setup(sc.before);
        const uint64_t from = env_->steps();
        const std::vector<std::string> log_before = env_->log();
        fault.arm(*env_, from + k);
        Status done = sc.run(*store);
        const bool crashed = env_->crashed();
        std::string where = std::string(sc.name) + ", " + fault.name + " at step " + std::to_string(k) + " of " +
                            std::to_string(steps) + " (" + env_->log()[from + k - 1] + ")";
        store.reset();
        if (fault.power_loss) env_->lose_unsynced();
        env_->heal();
        std::string why;
        Contents now = reopen_and_read(why);
        ASSERT_TRUE(why.empty()) << where << ": " << why;
        if (done) {
          // Reported done: it is all there, even after a power loss.
          EXPECT_EQ(now, sc.after) << where << ": reported done but not on disk";
        } else if (sc.all_or_nothing && !crashed) {
          EXPECT_EQ(now, sc.before) << where << ": failed, but something new is visible";
        } else {
          if (sc.acceptable) {
            EXPECT_TRUE(sc.acceptable(now)) << where << ": the document is not whole";
          }
          for (const auto& [k2, v] : now) {
            const bool old_value = sc.before.count(k2) && sc.before.at(k2) == v;
            const bool new_value = sc.after.count(k2) && sc.after.at(k2) == v;
            EXPECT_TRUE(old_value || new_value) << where << ": " << key_to_string(k2) << " holds neither value";
          }
          for (const auto& [k2, v] : sc.before) {
            if (sc.after.count(k2) && !sc.acceptable) {
              EXPECT_TRUE(now.count(k2)) << where << ": " << key_to_string(k2) << " was lost";
            }
          }
        }
        if (!crashed) {
          // Without a crash the store is still in use: once the disk is healthy the
          // same call succeeds.
          auto again = DocumentStore::open(dir_ / "group", options());
          ASSERT_TRUE(again.ok()) << where;
          EXPECT_TRUE(sc.run(**again)) << where << ": fails once the disk is healthy";
          again->reset();
          env_->lose_unsynced();  // and what the retry did is durable
          Contents after = reopen_and_read(why);
          EXPECT_TRUE(why.empty()) << where << ": " << why;
          EXPECT_EQ(after, sc.after) << where << ": not done (durably) once the disk is healthy";
        }
      }
    }
  }
  EXPECT_GT(cases, 100u);
}

// A store whose storage id cannot be written does not open, says why, and opens with
// one id once the disk is healthy, whatever step failed.
TEST_F(StoreFaultTest, OpeningANewStoreAtEveryStep) {
  dir_ = fresh_dir();
  uint64_t steps = 0;
  {
    FaultEnv env(dir_ / "dry");
    ASSERT_TRUE(DocumentStore::open(dir_ / "dry", StoreOptions{.env = &env}).ok());
    steps = env.steps();
  }
  for (const Fault& fault : faults()) {
    for (uint64_t k = 1; k <= steps; ++k) {
      const fs::path folder = dir_ / (std::string("case-") + std::to_string(k) + "-" + std::to_string(fault.power_loss) +
                                      "-" + std::to_string(std::hash<std::string>()(fault.name)));
      FaultEnv env(dir_);
      fault.arm(env, k);
      auto first = DocumentStore::open(folder, StoreOptions{.env = &env});
      const std::string id = first.ok() ? (*first)->storage_id() : "";
      first = error("dropped");
      if (fault.power_loss) env.lose_unsynced();
      env.heal();
      auto second = DocumentStore::open(folder, StoreOptions{.env = &env});
      ASSERT_TRUE(second.ok()) << fault.name << " at " << k << ": " << second.error().message;
      if (!id.empty() && !fault.power_loss) {
        EXPECT_EQ((*second)->storage_id(), id) << fault.name << " at " << k;
      }
      env.lose_unsynced();  // the id the second open settled on is durable
      auto third = DocumentStore::open(folder);
      ASSERT_TRUE(third.ok());
      EXPECT_EQ((*third)->storage_id(), (*second)->storage_id()) << fault.name << " at " << k << " of " << steps << "\n"
                                                                 << ::testing::PrintToString(env.log());
    }
  }
}

}  // namespace
}  // namespace gm::storage
