#include "storage/document_store.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "storage/durable_file.h"
#include "util/hex.h"
#include "util/sha256.h"

namespace gm::storage {
namespace {
namespace fs = std::filesystem;

constexpr const char* kDoc = "2JvEZqcUdhg7statCjEBnbhyqbTt";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "gm-store-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string sha_hex(ByteView b) { return to_hex(sha256(b)); }

void write_raw(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

struct Fixture : ::testing::Test {
  TempDir tmp;
  fs::path dir = tmp.path() / "xyz" / "groundmist" / "library";
  fs::path quarantine = tmp.path() / ".groundmist" / "quarantine" / "xyz.groundmist.library";
  std::vector<StorageProblem> problems;

  std::unique_ptr<DocumentStore> open() {
    StoreOptions opts;
    opts.quarantine_dir = quarantine;
    opts.report = [this](const StorageProblem& p) { problems.push_back(p); };
    auto store = DocumentStore::open(dir, opts);
    EXPECT_TRUE(store.ok()) << store.error().message;
    return store.ok() ? std::move(*store) : nullptr;
  }
};

TEST(StorageKey, NodeFsPathMapping) {
  EXPECT_EQ(key_to_relative_path({"storage-adapter-id"}).value(), fs::path("st/orage-adapter-id"));
  EXPECT_EQ(key_to_relative_path({kDoc, "snapshot", "abc"}).value(),
            fs::path("2J/vEZqcUdhg7statCjEBnbhyqbTt/snapshot/abc"));
  EXPECT_EQ(relative_path_to_key("2J/vEZqcUdhg7statCjEBnbhyqbTt/incremental/ff").value(),
            (StorageKey{kDoc, "incremental", "ff"}));
  EXPECT_EQ(relative_path_to_key("st/orage-adapter-id").value(), StorageKey{"storage-adapter-id"});
}

TEST(StorageKey, RejectsUnsafeKeys) {
  EXPECT_FALSE(validate_key({}).ok());
  EXPECT_FALSE(validate_key({"ab"}).ok());
  EXPECT_FALSE(validate_key({kDoc, ".."}).ok());
  EXPECT_FALSE(validate_key({kDoc, ".tmp-x"}).ok());
  EXPECT_FALSE(validate_key({kDoc, "a/b"}).ok());
  EXPECT_FALSE(validate_key({kDoc, ""}).ok());
  EXPECT_FALSE(validate_key({"../etc"}).ok());
  EXPECT_EQ(validate_key({"ab"}).error().message,
            "first key element \"ab\" is shorter than 3 characters (it is split after 2 into two folders)");
  EXPECT_FALSE(relative_path_to_key("abc/def").ok());
  EXPECT_FALSE(relative_path_to_key("ab").ok());
}

TEST_F(Fixture, StorageIdIsCreatedOnceAndKept) {
  std::string id;
  {
    auto store = open();
    id = store->storage_id();
  }
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  std::ifstream in(dir / "st" / "orage-adapter-id");
  std::string on_disk((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(on_disk, id);
  auto again = open();
  EXPECT_EQ(again->storage_id(), id);
  EXPECT_TRUE(problems.empty());
}

// The registry of checked snapshots: kept across opens, forgotten with the file, not
// a document key (no range lists it), rewritten once it holds mostly removed keys, and
// junk in it ignored.
TEST_F(Fixture, VerifiedSnapshotsAreRememberedUntilRemoved) {
  const StorageKey a = snapshot_key(kDoc, {std::string(64, 'a')}), b = snapshot_key(kDoc, {std::string(64, 'b')});
  const std::string pa = DocumentStore::fingerprint(bytes_of("a")), pb = DocumentStore::fingerprint(bytes_of("b"));
  const StorageKey c = {kDoc, "incremental", std::string(64, 'c')};
  {
    auto store = open();
    EXPECT_FALSE(store->is_verified(a, pa));
    store->set_verified(a, pa);
    store->set_verified(b, pb);
    store->set_verified(c, pa);  // not a snapshot: ignored
    EXPECT_TRUE(store->is_verified(a, pa));
    EXPECT_FALSE(store->is_verified(a, pb));  // another file under that name
  }
  {
    auto store = open();
    EXPECT_TRUE(store->is_verified(a, pa));
    EXPECT_TRUE(store->is_verified(b, pb));
    EXPECT_FALSE(store->is_verified(c, pa));
    ASSERT_TRUE(store->remove(a).ok());
    EXPECT_FALSE(store->is_verified(a, pa));
  }
  // Forgotten for good: after a restart too.
  auto store = open();
  EXPECT_FALSE(store->is_verified(a, pa));
  store->set_verified(b, pb);
  ASSERT_TRUE(store->remove_range({kDoc}).ok());
  EXPECT_FALSE(store->is_verified(b, pb));
  EXPECT_FALSE(open()->is_verified(b, pb));
  auto ids = store->list_document_ids();
  ASSERT_TRUE(ids.ok());
  EXPECT_TRUE(ids->empty());

  // Many snapshots come and go: the file stays near the size of what it lists.
  for (int i = 0; i < 5000; ++i) {
    const StorageKey k = snapshot_key(kDoc, {sha_hex(bytes_of(std::to_string(i)))});
    store->set_verified(k, pa);
    ASSERT_TRUE(store->remove(k).ok());
  }
  store->set_verified(a, pa);
  EXPECT_LT(fs::file_size(dir / ".verified-snapshots"), 3000u * 200);
  std::ofstream(dir / ".verified-snapshots", std::ios::app)
      << "+../../etc/passwd x\n\n-\n+" << std::string(5000, 'x') << "\n";
  auto reopened = open();
  EXPECT_TRUE(reopened->is_verified(a, pa));
  EXPECT_FALSE(reopened->is_verified({"..", "..", "etc"}, "x"));
  EXPECT_TRUE(problems.empty());
}

// Lines written in full by versions before 0.11 ("+key fingerprint", "-prefix") are
// still read.
TEST_F(Fixture, AnOlderListOfCheckedSnapshotsIsRead) {
  const StorageKey a = snapshot_key(kDoc, {std::string(64, 'a')}), b = snapshot_key(kDoc, {std::string(64, 'b')});
  const StorageKey c = snapshot_key("2Ab9ckaz9qmMh7EPgvi2MGuPB1ZN", {std::string(64, 'c')});
  const std::string pa = DocumentStore::fingerprint(bytes_of("a"));
  fs::create_directories(dir);
  auto line = [](const StorageKey& k, const std::string& print) { return "+" + k[0] + "/" + k[1] + "/" + k[2] + " " + print + "\n"; };
  std::ofstream(dir / ".verified-snapshots") << line(a, pa) << line(b, pa) << "-" << a[0] << "/" << a[1] << "/" << a[2]
                                             << "\n" << line(c, pa);
  auto store = open();
  EXPECT_FALSE(store->is_verified(a, pa));
  EXPECT_TRUE(store->is_verified(b, pa));
  EXPECT_TRUE(store->is_verified(c, pa));
  std::ofstream(dir / ".verified-snapshots", std::ios::app) << "-" << kDoc << "\n";
  auto again = open();
  EXPECT_FALSE(again->is_verified(b, pa));
  EXPECT_TRUE(again->is_verified(c, pa));
}

// A list that cannot be written is said once (the server works on, checking more).
TEST_F(Fixture, AnUnwritableListOfCheckedSnapshotsIsSaidOnce) {
  StoreOptions opts;
  opts.report = [this](const StorageProblem& p) { problems.push_back(p); };
  write_raw(tmp.path() / "not-a-folder", "x");
  opts.verified_file = tmp.path() / "not-a-folder" / "verified";
  auto store = DocumentStore::open(dir, opts);
  ASSERT_TRUE(store.ok());
  const StorageKey a = snapshot_key(kDoc, {std::string(64, 'a')}), b = snapshot_key(kDoc, {std::string(64, 'b')});
  (*store)->set_verified(a, "p");
  (*store)->set_verified(b, "p");
  EXPECT_TRUE((*store)->is_verified(a, "p"));  // for this run
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].reason.find("read in full again"), std::string::npos) << problems[0].reason;
}

TEST_F(Fixture, SaveLoadRangeRemove) {
  auto store = open();
  Bytes snap = bytes_of("snapshot-bytes");
  Bytes inc = bytes_of("incremental-bytes");
  std::string inc_hash = sha_hex(inc);
  ASSERT_TRUE(store->save({kDoc, "snapshot", "h1"}, snap).ok());
  ASSERT_TRUE(store->save({kDoc, "incremental", inc_hash}, inc).ok());
  ASSERT_TRUE(store->save({"3Rvncn6vGfW9LAndSNbqedrx1V2g", "snapshot", "h2"}, snap).ok());
  EXPECT_TRUE(fs::is_regular_file(dir / "2J" / "vEZqcUdhg7statCjEBnbhyqbTt" / "snapshot" / "h1"));

  auto loaded = store->load({kDoc, "snapshot", "h1"});
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ(**loaded, snap);
  auto missing = store->load({kDoc, "snapshot", "nope"});
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto range = store->load_range({kDoc});
  ASSERT_TRUE(range.ok()) << range.error().message;
  ASSERT_EQ(range->size(), 2u);
  EXPECT_EQ((*range)[0].first, (StorageKey{kDoc, "incremental", inc_hash}));
  EXPECT_EQ((*range)[0].second, inc);
  EXPECT_EQ((*range)[1].first, (StorageKey{kDoc, "snapshot", "h1"}));
  auto snaps = store->load_range({kDoc, "snapshot"});
  ASSERT_TRUE(snaps.ok());
  EXPECT_EQ(snaps->size(), 1u);

  auto ids = store->list_document_ids();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{kDoc, "3Rvncn6vGfW9LAndSNbqedrx1V2g"}));

