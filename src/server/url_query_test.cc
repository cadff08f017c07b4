#include "server/url_query.h"

#include <gtest/gtest.h>

namespace gm::server {
namespace {

TEST(UrlQuery, SplitsTarget) {
  Target t = split_target("/?token=abc");
  EXPECT_EQ(t.path, "/");
  EXPECT_EQ(t.query, "token=abc");
  EXPECT_EQ(split_target("").path, "/");
  EXPECT_EQ(split_target("/metrics").query, "");
}

TEST(UrlQuery, FindsAndDecodesParameter) {
  auto v = query_param("a=1&token=ey%2Fx+y&token=second", "token");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ(**v, "ey/x y");
  auto missing = query_param("a=1", "token");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto bare = query_param("token", "token");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(**bare, "");
}

TEST(UrlQuery, MalformedEscapesAreErrors) {
  EXPECT_FALSE(query_param("token=%", "token").ok());
  EXPECT_FALSE(query_param("token=%4", "token").ok());
  EXPECT_FALSE(query_param("token=%zz", "token").ok());
}

}  // namespace
}  // namespace gm::server
