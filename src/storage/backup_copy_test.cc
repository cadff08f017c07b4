#include "storage/backup_copy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <set>

#include "storage/document_store.h"
#include "storage/fault_env.h"
#include "util/hex.h"

namespace gm::storage {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gm-backup-copy-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Every file under `dir`, relative, with its content.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    out[fs::relative(e.path(), dir).string()] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return out;
}

// Runs `hook` once, just before the first open of a file whose path contains `needle`.
class HookEnv : public Env {
 public:
  std::string needle;
  std::function<void()> hook;
  int open(const char* path, int flags, unsigned mode) override {
    if (hook && std::string_view(path).find(needle) != std::string_view::npos) std::exchange(hook, nullptr)();
    return Env::open(path, flags, mode);
  }
};

constexpr const char* kDoc = "2JvEZqcTestDocument";

struct Fixture {
  TempDir data, out;
  fs::path group = data.path() / "xyz" / "groundmist" / "test";
  std::unique_ptr<DocumentStore> store;
  StorageKey inc1, inc2, snap;

  Fixture() {
    store = DocumentStore::open(group).value();
    const Bytes a = bytes_of("change one"), b = bytes_of("change two");
    inc1 = incremental_key(kDoc, a);
    inc2 = incremental_key(kDoc, b);
    EXPECT_TRUE(store->save(inc1, a).ok());
    EXPECT_TRUE(store->save(inc2, b).ok());
    snap = snapshot_key(kDoc, {"aa", "bb"});
  }
  // What the server's compaction does: the snapshot durable first, then the removals.
  void compact() {
    ASSERT_TRUE(store->save(snap, bytes_of("snapshot of one and two")).ok());
    const std::vector<StorageKey> old{inc1, inc2};
    ASSERT_TRUE(store->remove_keys(old).ok());
  }
  std::string path_of(const StorageKey& key) const {
    return (fs::path("xyz/groundmist/test") / key_to_relative_path(key).value()).string();
  }
};