  // Overwrite is atomic and leaves no temp file behind.
  ASSERT_TRUE(store->save({kDoc, "snapshot", "h1"}, bytes_of("v2")).ok());
  EXPECT_EQ(**store->load({kDoc, "snapshot", "h1"}), bytes_of("v2"));
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
  }

  ASSERT_TRUE(store->remove({kDoc, "snapshot", "h1"}).ok());
  ASSERT_TRUE(store->remove({kDoc, "snapshot", "h1"}).ok());  // absent: fine
  // Several at once, absent ones included.
  for (const char* h : {"h2", "h3", "h4"}) ASSERT_TRUE(store->save({kDoc, "incremental", h}, Bytes{1}).ok());
  const std::vector<StorageKey> some = {{kDoc, "incremental", "h2"}, {kDoc, "snapshot", "h1"}, {kDoc, "incremental", "h4"}};
  ASSERT_TRUE(store->remove_keys(some).ok());
  auto left = store->list_range({kDoc, "incremental"});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, (std::vector<StorageKey>{{kDoc, "incremental", inc_hash}, {kDoc, "incremental", "h3"}}));
  EXPECT_EQ(store->load_range({kDoc})->size(), 2u);
  ASSERT_TRUE(store->remove_range({kDoc}).ok());
  EXPECT_TRUE(store->load_range({kDoc})->empty());
  ASSERT_TRUE(store->remove_range({kDoc}).ok());  // absent: fine
  EXPECT_FALSE(fs::exists(dir / "2J" / "vEZqcUdhg7statCjEBnbhyqbTt"));
  EXPECT_TRUE(problems.empty());
}

