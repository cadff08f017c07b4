#include "api/routes.h"

#include <gtest/gtest.h>

namespace gm::api {
namespace {

TEST(JsonNesting, CountsArraysAndObjectsNotStrings) {
  EXPECT_EQ(json_nesting("1"), 0u);
  EXPECT_EQ(json_nesting("{}"), 1u);
  EXPECT_EQ(json_nesting(R"({"a":[1,{"b":[]}]})"), 4u);
  EXPECT_EQ(json_nesting(R"({"a":"[[[[{{{{"})"), 1u);
  EXPECT_EQ(json_nesting(R"({"a":"\"[[["})"), 1u);
  EXPECT_EQ(json_nesting(R"(["\\", [[]]])"), 3u);
  EXPECT_EQ(json_nesting(std::string(100000, '[')), 100000u);
  EXPECT_EQ(json_nesting("]]]]{"), 1u);  // unbalanced: no underflow
}

}  // namespace
}  // namespace gm::api

#include <filesystem>
#include <set>

#include "api/openapi.h"

namespace gm::api {
namespace {

// The description lists exactly the routes add_api_routes adds, with their methods.
TEST(OpenApi, DescribesEveryRouteAndNoOther) {
  const auto dir = std::filesystem::temp_directory_path() / ("gm_api_routes_test_" + std::to_string(::getpid()));
  repo::RepoOptions options;
  options.data_dir = dir;
  auto repo = repo::Repo::open(options);
  ASSERT_TRUE(repo.ok()) << repo.error().message;
  server::HttpRouter router;
  add_api_routes(router, **repo, nullptr, nullptr);
  std::set<std::pair<std::string, std::string>> routed, described;
  for (const auto& [path, verb] : router.routes()) {
    std::string method(boost::beast::http::to_string(verb));
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    routed.emplace(path, method);
  }
  for (const auto& [path, item] : openapi_description().at("paths").items()) {
    for (const auto& [method, operation] : item.items()) {
      if (method != "parameters") described.emplace(path, method);
    }
  }
  EXPECT_EQ(routed, described);
  EXPECT_EQ(openapi_description().at("openapi"), "3.1.0");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gm::api
