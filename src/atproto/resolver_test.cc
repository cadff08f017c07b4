#include "atproto/resolver.h"

#include <gtest/gtest.h>

#include <thread>

#include "atproto/http_test_server.h"

namespace gm::atproto {
namespace {

using testing::TestHttpServer;
using namespace std::chrono_literals;

constexpr char kDid[] = "did:plc:torlb4mwutoyjwu4svnruovp";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string document(const std::string& did, const std::string& pds) {
  return nlohmann::json{
      {"@context", {"https://www.w3.org/ns/did/v1"}},
      {"id", did},
      {"alsoKnownAs", {"at://alice.test"}},
      {"service", {{{"id", "#atproto_pds"}, {"type", "AtprotoPersonalDataServer"}, {"serviceEndpoint", pds}}}}}
      .dump();
}

// A PLC directory on loopback whose answer the test changes as it goes.
class FakePlc {
 public:
  FakePlc()
      : server_([this](const TestHttpServer::Request& req) -> std::optional<std::string> {
          std::lock_guard lock(mu_);
          last_target_ = req.target;
          return reply_;
        }) {
    answer(200, document(kDid, "https://pds.example.com"));
  }
  void answer(int status, const std::string& body, const std::string& extra_headers = "") {
    std::lock_guard lock(mu_);
    reply_ = TestHttpServer::response(status, body, "application/did+ld+json", extra_headers);
  }
  std::string last_target() {
    std::lock_guard lock(mu_);
    return last_target_;
  }
  int requests() const { return server_.requests(); }
  std::string url() const { return server_.url(); }