TEST(BackupCopy, CopiesStoresAndLeavesTempFilesBehind) {
  Fixture f;
  // Leftovers that are not part of any store's content.
  ASSERT_TRUE(write_new_file(f.group / ".tmp" / ".tmp-half-written", bytes_of("x")).ok());
  ASSERT_TRUE(write_new_file(f.group / "2J" / "vEZqcTestDocument" / "incremental" / ".tmp-old", bytes_of("x")).ok());
  ASSERT_TRUE(write_new_file(f.data.path() / ".groundmist" / "server.db", bytes_of("x")).ok());
  std::vector<CopiedFile> files;
  auto stats = copy_document_stores(f.data.path(), f.out.path(), {}, files);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->groups, std::vector<std::string>{"xyz.groundmist.test"});
  EXPECT_EQ(stats->documents, 1u);
  EXPECT_EQ(stats->files, 3u);  // two incrementals and the storageId
  EXPECT_EQ(files.size(), 3u);
  auto copy = tree(f.out.path());
  EXPECT_EQ(copy, (std::map<std::string, std::string>{
                      {f.path_of(f.inc1), "change one"},
                      {f.path_of(f.inc2), "change two"},
                      {"xyz/groundmist/test/st/orage-adapter-id", f.store->storage_id()},
                  }));
  for (const CopiedFile& c : files) {
    EXPECT_EQ(c.sha256, sha256(bytes_of(copy[c.relative.string()]))) << c.relative;
  }
  struct stat st {};
  ASSERT_EQ(::stat((f.out.path() / f.path_of(f.inc1)).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// Review: a group folder that is a symbolic link (a large group moved to another disk;
// the server follows the link) must not be left out of a backup that then reports
// success: its documents are copied, or the copy fails naming it.
TEST(BackupCopy, ASymlinkedGroupFolderIsCopiedOrRefused) {
  TempDir data, elsewhere, out;
  auto store = DocumentStore::open(elsewhere.path() / "groundmist" / "test").value();
  const Bytes a = bytes_of("change one");
  const StorageKey inc = incremental_key(kDoc, a);
  ASSERT_TRUE(store->save(inc, a).ok());
  fs::create_directory_symlink(elsewhere.path(), data.path() / "xyz");
  std::vector<CopiedFile> files;
  auto stats = copy_document_stores(data.path(), out.path(), {}, files);
  if (!stats.ok()) {
    EXPECT_NE(stats.error().message.find("xyz"), std::string::npos) << stats.error().message;
    return;
  }
  EXPECT_EQ(stats->groups, std::vector<std::string>{"xyz.groundmist.test"});
  EXPECT_EQ(stats->documents, 1u);
  EXPECT_TRUE(fs::exists(out.path() / "xyz/groundmist/test" / key_to_relative_path(inc).value()))
      << "skipped: " << (stats->skipped.empty() ? "" : stats->skipped.front());
}

// Compaction between the listing and the read: the listed incremental file is gone;
// the pass is repeated and copies the snapshot that replaced it.
TEST(BackupCopy, AFileCompactedAwayAfterTheListingIsReplacedByItsSnapshot) {
  Fixture f;
  HookEnv env;
  env.needle = "incremental/";
  env.hook = [&] { f.compact(); };
  StoreCopyOptions options{.env = &env};
  std::vector<CopiedFile> files;
  auto stats = copy_document_stores(f.data.path(), f.out.path(), options, files);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_GE(stats->repeated_passes, 1u);
  auto copy = tree(f.out.path());
  EXPECT_EQ(copy.count(f.path_of(f.snap)), 1u);
  EXPECT_EQ(copy.count(f.path_of(f.inc1)), 0u);  // this pass did not list them
  EXPECT_EQ(copy.count(f.path_of(f.inc2)), 0u);
  EXPECT_EQ(stats->files, 2u);  // the snapshot and the storageId
  EXPECT_EQ(files.size(), 2u);
}

// The first compaction of a document right after the first folder of a pass was
// listed: its snapshot (and the snapshot folder) appears, its incrementals go. A pass
// that listed snapshot/ first would find no snapshot and then no incrementals, and copy
// nothing; listing incremental/ first sees them, and their absence at read time sends
// it to the snapshot.
TEST(BackupCopy, FirstCompactionRightAfterAPassBeganIsNotMissed) {
  Fixture f;
  bool done = false;
  StoreCopyOptions options;
  options.list = [&](const char* dir, std::vector<Env::Entry>& out) {
    const int rc = list_folder_atomically(dir, out);
    if (!done && std::string_view(dir).find("vEZqcTestDocument") != std::string_view::npos) {
      done = true;
      f.compact();
    }
    return rc;
  };
  std::vector<CopiedFile> files;
  auto stats = copy_document_stores(f.data.path(), f.out.path(), options, files);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  ASSERT_TRUE(done);
  auto copy = tree(f.out.path());
  EXPECT_EQ(copy[f.path_of(f.snap)], "snapshot of one and two");
  EXPECT_EQ(copy.size(), 2u);
}

// One file read fine, the next compacted away: the copy keeps exactly the last pass's
// files, none of the first pass's leftovers.
TEST(BackupCopy, ARepeatedPassDropsFilesItNoLongerLists) {
  Fixture f;
  HookEnv env;
  // The second incremental in name order is read after the first was copied.
  const StorageKey& later = std::max(f.inc1, f.inc2);
  env.needle = later[2];
  env.hook = [&] { f.compact(); };
  StoreCopyOptions options{.env = &env};
  std::vector<CopiedFile> files;
  auto stats = copy_document_stores(f.data.path(), f.out.path(), options, files);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  auto copy = tree(f.out.path());
  EXPECT_EQ(copy.size(), 2u);
  EXPECT_EQ(copy.count(f.path_of(f.snap)), 1u);
}

TEST(BackupCopy, AnUnreadableFileFailsTheCopyInsteadOfSkippingIt) {
  Fixture f;
  FaultEnv env(f.data.path());
  env.read_error(EIO);
  StoreCopyOptions options{.env = &env};
  std::vector<CopiedFile> files;
  auto stats = copy_document_stores(f.data.path(), f.out.path(), options, files);
  ASSERT_FALSE(stats.ok());
}

TEST(BackupCopy, ADocumentThatNeverSettlesFailsAfterMaxPasses) {
  Fixture f;
  int n = 0;
  struct Vanishing : Env {
    int* n;
    int open(const char* path, int flags, unsigned mode) override {
      if (std::string_view(path).find("incremental/") != std::string_view::npos) {
        ++*n;
        errno = ENOENT;
        return -1;
      }
      return Env::open(path, flags, mode);
    }
  } env;
  env.n = &n;
  StoreCopyOptions options{.env = &env, .max_passes = 5};
  std::vector<CopiedFile> files;
  auto stats = copy_document_stores(f.data.path(), f.out.path(), options, files);
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.error().message.find("kept changing"), std::string::npos) << stats.error().message;
}

TEST(BackupCopy, AtomicListingSeesEveryEntryOfALargeFolder) {
  TempDir dir;
  // More than one 256 KiB getdents64 buffer holds: the buffer grows.
  constexpr int kFiles = 5000;
  for (int i = 0; i < kFiles; ++i) {
    std::ofstream(dir.path() / (std::string(60, 'a') + std::to_string(i)));
  }
  fs::create_directory(dir.path() / "sub");
  std::vector<Env::Entry> entries;
  ASSERT_EQ(list_folder_atomically(dir.path().c_str(), entries), 0);
  ASSERT_EQ(entries.size(), static_cast<size_t>(kFiles + 1));
  std::set<std::string> names;
  for (const auto& e : entries) {
    names.insert(e.name);
    EXPECT_EQ(e.type, e.name == "sub" ? Env::Entry::kFolder : Env::Entry::kFile);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kFiles + 1));
}

}  // namespace
}  // namespace gm::storage
