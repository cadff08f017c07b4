#include "cli/config_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace gm::cli {
namespace {

namespace fs = std::filesystem;

std::string set(std::string_view text, std::vector<std::pair<std::string, std::string>> values) {
  auto out = set_config_values(text, values);
  EXPECT_TRUE(out.ok()) << out.error().message;
  return out.ok() ? *out : std::string();
}

TEST(SetConfigValues, ReplacesTheAssignmentAndKeepsEveryOtherLine) {
  const std::string text =
      "# settings\n"
      "PORT=3031\n"
      "ATPROTO_DID=did:plc:old\n"
      "\n"
      "DATA_DIR=/srv/data  # where\n";
  EXPECT_EQ(set(text, {{"ATPROTO_DID", "did:plc:new"}}),
            "# settings\n"
            "PORT=3031\n"
            "ATPROTO_DID=did:plc:new\n"
            "\n"
            "DATA_DIR=/srv/data  # where\n");
}

TEST(SetConfigValues, TheLastAssignmentWinsSoItIsTheOneChanged) {
  EXPECT_EQ(set("A=1\nB=2\nA=3\n", {{"A", "4"}}), "A=1\nB=2\nA=4\n");
}

TEST(SetConfigValues, KeepsExportAndQuotedOldValuesGo) {
  EXPECT_EQ(set("export GROUNDMIST_SYNC_HOST=\"old.example\" # note\n", {{"GROUNDMIST_SYNC_HOST", "new.example"}}),
            "export GROUNDMIST_SYNC_HOST=new.example\n");
  EXPECT_EQ(set("  KEY = 'x'\n", {{"KEY", "y"}}), "KEY=y\n");
}

TEST(SetConfigValues, NewKeyGoesAfterItsCommentedExampleAsInThePackagedFile) {
  const std::string text =
      "# The owner: your DID.\n"
      "#ATPROTO_DID=did:plc:abcdefghijklmnopqrstuvwx\n"
      "\n"
      "# The host.\n"
      "# GROUNDMIST_SYNC_HOST=sync.example.com\n"
      "PORT=3031\n";
  EXPECT_EQ(set(text, {{"ATPROTO_DID", "did:plc:aaaabbbbccccddddeeeeffff"}, {"GROUNDMIST_SYNC_HOST", "sync.a.b"}}),
            "# The owner: your DID.\n"
            "#ATPROTO_DID=did:plc:abcdefghijklmnopqrstuvwx\n"
            "ATPROTO_DID=did:plc:aaaabbbbccccddddeeeeffff\n"
            "\n"
            "# The host.\n"
            "# GROUNDMIST_SYNC_HOST=sync.example.com\n"
            "GROUNDMIST_SYNC_HOST=sync.a.b\n"
            "PORT=3031\n");
}

TEST(SetConfigValues, NewKeyOtherwiseAtTheEnd) {
  EXPECT_EQ(set("", {{"A", "1"}, {"B", "2"}}), "A=1\nB=2\n");
  EXPECT_EQ(set("X=1", {{"A", "1"}}), "X=1\nA=1\n");  // a last line without its newline
  EXPECT_EQ(set("# ATPROTO_DIDX=1\n", {{"ATPROTO_DID", "d"}}), "# ATPROTO_DIDX=1\nATPROTO_DID=d\n");
}

TEST(SetConfigValues, KeepsCrlfLines) { EXPECT_EQ(set("A=1\r\nB=2\r\n", {{"A", "5"}}), "A=5\r\nB=2\r\n"); }

TEST(SetConfigValues, RefusesValuesThatWouldNeedQuoting) {
  for (std::string bad : {"", "a b", "a#b", "a\"b", "a'b", "a$b", "a\\b", "a\nB=1", "a`b"}) {
    auto out = set_config_values("A=1\n", {{"A", bad}});
    EXPECT_FALSE(out.ok()) << bad;
  }
  EXPECT_FALSE(set_config_values("", {{"BAD KEY", "1"}}).ok());
  EXPECT_FALSE(set_config_values("", {{"A", std::string(3000, 'a')}}).ok());
  EXPECT_TRUE(set_config_values("", {{"PLC_URL", "http://localhost:2582"}, {"ATPROTO_DID", "did:web:a.b%3A8"}}).ok());
}

TEST(HoldsSecret, SecretKeyAndPasswordsButNotEmptyOnes) {
  EXPECT_TRUE(holds_secret({{"GROUNDMIST_SYNC_SECRET_KEY", "x"}}));
  EXPECT_TRUE(holds_secret({{"ATPROTO_APP_PASSWORD", "x"}}));
  EXPECT_FALSE(holds_secret({{"GROUNDMIST_SYNC_SECRET_KEY", ""}, {"ATPROTO_DID", "did:plc:x"}}));
}

TEST(SettingFlags, OnlyTheFlagsThatStandForSettings) {
  auto flags = setting_flags("--host 127.0.0.1 --trust-proxy --public-host=a.example  --port 443\t--tls-cert /c");
  ASSERT_TRUE(flags.ok()) << flags.error().message;
  std::vector<std::pair<std::string, std::string>> want = {
      {"--public-host", "a.example"}, {"--port", "443"}, {"--tls-cert", "/c"}};
  EXPECT_EQ(*flags, want);
  EXPECT_TRUE(setting_flags("")->empty());
  EXPECT_FALSE(setting_flags("--data").ok());
  EXPECT_FALSE(setting_flags("--data --trust-proxy").ok());
}

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gm-config-file-test-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p.string();
  }
  static mode_t mode_of(const std::string& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    return st.st_mode & 07777;
  }
  static std::string read(const std::string& p) {
    auto t = read_config_text(p);
    return t.ok() ? t->text : "(unreadable)";
  }
  fs::path dir_;
};

