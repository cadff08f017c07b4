#include "storage/durable_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <set>

namespace gm::storage {
namespace {
namespace fs = std::filesystem;

class DurableBatchTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gm-durable-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Every file under the folder, relative to it.
  std::set<std::string> files() const {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      if (e.is_regular_file()) out.insert(fs::relative(e.path(), dir_).string());
    }
    return out;
  }
  fs::path dir_;
};

// One file or many, in folders that do not exist yet: nothing shows before commit(),
// everything after, with its content, and no temp file is left.
TEST_P(DurableBatchTest, CommitMakesEveryFileAppearWhole) {
  const size_t n = GetParam();
  std::set<std::string> want;
  {
    DurableBatch batch;
    for (size_t i = 0; i < n; ++i) {
      std::string rel = "d" + std::to_string(i % 3) + "/sub/f" + std::to_string(i);
      Bytes content(i + 1, static_cast<uint8_t>(i));
      ASSERT_TRUE(batch.add(dir_ / rel, content).ok());
      want.insert(rel);
    }
    for (const std::string& f : files()) {
      EXPECT_EQ(fs::path(f).filename().string().rfind(kTempPrefix, 0), 0u) << f << " shows before commit";
    }
    Status s = batch.commit();
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_TRUE(batch.empty());
  }
  EXPECT_EQ(files(), want);
  // The folders it made are private, like the files.
  EXPECT_EQ(fs::status(dir_ / "d0" / "sub").permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(fs::status(dir_ / "d0").permissions() & fs::perms::all, fs::perms::owner_all);
  for (size_t i = 0; i < n; ++i) {
    auto content = read_file(dir_ / ("d" + std::to_string(i % 3) + "/sub/f" + std::to_string(i)));
    ASSERT_TRUE(content.ok() && *content);
    EXPECT_EQ(**content, Bytes(i + 1, static_cast<uint8_t>(i)));
  }
}

TEST_P(DurableBatchTest, UncommittedFilesLeaveNothing) {
  {
    DurableBatch batch;
    for (size_t i = 0; i < GetParam(); ++i) ASSERT_TRUE(batch.add(dir_ / "a" / std::to_string(i), Bytes{1}).ok());
  }
  EXPECT_TRUE(files().empty());
}

TEST(DurableFile, SystemErrorsSayWhatKind) {
  EXPECT_EQ(errno_error("cannot open", "/x", ENOENT).code, ErrorCode::kNotFound);
  EXPECT_EQ(errno_error("cannot write", "/x", ENOSPC).code, ErrorCode::kIo);
  // A file where a folder should be: the write fails, as an I/O error naming the path.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("gm_kind_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(write_file_durably(dir / "file", as_bytes("x")).ok());
  Status s = write_file_durably(dir / "file" / "inside", as_bytes("y"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kIo) << s.error().message;
  std::filesystem::remove_all(dir);
}

// /proc cannot flush folders (EINVAL), as some network and FUSE filesystems cannot:
// that is no error, or nothing could ever be stored there.
TEST(DurableFile, AFolderThatCannotBeFlushedIsNoError) {
  Status s = sync_directory("/proc");
  EXPECT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(sync_directory("/no/such/folder").ok());
}

INSTANTIATE_TEST_SUITE_P(Sizes, DurableBatchTest,
                         ::testing::Values(size_t{1}, size_t{100}));

}  // namespace
}  // namespace gm::storage