 private:
  std::mutex mu_;
  std::string reply_;
  std::string last_target_;
  TestHttpServer server_;
};

class ResolverTest : public ::testing::Test {
 protected:
  ResolverTest() : resolver_(plc_.url(), 600s, 86400s, 30s) {
    resolver_.set_clock_for_testing([this] { return now_; });
  }
  FakePlc plc_;
  DidResolver resolver_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::time_point() + 1000h;
};

TEST_F(ResolverTest, ResolvesAndCaches) {
  auto doc = resolver_.resolve(kDid);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(doc->id, kDid);
  EXPECT_EQ(doc->pds_endpoint, "https://pds.example.com");
  EXPECT_EQ(doc->handle, "alice.test");
  EXPECT_EQ(plc_.last_target(), std::string("/") + kDid);
  now_ += 599s;
  ASSERT_TRUE(resolver_.resolve(kDid).ok());
  EXPECT_EQ(plc_.requests(), 1);
  now_ += 2s;  // no longer fresh: asked again
  plc_.answer(200, document(kDid, "https://pds2.example.com"));
  doc = resolver_.resolve(kDid);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(doc->pds_endpoint, "https://pds2.example.com");
  EXPECT_EQ(plc_.requests(), 2);
}

TEST_F(ResolverTest, ServesTheStaleCopyWhenTheDirectoryFails) {
  ASSERT_TRUE(resolver_.resolve(kDid).ok());
  plc_.answer(503, "down");
  now_ += 3600s;
  auto doc = resolver_.resolve(kDid);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(doc->pds_endpoint, "https://pds.example.com");
  EXPECT_EQ(plc_.requests(), 2);
  // A failed fetch is not retried at once.
  ASSERT_TRUE(resolver_.resolve(kDid).ok());
  EXPECT_EQ(plc_.requests(), 2);
  now_ += 31s;
  ASSERT_TRUE(resolver_.resolve(kDid).ok());
  EXPECT_EQ(plc_.requests(), 3);
  // Past stale_for the copy is no longer served.
  now_ += 86400s;
  auto expired = resolver_.resolve(kDid);
  ASSERT_FALSE(expired.ok());
  EXPECT_TRUE(contains(expired.error().message, "answered HTTP 503")) << expired.error().message;
  EXPECT_FALSE(is_did_not_found(expired.error()));
}

TEST_F(ResolverTest, NotFoundIsDistinctAndDropsTheCachedCopy) {
  ASSERT_TRUE(resolver_.resolve(kDid).ok());
  plc_.answer(404, R"({"message":"DID not registered"})");
  now_ += 601s;
  auto gone = resolver_.resolve(kDid);
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(is_did_not_found(gone.error())) << gone.error().message;
  // Even with the directory down afterwards, the tombstoned DID stays unresolved.
  plc_.answer(503, "");
  now_ += 31s;
  auto after = resolver_.resolve(kDid);
  ASSERT_FALSE(after.ok());
  EXPECT_FALSE(is_did_not_found(after.error()));
}

TEST_F(ResolverTest, ForcedRefreshIsRateLimitedPerDid) {
  ASSERT_TRUE(resolver_.resolve(kDid).ok());
  EXPECT_EQ(plc_.requests(), 1);
  // Just fetched: a forced refresh is answered from the cache.
  ASSERT_TRUE(resolver_.resolve(kDid, /*force_refresh=*/true).ok());
  EXPECT_EQ(plc_.requests(), 1);
  now_ += 30s;
  plc_.answer(200, document(kDid, "https://rotated.example.com"));
  auto doc = resolver_.resolve(kDid, true);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(doc->pds_endpoint, "https://rotated.example.com");
  EXPECT_EQ(plc_.requests(), 2);
  // A stream of forced refreshes (forged tokens) costs one fetch per 30 s.
  for (int i = 0; i < 50; ++i) {
    now_ += 1s;
    ASSERT_TRUE(resolver_.resolve(kDid, true).ok());
  }
  EXPECT_EQ(plc_.requests(), 3);
}

TEST_F(ResolverTest, RedirectsAreNotFollowed) {
  plc_.answer(302, "", "Location: /elsewhere\r\n");
  auto doc = resolver_.resolve(kDid);
  ASSERT_FALSE(doc.ok());
  EXPECT_TRUE(contains(doc.error().message, "answered HTTP 302")) << doc.error().message;
  EXPECT_EQ(plc_.requests(), 1);
}

TEST_F(ResolverTest, RefusesLargeAndWrongDocuments) {
  plc_.answer(200, std::string(kMaxDidDocumentBytes + 1, ' '));
  auto big = resolver_.resolve(kDid);
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(contains(big.error().message, "larger than")) << big.error().message;

  // A failure with nothing cached is the answer for a few seconds, without a fetch.
  plc_.answer(200, document("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "https://pds.example.com"));
  const int before = plc_.requests();
  EXPECT_TRUE(contains(resolver_.resolve(kDid).error().message, "larger than"));
  EXPECT_EQ(plc_.requests(), before);
  now_ += kRetryFailureAfter;
  auto other = resolver_.resolve(kDid);
  ASSERT_FALSE(other.ok());
  EXPECT_TRUE(contains(other.error().message, "does not match")) << other.error().message;

  auto bad = resolver_.resolve("did:example:123");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(contains(bad.error().message, "not an atproto DID")) << bad.error().message;
}

TEST(Resolver, ConcurrentCallersShareTheCache) {
  FakePlc plc;
  DidResolver resolver(plc.url());
  ASSERT_TRUE(resolver.resolve(kDid).ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (!resolver.resolve(kDid, i % 7 == 0).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(plc.requests(), 1);  // forced refreshes within 30 s of the fetch are answered from the cache
}

TEST(Handle, Syntax) {
  EXPECT_TRUE(is_handle_syntax("alice.test"));
  EXPECT_TRUE(is_handle_syntax("alice.bsky.social"));
  EXPECT_TRUE(is_handle_syntax("a-b.c1"));
  EXPECT_FALSE(is_handle_syntax("alice"));
  EXPECT_FALSE(is_handle_syntax("alice."));
  EXPECT_FALSE(is_handle_syntax(".alice.test"));
  EXPECT_FALSE(is_handle_syntax("-a.test"));
  EXPECT_FALSE(is_handle_syntax("a.1test"));
  EXPECT_FALSE(is_handle_syntax("a_b.test"));
  EXPECT_FALSE(is_handle_syntax("https://alice.test"));
  EXPECT_FALSE(is_handle_syntax(""));
}

TEST(Handle, AtprotoDidFile) {
  TestHttpServer server([](const TestHttpServer::Request& req) -> std::optional<std::string> {
    if (req.target == "/moved") {
      return TestHttpServer::response(301, "", "text/plain", "Location: /.well-known/atproto-did\r\n");
    }
    if (req.target == "/.well-known/atproto-did") {
      return TestHttpServer::response(200, std::string("  ") + kDid + "\n", "text/plain");
    }
    if (req.target == "/junk") return TestHttpServer::response(200, "<html>hello</html>", "text/html");
    return TestHttpServer::response(404, "");
  });
  auto did = fetch_atproto_did(server.url("/.well-known/atproto-did"));
  ASSERT_TRUE(did.ok()) << did.error().message;
  EXPECT_EQ(*did, kDid);
  auto moved = fetch_atproto_did(server.url("/moved"));
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(*moved, kDid);
  auto junk = fetch_atproto_did(server.url("/junk"));
  ASSERT_FALSE(junk.ok());
  EXPECT_TRUE(contains(junk.error().message, "does not hold a DID")) << junk.error().message;
  auto missing = fetch_atproto_did(server.url("/nothing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(contains(missing.error().message, "HTTP 404")) << missing.error().message;

  auto not_a_handle = resolve_handle_https("alice");
  ASSERT_FALSE(not_a_handle.ok());
  EXPECT_TRUE(contains(not_a_handle.error().message, "is not a handle")) << not_a_handle.error().message;
}

TEST(Xrpc, QueryAndProcedure) {
  TestHttpServer server([](const TestHttpServer::Request& req) -> std::optional<std::string> {
    if (req.method == "GET") {
      EXPECT_EQ(req.target, "/xrpc/com.atproto.repo.getRecord?repo=did%3Aplc%3Ax&rkey=a%20b%26c");
      EXPECT_EQ(req.headers.count("authorization"), 0u);
      return TestHttpServer::response(200, R"({"value":{"host":"sync.example.com"}})");
    }
    EXPECT_EQ(req.target, "/xrpc/com.atproto.repo.putRecord");
    EXPECT_EQ(req.headers.at("authorization"), "Bearer jwt");
    auto in = nlohmann::json::parse(req.body);
    return TestHttpServer::response(200, nlohmann::json{{"uri", in["repo"]}}.dump());
  });
  auto got = xrpc_query(server.url("/"), "com.atproto.repo.getRecord", {{"repo", "did:plc:x"}, {"rkey", "a b&c"}});
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ((*got)["value"]["host"], "sync.example.com");
  auto put = xrpc_procedure(server.url(), "com.atproto.repo.putRecord", {{"repo", "did:plc:y"}}, "jwt");
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ((*put)["uri"], "did:plc:y");
}

TEST(Xrpc, ErrorsNameTheXrpcError) {
  TestHttpServer server([](const TestHttpServer::Request& req) -> std::optional<std::string> {
    if (req.target.starts_with("/xrpc/com.atproto.repo.getRecord")) {
      return TestHttpServer::response(400, R"({"error":"RecordNotFound","message":"Could not locate record"})");
    }
    return TestHttpServer::response(502, "<html>bad gateway\x1b[31m</html>", "text/html");
  });
  XrpcFailure failure;
  auto r = xrpc_query(server.url(), "com.atproto.repo.getRecord", {}, {}, &failure);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "com.atproto.repo.getRecord: HTTP 400 RecordNotFound: Could not locate record");
  EXPECT_EQ(failure.status, 400);
  EXPECT_EQ(failure.error, "RecordNotFound");
  EXPECT_EQ(failure.message, "Could not locate record");

  auto p = xrpc_procedure(server.url(), "com.atproto.server.createSession", nlohmann::json::object(), {}, &failure);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, "com.atproto.server.createSession: HTTP 502: <html>bad gateway?[31m</html>");
  EXPECT_EQ(failure.error, "");

  auto bad = xrpc_query(server.url(), "com.atproto/../x", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(server.requests(), 2);
}

}  // namespace
}  // namespace gm::atproto