TEST_F(ConfigFiles, ChoosesTheFlagThenTheSystemFileThenDotEnv) {
  const std::string system = (dir_ / "system.conf").string();
  ConfigFile c = choose_config_file(std::string("/x/my.conf"), system);
  EXPECT_EQ(c.path, "/x/my.conf");
  EXPECT_TRUE(c.service_file);
  EXPECT_FALSE(c.system);
  c = choose_config_file(std::nullopt, system);
  EXPECT_EQ(c.path, ".env");
  EXPECT_FALSE(c.service_file);
  write("system.conf", "PORT=1\n");
  c = choose_config_file(std::nullopt, system);
  EXPECT_EQ(c.path, system);
  EXPECT_TRUE(c.service_file && c.system);
}

TEST_F(ConfigFiles, ServiceFileAloneWithItsFlagsAndPathsFromItsFolder) {
  const std::string path = write("g.conf",
                                 "ATPROTO_DID=did:plc:aaaabbbbccccddddeeeeffff\n"
                                 "DATA_DIR=data\n"
                                 "GROUNDMIST_SYNC_HOST=a.example\n"
                                 "GROUNDMIST_SYNC_ARGS=\"--host 127.0.0.1 --public-host b.example --tls-key k.pem\"\n");
  auto getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "GROUNDMIST_SYNC_HOST") return "from.environment";
    return std::nullopt;
  };
  auto s = load_settings(ConfigFile{path, true, false}, getenv);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->config.owner_did, "did:plc:aaaabbbbccccddddeeeeffff");
  EXPECT_EQ(s->config.public_host, "b.example");  // the unit's flag wins; the shell's variable is not the service's
  EXPECT_EQ(s->config.data_dir, (dir_ / "data").string());
  EXPECT_EQ(s->config.tls_key_file, (dir_ / "k.pem").string());
  EXPECT_EQ(s->overridden.size(), 2u);
  EXPECT_TRUE(s->file_exists);
}

TEST_F(ConfigFiles, DotEnvModeIsWhatServeReads) {
  const std::string path = write(".env", "GROUNDMIST_SYNC_HOST=a.example\nDATA_DIR=rel\n");
  auto getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "GROUNDMIST_SYNC_HOST") return "from.environment";
    return std::nullopt;
  };
  auto s = load_settings(ConfigFile{path, false, false}, getenv);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->config.public_host, "from.environment");
  EXPECT_EQ(s->config.data_dir, "rel");  // from the working folder, as serve takes it
}

