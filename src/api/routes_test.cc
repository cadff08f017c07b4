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

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <deque>
#include <future>

namespace gm::api {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

// Requests whose work never ends (the repo's workers hold every job) count against the
// bounds until they do: past max_in_flight_per_token of one token, or max_in_flight in
// all, the answer is 503 at once.
TEST(ApiLimits, RequestsUnderWayAreBoundedPerTokenAndInAll) {
  const auto dir = std::filesystem::temp_directory_path() / ("gm_api_limits_test_" + std::to_string(::getpid()));
  std::deque<server::HttpRequest> requests;
  std::deque<server::RequestInfo> infos;
  server::HttpRouter router;
  asio::io_context io;
  repo::RepoOptions options;
  options.data_dir = dir;
  auto repo = repo::Repo::open(options);
  ASSERT_TRUE(repo.ok()) << repo.error().message;
  size_t held = 0;
  (*repo)->set_executor([&held](repo::Lane, std::function<void()>, std::function<void()>) { ++held; });
  ApiLimits limits;
  limits.max_in_flight = 5;
  limits.max_in_flight_per_token = 3;
  add_api_routes(
      router, **repo,
      [](std::string_view token) -> Result<auth::SessionClaims> {
        if (token.empty() || token.size() > 8) return error("bad token");
        auth::SessionClaims claims;
        claims.group = "xyz.groundmist.test";
        claims.token_id = std::string(token);
        return claims;
      },
      [](const auth::SessionClaims&) { return automerge::ActorId{1, 2, 3}; }, limits);
  std::vector<std::future<server::HttpResponse>> answers;
  auto get = [&](const std::string& token) {
    server::HttpRequest& req = requests.emplace_back(http::verb::get, "/api/v1/documents/3Rvncn6vGfW9LAndSNbqedrx1V2g", 11);
    req.set(http::field::authorization, "Bearer " + token);
    // Kept beside the request: route() refers to both until its coroutine ends.
    const server::RequestInfo& info = infos.emplace_back(server::RequestInfo{"127.0.0.1", {}});
    answers.push_back(asio::co_spawn(io, router.route(req, info), asio::use_future));
    io.poll();
    io.restart();
  };
  auto answered = [&](size_t i) {
    return answers[i].wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  };
  for (int i = 0; i < 3; ++i) get("a");
  get("a");  // a's fourth
  for (int i = 0; i < 2; ++i) get("b");
  get("c");  // the sixth in all
  for (size_t i : {0, 1, 2, 4, 5}) EXPECT_FALSE(answered(i)) << i;
  ASSERT_TRUE(answered(3));
  EXPECT_EQ(answers[3].get().result(), http::status::service_unavailable);
  ASSERT_TRUE(answered(6));
  auto busy = answers[6].get();
  EXPECT_EQ(busy.result(), http::status::service_unavailable);
  EXPECT_EQ(busy[http::field::retry_after], "1");
  EXPECT_EQ(nlohmann::json::parse(busy.body()).at("error"), "busy, try again in a second");
  EXPECT_EQ(held, 1u);  // the group's opening, which every request waits for
  // A bad token is answered whatever is under way.
  get("toolongtoken");
  ASSERT_TRUE(answered(7));
  EXPECT_EQ(answers[7].get().result(), http::status::unauthorized);
  repo->reset();  // its waiting callbacks (and the coroutines they hold) go first
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gm::api
