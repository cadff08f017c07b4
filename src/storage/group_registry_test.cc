#include "storage/group_registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace gm::storage {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "gm-groups-XXXXXX").string();
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

std::string group_error(std::string_view g) {
  Status st = validate_group_name(g);
  return st.ok() ? "" : st.error().message;
}

TEST(GroupName, AcceptsNsidPrefixes) {
  for (const char* g : {"xyz.groundmist.library", "xyz.groundmist.notebook.essay", "com.example", "app.bsky.feed.getPost",
                        "a-b.c1.d-2", "XYZ.Groundmist"}) {
    EXPECT_EQ(group_error(g), "") << g;
  }
}

TEST(GroupName, RejectsWithReasons) {
  EXPECT_NE(group_error("").find("empty"), std::string::npos);
  EXPECT_NE(group_error("xyz").find("at least 2 segments"), std::string::npos);
  EXPECT_NE(group_error("xyz..library").find("segment 2 is empty"), std::string::npos);
  EXPECT_NE(group_error(".xyz.a").find("segment 1 is empty"), std::string::npos);
  EXPECT_NE(group_error("xyz.a.").find("segment 3 is empty"), std::string::npos);
  EXPECT_NE(group_error("1xyz.a").find("(the first) starts with a digit"), std::string::npos);
  EXPECT_EQ(group_error("xyz.1a"), "");  // digits are fine after the first segment
  EXPECT_NE(group_error("xyz.-a").find("starts or ends with '-'"), std::string::npos);
  EXPECT_NE(group_error("xyz.a/b").find("only ASCII letters, digits and '-'"), std::string::npos);
  EXPECT_NE(group_error("xyz.a_b").find("only ASCII letters"), std::string::npos);
  EXPECT_NE(group_error("xyz.\xc3\xa9t\xc3\xa9").find("only ASCII letters"), std::string::npos);
  EXPECT_NE(group_error("xyz.a*").find("only ASCII letters"), std::string::npos);
  EXPECT_NE(group_error("xyz." + std::string(64, 'a')).find("longer than 63"), std::string::npos);
  std::string long_name = "xyz";
  while (long_name.size() <= 317) long_name += ".abcdefgh";
  EXPECT_NE(group_error(long_name).find("longer than 317"), std::string::npos);
  EXPECT_EQ(group_error("xyz.a*"),
            "invalid group name \"xyz.a*\": segment 2 \"a*\" may contain only ASCII letters, digits and '-' "
            "(expected an NSID prefix such as xyz.groundmist.library)");
}

TEST(GroupName, FolderMapping) {
  EXPECT_EQ(group_relative_folder("xyz.groundmist.library"), fs::path("xyz/groundmist/library"));
}

TEST(GroupRegistry, CreatesAndRediscoversGroups) {
  TempDir tmp;
  fs::path data = tmp.path() / "data";
  std::string storage_id;
  {
    auto reg = GroupRegistry::open(data);
    ASSERT_TRUE(reg.ok()) << reg.error().message;
    EXPECT_TRUE((*reg)->groups().empty());
    auto store = (*reg)->open_group("xyz.groundmist.library");
    ASSERT_TRUE(store.ok()) << store.error().message;
    EXPECT_EQ((*store)->dir(), data / "xyz" / "groundmist" / "library");
    EXPECT_TRUE(fs::is_regular_file(data / "xyz/groundmist/library/st/orage-adapter-id"));
    storage_id = (*store)->storage_id();
    auto same = (*reg)->open_group("xyz.groundmist.library");
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(same->get(), store->get());  // one store per group
    ASSERT_TRUE((*reg)->open_group("xyz.groundmist.notebook.essay").ok());
    ASSERT_TRUE((*store)->save({"3Rvncn6vGfW9LAndSNbqedrx1V2g", "snapshot", "h"}, Bytes{1, 2, 3}).ok());
  }
  auto reg = GroupRegistry::open(data.string() + "/");
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  EXPECT_EQ((*reg)->groups(), (std::vector<std::string>{"xyz.groundmist.library", "xyz.groundmist.notebook.essay"}));
  auto store = (*reg)->open_group("xyz.groundmist.library", /*create=*/false);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->storage_id(), storage_id);
  EXPECT_EQ((*store)->load_range({"3Rvncn6vGfW9LAndSNbqedrx1V2g"})->size(), 1u);
  auto absent = (*reg)->open_group("xyz.other.app", /*create=*/false);
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.error().message.find("no group xyz.other.app"), std::string::npos);
}

TEST(GroupRegistry, RefusesNestedGroups) {
  TempDir tmp;
  auto reg = GroupRegistry::open(tmp.path());
  ASSERT_TRUE(reg.ok());
  ASSERT_TRUE((*reg)->open_group("xyz.groundmist.library").ok());
  auto inner = (*reg)->open_group("xyz.groundmist.library.books");
  ASSERT_FALSE(inner.ok());
  EXPECT_NE(inner.error().message.find("would lie inside the folder of existing group xyz.groundmist.library"),
            std::string::npos)
      << inner.error().message;
  auto outer = (*reg)->open_group("xyz.groundmist");
  ASSERT_FALSE(outer.ok());
  EXPECT_NE(outer.error().message.find("would contain the folder of existing group xyz.groundmist.library"),
            std::string::npos)
      << outer.error().message;
  auto case_variant = (*reg)->open_group("xyz.Groundmist.library");
  ASSERT_FALSE(case_variant.ok());
  EXPECT_NE(case_variant.error().message.find("differs only in letter case"), std::string::npos);
  // Siblings sharing a prefix string but not a folder are fine.
  EXPECT_TRUE((*reg)->open_group("xyz.groundmist.libraryx").ok());
  EXPECT_TRUE((*reg)->open_group("xyz.groundmist.editor").ok());
  EXPECT_FALSE((*reg)->open_group("not/a.group").ok());
  EXPECT_FALSE(fs::exists(tmp.path() / "xyz/groundmist/library/books"));
}