TEST_F(ConfigFiles, SystemFileDefaultsTheDataFolderAsTheUnitDoes) {
  const std::string path = write("system.conf", "PORT=3031\n");
  auto s = load_settings(ConfigFile{path, true, true});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->config.data_dir, kSystemDataDir);
}

TEST_F(ConfigFiles, MissingOrBrokenSettingsAreErrors) {
  auto missing = load_settings(ConfigFile{(dir_ / "none.conf").string(), true, false});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("setup"), std::string::npos) << missing.error().message;
  auto port = load_settings(ConfigFile{write("p.conf", "PORT=http\n"), true, false});
  ASSERT_FALSE(port.ok());
  EXPECT_NE(port.error().message.find("PORT"), std::string::npos);
  auto flag = load_settings(ConfigFile{write("f.conf", "GROUNDMIST_SYNC_ARGS=--port x\n"), true, false});
  EXPECT_FALSE(flag.ok());
}

TEST_F(ConfigFiles, NewFileIsPrivate) {
  const std::string path = (dir_ / "new.conf").string();
  ASSERT_TRUE(write_config_file(path, "A=1\n", false).ok());
  EXPECT_EQ(read(path), "A=1\n");
  EXPECT_EQ(mode_of(path), 0600u);
}

TEST_F(ConfigFiles, ExistingFileKeepsItsModeUnlessItHoldsASecretOthersCouldRead) {
  const std::string shared = write("shared.conf", "A=1\n", 0644);
  ASSERT_TRUE(write_config_file(shared, "A=2\n", false).ok());
  EXPECT_EQ(read(shared), "A=2\n");
  EXPECT_EQ(mode_of(shared), 0644u);
  const std::string packaged = write("packaged.conf", "A=1\n", 0640);
  ASSERT_TRUE(write_config_file(packaged, "A=2\nGROUNDMIST_SYNC_SECRET_KEY=s\n", true).ok());
  EXPECT_EQ(mode_of(packaged), 0640u);
  ASSERT_TRUE(write_config_file(shared, "A=3\nGROUNDMIST_SYNC_SECRET_KEY=s\n", true).ok());
  EXPECT_EQ(mode_of(shared), 0640u);
  // Nothing left beside it.
  for (const auto& e : fs::directory_iterator(dir_)) EXPECT_FALSE(e.path().filename().string().starts_with(".")) << e.path();
}

// Root rewriting another user's file gives the new one that owner and mode through its
// descriptor, before the rename: nothing is done by path afterwards, where a link could
// have been put in its place (review).
TEST_F(ConfigFiles, RootGivesTheNewFileItsOwnerBeforeItTakesThePlace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a file another user's";
  const std::string theirs = write("theirs.conf", "A=1\n", 0640);
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  ASSERT_TRUE(write_config_file(theirs, "A=2\n", false).ok());
  struct stat st {};
  ASSERT_EQ(::stat(theirs.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(read(theirs), "A=2\n");
  EXPECT_TRUE(check_config_writable(theirs).ok());  // root may
}

TEST_F(ConfigFiles, ARelativeNameIsInTheWorkingFolder) {
  const fs::path before = fs::current_path();
  fs::current_path(dir_);
  Status s = write_config_file(".env", "A=1\n", false);
  fs::current_path(before);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(read((dir_ / ".env").string()), "A=1\n");
}

TEST_F(ConfigFiles, ALinkStaysALinkToTheNewText) {
  const std::string real = write("real.conf", "A=1\n", 0644);
  const fs::path link = dir_ / "link.conf";
  fs::create_symlink(real, link);
  ASSERT_TRUE(write_config_file(link.string(), "A=2\n", false).ok());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(read(real), "A=2\n");
}

TEST_F(ConfigFiles, AFolderThatCannotBeWrittenSaysWhatToDo) {
  if (::geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
  const fs::path locked = dir_ / "locked";
  fs::create_directories(locked);
  ::chmod(locked.c_str(), 0500);
  Status s = write_config_file((locked / "x.conf").string(), "A=1\n", false);
  ::chmod(locked.c_str(), 0700);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("--config"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace gm::cli
