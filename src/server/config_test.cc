#include "server/config.h"

#include <gtest/gtest.h>

namespace gm::server {
namespace {

TEST(Dotenv, ParsesLikeDotenv) {
  EnvMap env = parse_dotenv(
      "# comment\n"
      "NODE_ENV=production\n"
      "export PORT = 4000 # trailing comment\r\n"
      "ATPROTO_DID=\"did:plc:abc\"\n"
      "SINGLE='a # not a comment'\n"
      "MULTI=\"line1\\nline2\"\n"
      "EMPTY=\n"
      "not a pair\n"
      "PORT=4001\n");
  EXPECT_EQ(env["NODE_ENV"], "production");
  EXPECT_EQ(env["PORT"], "4001");  // the later line wins
  EXPECT_EQ(env["ATPROTO_DID"], "did:plc:abc");
  EXPECT_EQ(env["SINGLE"], "a # not a comment");
  EXPECT_EQ(env["MULTI"], "line1\nline2");
  EXPECT_EQ(env["EMPTY"], "");
  EXPECT_EQ(env.count("not"), 0u);
}

// dotenv 16's rules, checked against its parse regex: a quoted value ends at its first
// closing quote (not one escaped by a backslash) if only a comment follows, and a
// comment may hold quotes too; otherwise the value is unquoted, less an outer pair.
TEST(Dotenv, QuotedValuesEndAtTheirClosingQuote) {
  EnvMap env = parse_dotenv(
      "DATA_DIR=\"/srv/data\" # was \"old\"\n"
      "NOTE='abc' # it's\n"
      "ESCAPED=\"a\\\"b\"\n"
      "JUNK=\"a\" b\n"
      "CR=\"x\\ry\"\n"
      "APOSTROPHE='/srv/bob's data'\n"
      "INNER=\"say \"hi\"\"\n"
      "WINDOWS=\"C:\\data\\\"\n");
  EXPECT_EQ(env["DATA_DIR"], "/srv/data");
  EXPECT_EQ(env["NOTE"], "abc");
  EXPECT_EQ(env["ESCAPED"], "a\\\"b");
  EXPECT_EQ(env["JUNK"], "\"a\" b");
  EXPECT_EQ(env["CR"], "x\ry");
  // Quotes inside: the value runs to the end (or a #), and the outer pair comes off.
  EXPECT_EQ(env["APOSTROPHE"], "/srv/bob's data");
  EXPECT_EQ(env["INNER"], "say \"hi\"");
  EXPECT_EQ(env["WINDOWS"], "C:\\data\\");
}

TEST(Dotenv, MissingFileIsEmpty) {
  auto env = read_dotenv_file("/nonexistent/dir/.env");
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_TRUE(env->empty());
}

Environment::Getenv fake_env(EnvMap vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Config, RealEnvironmentWinsOverDotenv) {
  Environment env(EnvMap{{"PORT", "1111"}, {"DATA_DIR", "/from/dotenv"}}, fake_env({{"PORT", "2222"}}));
  ServerConfig config;
  ASSERT_TRUE(apply_environment(env, config).ok());
  EXPECT_EQ(config.port, 2222);
  EXPECT_EQ(config.data_dir, "/from/dotenv");
  EXPECT_TRUE(config.owner_did.empty());
}

TEST(Config, Defaults) {
  Environment env(EnvMap{}, fake_env({}));
  ServerConfig config;
  ASSERT_TRUE(apply_environment(env, config).ok());
  EXPECT_EQ(config.port, 3031);
  EXPECT_EQ(config.data_dir, ".data");
}

TEST(Config, BadPortIsAnError) {
  for (const char* bad : {"http", "70000", "-1", "12ab"}) {
    Environment env(EnvMap{{"PORT", bad}}, fake_env({}));
    ServerConfig config;
    Status s = apply_environment(env, config);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.error().message.find(bad), std::string::npos) << s.error().message;
    // Not read when a --port flag wins, or for a command that does not listen.
    EXPECT_TRUE(apply_environment(env, config, /*read_port=*/false).ok());
  }
}

TEST(Config, TlsFilesFromTheEnvironmentBothOrNeither) {
  Environment env(EnvMap{{"GROUNDMIST_SYNC_TLS_KEY", "/etc/k.pem"}},
                  fake_env({{"GROUNDMIST_SYNC_TLS_CERT", "/etc/c.pem"}}));
  ServerConfig config;
  ASSERT_TRUE(apply_environment(env, config).ok());
  EXPECT_EQ(config.tls_cert_file, "/etc/c.pem");
  EXPECT_EQ(config.tls_key_file, "/etc/k.pem");
  EXPECT_TRUE(check_tls_files(config).ok());
  EXPECT_TRUE(check_tls_files(ServerConfig{}).ok());

  ServerConfig cert_only = config;
  cert_only.tls_key_file.clear();
  ASSERT_FALSE(check_tls_files(cert_only).ok());
  EXPECT_NE(check_tls_files(cert_only).error().message.find("--tls-key"), std::string::npos);
  ServerConfig key_only = config;
  key_only.tls_cert_file.clear();
  ASSERT_FALSE(check_tls_files(key_only).ok());
  EXPECT_NE(check_tls_files(key_only).error().message.find("--tls-cert"), std::string::npos);
}

TEST(Config, HostWithoutOwnerIsLoopbackOnly) {
  ServerConfig config;
  ASSERT_TRUE(resolve_host(config).ok());
  EXPECT_EQ(config.host, "127.0.0.1");

  ServerConfig public_host;
  public_host.host = "0.0.0.0";
  EXPECT_FALSE(resolve_host(public_host).ok());

  ServerConfig bracketed;
  bracketed.host = "[::1]";
  ASSERT_TRUE(resolve_host(bracketed).ok());
  EXPECT_EQ(bracketed.host, "::1");

  ServerConfig owned;
  owned.owner_did = "did:plc:abc";
  ASSERT_TRUE(resolve_host(owned).ok());
  EXPECT_EQ(owned.host, "0.0.0.0");
}

}  // namespace
}  // namespace gm::server