// Fault injection: what a crash mid-save or mid-remove_range leaves behind.
TEST_F(Fixture, LeftoverTempFilesAreIgnoredAndCleanedAtOpen) {
  { auto store = open(); ASSERT_TRUE(store->save({kDoc, "snapshot", "h1"}, bytes_of("good")).ok()); }
  fs::path folder = dir / "2J" / "vEZqcUdhg7statCjEBnbhyqbTt" / "snapshot";
  write_raw(folder / ".tmp-h2-0123456789abcdef", "half a chu");
  write_raw(dir / "2J" / ".removing-vEZq-77" / "snapshot" / "x", "old");
  // Where versions before the `.swept` marker left them: looked for once, when the
  // marker is missing.
  fs::remove(dir / ".tmp" / ".swept");
  open();  // open() cleans...
  EXPECT_FALSE(fs::exists(folder / ".tmp-h2-0123456789abcdef"));
  EXPECT_FALSE(fs::exists(dir / "2J" / ".removing-vEZq-77"));
  // ...and load_range never returns one even if it appears while running.
  auto store = open();
  write_raw(folder / ".tmp-h3-0123", "partial");
  auto range = store->load_range({kDoc});
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->size(), 1u);
  EXPECT_EQ((*range)[0].first, (StorageKey{kDoc, "snapshot", "h1"}));
  EXPECT_TRUE(problems.empty());
}

