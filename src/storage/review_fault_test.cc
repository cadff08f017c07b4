// Findings of the review of the Env seam, FaultEnv and the "remove what a failed commit
// published" fix (2026-12-07), each a rule the code or the crash model claims, kept as
// tests once fixed: the model cuts back unflushed data of files it puts back and follows
// a path through an undo that makes a new inode; a failed write never removes a file that
// was there before (an lstat error is not "absent"); a retried removal flushes. The
// comment above each test tells what went wrong before the fix.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "storage/document_store.h"
#include "storage/durable_file.h"
#include "storage/fault_env.h"
#include "util/hex.h"
#include "util/sha256.h"

namespace gm::storage {
namespace {
namespace fs = std::filesystem;

fs::path fresh_dir() {
  const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  std::string tmpl = (base / "gm-review-XXXXXX").string();
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string content(const fs::path& p) {
  auto r = read_file(p);
  return r.ok() && r->has_value() ? std::string((*r)->begin(), (*r)->end()) : "<absent>";
}

const std::string kDoc = "3Rvncn6vGfW9LAndSNbqedrx1V2g";
StorageKey inc(const std::string& s) { return incremental_key(kDoc, as_bytes(s)); }

class Review : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fresh_dir(); }
  void TearDown() override { fs::remove_all(dir_); }
  StoreOptions options(Env* env) { return StoreOptions{.report = [](const StorageProblem&) {}, .env = env}; }
  fs::path dir_;
};

// --- FaultEnv's model -------------------------------------------------------------

// fault_env.h: "every file written since its last flush is cut back to what was
// flushed (a new file never flushed is empty)". A file whose data was never flushed,
// then unlinked (not durably), comes back after lose_unsynced() with all its unflushed
// data: undo(kUnlink) puts back the content read at unlink time, after the truncation
// pass ran (and unlink() already dropped the inode from flushed_size_).
TEST_F(Review, ModelPutsBackOnlyTheFlushedDataOfAnUnlinkedFile) {
  FaultEnv env(dir_);
  const fs::path a = dir_ / "a";
  int fd = env.open(a.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(env.write(fd, "hello", 5), 5);  // never fsynced
  ASSERT_EQ(env.close(fd), 0);
  ASSERT_TRUE(sync_directory(env, dir_));  // the name is durable, the data is not
  ASSERT_EQ(env.unlink(a.c_str()), 0);      // not durable either
  env.lose_unsynced();
  const std::string now = content(a);
  EXPECT_TRUE(now == "" || now == "<absent>") << "unflushed data survived a power loss: \"" << now << "\"";
}

// Same with a rename over the file instead of an unlink (rename's `saved` is the
// current content, unflushed bytes included).
TEST_F(Review, ModelPutsBackOnlyTheFlushedDataOfAReplacedFile) {
  FaultEnv env(dir_);
  const fs::path a = dir_ / "a";
  int fd = env.open(a.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(env.write(fd, "unflushed", 9), 9);
  ASSERT_EQ(env.close(fd), 0);
  ASSERT_TRUE(sync_directory(env, dir_));
  int t = env.open((dir_ / "t").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_EQ(env.write(t, "new", 3), 3);
  ASSERT_EQ(env.fsync(t), 0);
  ASSERT_EQ(env.close(t), 0);
  ASSERT_EQ(env.rename((dir_ / "t").c_str(), a.c_str()), 0);  // not durable
  env.lose_unsynced();
  const std::string now = content(a);
  EXPECT_TRUE(now == "" || now == "<absent>") << "unflushed data survived a power loss: \"" << now << "\"";
}

// fault_env.h: "a name made (... the destination of a rename) ... is durable once its
// folder is fsynced after it ... What is not durable is undone, newest first". The
// exact path of the fix in DurableBatch::commit: rename (not durable), the folder flush
// fails, the file is unlinked (not durable). lose_unsynced() undoes the unlink with
// put_back() (a new inode), then the rename's undo sees another inode and does nothing:
// a name whose creation was never durable survives the power loss.
TEST_F(Review, ModelUndoesARenameWhoseNameWasUnlinkedSince) {
  FaultEnv env(dir_);
  DurableBatch batch(dir_ / ".tmp", env);
  ASSERT_TRUE(create_directories_durably(env, dir_ / ".tmp"));
  ASSERT_TRUE(create_directories_durably(env, dir_ / "doc"));
  const fs::path key = dir_ / "doc" / "k";
  ASSERT_TRUE(batch.add(key, bytes_of("change")));
  // Steps of commit: fdatasync, rename, fsync(doc folder), unlink(k): fail the flush.
  env.fail_at(env.steps() + 3, EIO);
  ASSERT_FALSE(batch.commit());
  ASSERT_EQ(content(key), "<absent>");  // the fix removed it
  env.heal();
  env.lose_unsynced();
  // Nothing about `k` was ever durable.
  EXPECT_EQ(content(key), "<absent>") << "the model kept a name whose rename was never flushed";
}

// --- The stores -------------------------------------------------------------------

// write_file_durably (and DurableBatch::commit) decide "was not there before" from
// lstat() == 0. An lstat that fails for another reason than ENOENT (EIO, ENOMEM,
// EACCES on a path component, ...) is taken as "absent", so when the folder flush then
// fails, the file at the path -- durable, written and acknowledged earlier -- is
// unlinked. Here: a durable file, rewritten under its own name (what compaction does
// when it writes the snapshot of heads it already has on disk), with reads failing.
TEST_F(Review, AFailedWriteKeepsTheDurableFileItWasReplacing) {
  FaultEnv env(dir_);
  const fs::path a = dir_ / "a";
  ASSERT_TRUE(write_file_durably(env, a, bytes_of("acknowledged")));
  env.read_error(EIO);  // lstat fails: "existed" is false; the folder open for fsync fails
  EXPECT_FALSE(write_file_durably(env, a, bytes_of("acknowledged")));
  env.heal();
  EXPECT_EQ(content(a), "acknowledged") << "a failed rewrite removed a durable file";
}

// The same decision in DurableBatch::commit, with one Env that fails only the lstat of
// the target (ENOMEM) and the flush of its folder (EIO): two independent faults.
class LstatAndFlushFail : public Env {
 public:
  std::string target;
  bool armed = false;
  int lstat(const char* path, struct stat* st) override {
    if (armed && target == path) {
      errno = ENOMEM;
      return -1;
    }
    return Env::lstat(path, st);
  }
  int fsync(int fd) override {
    struct stat st {};
    if (armed && ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      errno = EIO;
      return -1;
    }
    return Env::fsync(fd);
  }
};

TEST_F(Review, AFailedCommitKeepsTheDurableFileItWasReplacing) {
  LstatAndFlushFail env;
  auto store = DocumentStore::open(dir_ / "group", options(&env));
  ASSERT_TRUE(store.ok());
  const StorageKey key = inc("change one");
  ASSERT_TRUE((*store)->save(key, as_bytes("change one")));
  const fs::path path = dir_ / "group" / key_to_relative_path(key).value();
  ASSERT_EQ(content(path), "change one");
  auto pending = (*store)->prepare(key, as_bytes("change one"));
  ASSERT_TRUE(pending.ok());
  std::vector<PendingFile> files;
  files.push_back(std::move(*pending));
  env.target = path.string();
  env.armed = true;
  EXPECT_FALSE(DurableBatch::commit(files));
  env.armed = false;
  EXPECT_EQ(content(path), "change one") << "a failed commit removed a durable file";
}

// fault_env_test.cc's rule "what a call reported as done is there after a power loss",
// for remove_keys retried after a failed folder flush (what the test's retry does, but
// without a power loss after it): the retry finds the files gone (ENOENT), flushes no
// folder and reports success; a power loss brings the files back.
TEST_F(Review, RemoveKeysRetriedAfterAFailedFlushIsDurable) {
  FaultEnv env(dir_);
  auto store = DocumentStore::open(dir_ / "group", options(&env));
  ASSERT_TRUE(store.ok());
  const std::vector<StorageKey> keys = {inc("change one"), inc("change two")};
  for (const auto& k : keys) ASSERT_TRUE((*store)->save(k, as_bytes(k == keys[0] ? "change one" : "change two")));
  // unlink, unlink, fsync(incremental folder): the flush fails.
  env.fail_at(env.steps() + 3, EIO);
  ASSERT_FALSE((*store)->remove_keys(keys));
  env.heal();
  ASSERT_TRUE((*store)->remove_keys(keys)) << "the retry";
  store->reset();
  env.lose_unsynced();
  auto again = DocumentStore::open(dir_ / "group", options(&Env::posix()));
  ASSERT_TRUE(again.ok());
  auto left = (*again)->load_range({kDoc});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 0u) << "remove_keys reported done, but a power loss brought " << left->size()
                              << " files back";
}

}  // namespace
}  // namespace gm::storage