TEST(GroupRegistry, OverlapsAlreadyOnDiskRefuseBoth) {
  TempDir tmp;
  // As the unvalidated prototype could have left them.
  for (const char* f : {"xyz/groundmist/st/orage-adapter-id", "xyz/groundmist/library/st/orage-adapter-id",
                        "com/example/app/st/orage-adapter-id"}) {
    fs::create_directories((tmp.path() / f).parent_path());
    std::ofstream(tmp.path() / f) << "11111111-2222-4333-8444-555555555555";
  }
  auto reg = GroupRegistry::open(tmp.path());
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  EXPECT_EQ((*reg)->groups(), (std::vector<std::string>{"com.example.app", "xyz.groundmist", "xyz.groundmist.library"}));
  auto a = (*reg)->open_group("xyz.groundmist");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("contains the folder of group xyz.groundmist.library"), std::string::npos)
      << a.error().message;
  auto b = (*reg)->open_group("xyz.groundmist.library");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("lies inside the folder of group xyz.groundmist"), std::string::npos);
  EXPECT_TRUE((*reg)->open_group("com.example.app").ok());
}

TEST(GroupRegistry, NestedGroupWithTwoCharacterSegmentIsFound) {
  TempDir tmp;
  // "ab" inside the store xyz.groundmist looks like a document shard, but holds a store.
  for (const char* f : {"xyz/groundmist/st/orage-adapter-id", "xyz/groundmist/ab/st/orage-adapter-id",
                        "xyz/groundmist/cd/efghijklmnopqrstuvwxyz12/incremental/x"}) {
    fs::create_directories((tmp.path() / f).parent_path());
    std::ofstream(tmp.path() / f) << "11111111-2222-4333-8444-555555555555";
  }
  auto reg = GroupRegistry::open(tmp.path());
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  EXPECT_EQ((*reg)->groups(), (std::vector<std::string>{"xyz.groundmist", "xyz.groundmist.ab"}));
  EXPECT_FALSE((*reg)->open_group("xyz.groundmist").ok());
}

TEST(GroupRegistry, StoreCreatedBehindItsBackIsNoticed) {
  TempDir tmp;
  auto reg = GroupRegistry::open(tmp.path());
  ASSERT_TRUE(reg.ok());
  // Another server creates a store after we started.
  fs::create_directories(tmp.path() / "xyz/groundmist/st");
  std::ofstream(tmp.path() / "xyz/groundmist/st/orage-adapter-id") << "x-y";
  auto inner = (*reg)->open_group("xyz.groundmist.library");
  ASSERT_FALSE(inner.ok());
  EXPECT_NE(inner.error().message.find("would lie inside the store at"), std::string::npos);
  fs::create_directories(tmp.path() / "com/example/app/st");
  std::ofstream(tmp.path() / "com/example/app/st/orage-adapter-id") << "x-y";
  auto outer = (*reg)->open_group("com.example");
  ASSERT_FALSE(outer.ok());
  EXPECT_NE(outer.error().message.find("would contain the store at"), std::string::npos);
}

TEST(GroupRegistry, RefusesADataFolderThatIsItselfAStore) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "st");
  std::ofstream(tmp.path() / "st/orage-adapter-id") << "x-y";
  auto reg = GroupRegistry::open(tmp.path());
  ASSERT_FALSE(reg.ok());
  EXPECT_NE(reg.error().message.find("is itself an automerge-repo store"), std::string::npos);
}

TEST(GroupRegistry, QuarantineGoesUnderServerState) {
  TempDir tmp;
  std::vector<StorageProblem> problems;
  GroupRegistry::Options opts;
  opts.report = [&](const StorageProblem& p) { problems.push_back(p); };
  auto reg = GroupRegistry::open(tmp.path(), opts);
  ASSERT_TRUE(reg.ok());
  auto store = (*reg)->open_group("xyz.groundmist.library");
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->save({"3Rvncn6vGfW9LAndSNbqedrx1V2g", "snapshot", "h"}, Bytes{1}).ok());
  ASSERT_TRUE((*store)->quarantine({"3Rvncn6vGfW9LAndSNbqedrx1V2g", "snapshot", "h"}, "bad chunk").ok());
  ASSERT_EQ(problems.size(), 1u);
  ASSERT_TRUE(problems[0].moved_to.has_value());
  fs::path expected_prefix = tmp.path() / ".groundmist/quarantine/xyz.groundmist.library/3R";
  EXPECT_EQ(problems[0].moved_to->string().rfind(expected_prefix.string(), 0), 0u) << problems[0].moved_to->string();
  // The state folder is never taken for a group.
  auto again = GroupRegistry::open(tmp.path());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->groups(), std::vector<std::string>{"xyz.groundmist.library"});
}

}  // namespace
}  // namespace gm::storage