TEST_F(Fixture, TruncatedIncrementalIsSetAsideOthersKeepLoading) {
  auto store = open();
  Bytes good = bytes_of("change chunk one");
  Bytes bad = bytes_of("change chunk two, the long one");
  std::string good_hash = sha_hex(good), bad_hash = sha_hex(bad);
  ASSERT_TRUE(store->save({kDoc, "incremental", good_hash}, good).ok());
  ASSERT_TRUE(store->save({kDoc, "incremental", bad_hash}, bad).ok());
  ASSERT_TRUE(store->save({kDoc, "snapshot", "s"}, bytes_of("snap")).ok());
  // Truncate one file, as a crash of a non-atomic writer (or a full disk) would.
  fs::path bad_path = dir / "2J" / "vEZqcUdhg7statCjEBnbhyqbTt" / "incremental" / bad_hash;
  fs::resize_file(bad_path, 7);

  auto range = store->load_range({kDoc});
  ASSERT_TRUE(range.ok()) << range.error().message;
  ASSERT_EQ(range->size(), 2u);
  EXPECT_EQ((*range)[0].first[2], good_hash);
  EXPECT_EQ((*range)[1].first[1], "snapshot");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, bad_path);
  EXPECT_NE(problems[0].reason.find("truncated or damaged"), std::string::npos) << problems[0].reason;
  ASSERT_TRUE(problems[0].moved_to.has_value());
  EXPECT_TRUE(fs::exists(*problems[0].moved_to));
  EXPECT_EQ(problems[0].moved_to->string().rfind(quarantine.string(), 0), 0u) << problems[0].moved_to->string();
  EXPECT_EQ(fs::file_size(*problems[0].moved_to), 7u);
  EXPECT_FALSE(fs::exists(bad_path));
  // Loading again is quiet: the damaged file is gone from the store.
  EXPECT_EQ(store->load_range({kDoc})->size(), 2u);
  EXPECT_EQ(problems.size(), 1u);
}

TEST_F(Fixture, CallerCanQuarantineACorruptSnapshot) {
  auto store = open();
  ASSERT_TRUE(store->save({kDoc, "snapshot", "s"}, bytes_of("not a chunk")).ok());
  ASSERT_TRUE(store->quarantine({kDoc, "snapshot", "s"}, "document chunk: bad magic bytes").ok());
  EXPECT_TRUE(store->load_range({kDoc})->empty());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].reason, "document chunk: bad magic bytes");
  EXPECT_FALSE(store->quarantine({kDoc, "snapshot", "s"}, "again").ok());  // nothing left to move
}

// What cannot be read is not known to be damaged: the call fails, nothing is moved,
// and once the cause is gone the same files load.
TEST_F(Fixture, UnreadableFilesFailTheLoadAndStayInPlace) {
  auto store = open();
  ASSERT_TRUE(store->save({kDoc, "snapshot", "ok"}, bytes_of("fine")).ok());
  fs::path snapshots = dir / "2J" / "vEZqcUdhg7statCjEBnbhyqbTt" / "snapshot";
  fs::path odd = snapshots / "link";
  fs::create_symlink("/etc/hostname", odd);
  auto loaded = store->load({kDoc, "snapshot", "link"});
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("symbolic link"), std::string::npos) << loaded.error().message;
  EXPECT_TRUE(fs::is_symlink(odd));
  // A listing skips what is not a regular file, saying so.
  EXPECT_EQ(store->load_range({kDoc})->size(), 1u);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].reason.find("not a regular file"), std::string::npos) << problems[0].reason;
  EXPECT_FALSE(problems[0].moved_to.has_value());

  // No file descriptors left (a server with many connections): neither listing nor
  // reading may pass for "no such files".
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<int> fds;
  struct rlimit low = saved;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  for (int fd; (fd = ::dup(0)) >= 0;) fds.push_back(fd);
  auto listed = store->load_range({kDoc});
  auto read = store->load({kDoc, "snapshot", "ok"});
  for (int fd : fds) ::close(fd);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_FALSE(listed.ok());
  EXPECT_NE(listed.error().message.find("cannot list folder"), std::string::npos) << listed.error().message;
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("cannot open"), std::string::npos) << read.error().message;
  EXPECT_EQ(problems.size(), 1u);
  EXPECT_TRUE(fs::exists(snapshots / "ok"));
  auto again = store->load_range({kDoc});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->size(), 1u);
}

