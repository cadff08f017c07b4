#include "server/client_address.h"

#include <gtest/gtest.h>

namespace gm::server {
namespace {

HttpRequest with_forwarded(std::initializer_list<const char*> lines) {
  HttpRequest req{http::verb::post, "/authenticate", 11};
  for (const char* line : lines) req.insert("X-Forwarded-For", line);
  return req;
}

TEST(ClientAddress, ForwardedEntriesParseAsAddresses) {
  EXPECT_EQ(parse_forwarded_address(" 198.51.100.7 "), "198.51.100.7");
  EXPECT_EQ(parse_forwarded_address("198.51.100.7:4711"), "198.51.100.7");
  EXPECT_EQ(parse_forwarded_address("[2001:db8::5]:4711"), "2001:db8::5");
  EXPECT_EQ(parse_forwarded_address("2001:db8::5%eth0"), "2001:db8::5");
  EXPECT_EQ(parse_forwarded_address("::ffff:198.51.100.7"), "198.51.100.7");
  EXPECT_FALSE(parse_forwarded_address("unknown").has_value());
  EXPECT_FALSE(parse_forwarded_address("[2001:db8::5").has_value());
}

TEST(ClientAddress, TheProxysEntryOnlyFromAPrivatePeer) {
  const HttpRequest req = with_forwarded({"203.0.113.9, 198.51.100.1", "198.51.100.2"});
  EXPECT_EQ(client_address(req, RequestInfo{"127.0.0.1"}, false), "127.0.0.1");       // not trusted
  EXPECT_EQ(client_address(req, RequestInfo{"127.0.0.1"}, true), "198.51.100.2");      // last line, last entry
  EXPECT_EQ(client_address(req, RequestInfo{"10.1.2.3"}, true), "198.51.100.2");
  EXPECT_EQ(client_address(req, RequestInfo{"fd00::1"}, true), "198.51.100.2");
  EXPECT_EQ(client_address(req, RequestInfo{"203.0.113.50"}, true), "203.0.113.50");  // a client on the internet
  EXPECT_EQ(client_address(with_forwarded({"garbage"}), RequestInfo{"127.0.0.1"}, true), "127.0.0.1");
  EXPECT_EQ(client_address(with_forwarded({}), RequestInfo{"127.0.0.1"}, true), "127.0.0.1");
}

TEST(ClientAddress, LocalRequestsComeFromLoopbackWithoutAProxy) {
  const HttpRequest plain{http::verb::get, "/metrics", 11};
  EXPECT_TRUE(is_local_request(plain, RequestInfo{"127.0.0.1"}));
  EXPECT_TRUE(is_local_request(plain, RequestInfo{"::1"}));
  EXPECT_TRUE(is_local_request(plain, RequestInfo{"::ffff:127.0.0.1"}));
  EXPECT_FALSE(is_local_request(plain, RequestInfo{"10.1.2.3"}));
  EXPECT_FALSE(is_local_request(plain, RequestInfo{""}));
  EXPECT_FALSE(is_local_request(with_forwarded({"127.0.0.1"}), RequestInfo{"127.0.0.1"}));  // through a proxy
}

}  // namespace
}  // namespace gm::server