// Temp files are written out of the document folders (npm's NodeFS adapter reads every
// file in them): a crash mid-write leaves nothing there for it to trip over.
TEST_F(Fixture, TempFilesAreWrittenOutsideTheDocumentFolders) {
  auto store = open();
  Bytes value = bytes_of("change chunk");
  auto pending = store->prepare({kDoc, "incremental", sha_hex(value)}, value);
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  std::vector<PendingFile> files;
  files.push_back(std::move(*pending));
  fs::path incremental = dir / "2J" / "vEZqcUdhg7statCjEBnbhyqbTt" / "incremental";
  size_t temps = 0;
  for (const auto& e : fs::directory_iterator(store->temp_dir())) temps += e.path().filename().string().rfind(".tmp-", 0) == 0;
  EXPECT_EQ(temps, 1u);
  EXPECT_TRUE(!fs::exists(incremental) || fs::is_empty(incremental));
  ASSERT_TRUE(DurableBatch::commit(files).ok());
  EXPECT_TRUE(fs::exists(incremental / sha_hex(value)));
  auto leftovers = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(store->temp_dir())) n += e.path().filename() != ".swept";
    return n;
  };
  EXPECT_EQ(leftovers(), 0u);
  // A leftover there is cleaned at every open, and so is a range being removed.
  write_raw(store->temp_dir() / ".tmp-h9-0123", "half");
  write_raw(store->temp_dir() / ".removing-vEZq-77" / "snapshot" / "x", "old");
  open();
  EXPECT_EQ(leftovers(), 0u);
}

TEST_F(Fixture, DamagedStorageIdIsReplaced) {
  write_raw(dir / "st" / "orage-adapter-id", "");
  auto store = open();
  EXPECT_EQ(store->storage_id().size(), 36u);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].reason.find("storage-adapter-id"), std::string::npos);
}

TEST_F(Fixture, ConcurrentSavesOfDifferentKeys) {
  auto store = open();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        Bytes b = bytes_of("t" + std::to_string(t) + "-" + std::to_string(i));
        EXPECT_TRUE(store->save({kDoc, "incremental", sha_hex(b)}, b).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store->load_range({kDoc, "incremental"})->size(), 80u);
  EXPECT_TRUE(problems.empty());
}

}  // namespace
}  // namespace gm::storage

namespace gm::storage {
namespace {

// testdata/nodefs was written by npm automerge-repo 2.5.6 + NodeFSStorageAdapter with
// tests/interop/tools/nodefs_write.mjs (a snapshot, then an incremental save).
TEST(NodeFsCompatibility, ReadsAFolderWrittenByTheJsAdapter) {
  TempDir tmp;
  fs::path dir = tmp.path() / "store";
  fs::copy(fs::path(GM_SOURCE_DIR) / "src/storage/testdata/nodefs", dir, fs::copy_options::recursive);
  std::vector<StorageProblem> problems;
  StoreOptions opts;
  opts.report = [&](const StorageProblem& p) { problems.push_back(p); };
  auto store = DocumentStore::open(dir, opts);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->storage_id(), "8b095f55-c21b-47ac-bfb1-e47069c5980e");
  const std::string doc = "3tpJCdHtrNEXHEttBfDvDrZPEETr";
  EXPECT_EQ((*store)->list_document_ids().value(), std::vector<std::string>{doc});
  auto range = (*store)->load_range({doc});
  ASSERT_TRUE(range.ok()) << range.error().message;
  ASSERT_EQ(range->size(), 2u);
  EXPECT_EQ((*range)[0].first,
            (StorageKey{doc, "incremental", "73ddb63af28d859d18620bfa5312e2de0fa446abbe693e9ab6978892a22843aa"}));
  EXPECT_EQ((*range)[0].second.size(), 102u);
  EXPECT_EQ((*range)[1].first,
            (StorageKey{doc, "snapshot", "6725092c053e70a79b551bae6ac487cf4c3c547121966ffea011be337fb18c87"}));
  EXPECT_EQ((*range)[1].second.size(), 1535u);
  // Both are automerge chunks (magic 85 6f 4a 83).
  EXPECT_EQ(to_hex(ByteView((*range)[1].second.data(), 4)), "856f4a83");
  EXPECT_TRUE(problems.empty());  // in particular the incremental's name matches its SHA-256
  // The names are what incremental_key/snapshot_key compute (heads from A.getHeads).
  EXPECT_EQ(incremental_key(doc, (*range)[0].second), (*range)[0].first);
  EXPECT_EQ(snapshot_key(doc, {"d758c0677b89235252954b6cf9f7a4d980d9311072a3b9a1e3ef358876a811fe"}), (*range)[1].first);
  EXPECT_EQ(sync_state_key(doc, "8b095f55-c21b-47ac-bfb1-e47069c5980e"),
            (StorageKey{doc, "sync-state", "8b095f55-c21b-47ac-bfb1-e47069c5980e"}));
}

}  // namespace
}  // namespace gm::storage
