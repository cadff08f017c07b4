#include "auth/scopes.h"

#include <gtest/gtest.h>

namespace gm::auth {
namespace {

Scope scope(std::string_view text, std::string grant = "") {
  auto s = parse_scope(text);
  EXPECT_TRUE(s.ok()) << text;
  Scope out = s.ok() ? *s : Scope{};
  out.grant_id = std::move(grant);
  return out;
}

TEST(Scopes, ParseAndPrint) {
  EXPECT_EQ(to_string(scope("xyz.groundmist.notebook:read")), "xyz.groundmist.notebook:read");
  EXPECT_EQ(to_string(scope("XYZ.Groundmist:write")), "xyz.groundmist:write");  // NSID authorities ignore case
  for (const char* bad : {"xyz.groundmist.notebook", "xyz.groundmist.notebook:admin", "xyz:read", ":read",
                          "xyz..groundmist:read", "-xyz.groundmist:read", "xyz.groundmist:read:write"}) {
    EXPECT_FALSE(parse_scope(bad).ok()) << bad;
  }
}

TEST(Scopes, APrefixCoversItsGroupAndThoseBelowAndWriteImpliesRead) {
  const Scope read = scope("xyz.groundmist:read"), write = scope("xyz.groundmist.notebook:write");
  EXPECT_TRUE(covers(read, "xyz.groundmist", ScopeAccess::kRead));
  EXPECT_TRUE(covers(read, "xyz.groundmist.library", ScopeAccess::kRead));
  EXPECT_TRUE(covers(read, "XYZ.groundmist.Library", ScopeAccess::kRead));
  EXPECT_FALSE(covers(read, "xyz.groundmistx", ScopeAccess::kRead));  // a segment, not a string prefix
  EXPECT_FALSE(covers(read, "xyz.groundmist.library", ScopeAccess::kWrite));
  EXPECT_FALSE(covers(read, "xyz", ScopeAccess::kRead));
  EXPECT_TRUE(covers(write, "xyz.groundmist.notebook", ScopeAccess::kRead));
  EXPECT_TRUE(covers(write, "xyz.groundmist.notebook", ScopeAccess::kWrite));
  EXPECT_FALSE(covers(write, "xyz.groundmist.library", ScopeAccess::kRead));
  EXPECT_TRUE(includes(scope("xyz.groundmist:write"), write));
  EXPECT_TRUE(includes(write, scope("xyz.groundmist.notebook.pages:read")));
  EXPECT_FALSE(includes(write, scope("xyz.groundmist:read")));
  EXPECT_FALSE(includes(scope("xyz.groundmist:read"), write));
}

TEST(Scopes, TheClaimCarriesEachScopeWithItsGrant) {
  std::vector<Scope> scopes = {scope("xyz.groundmist.library:read", "GABCD-2345"),
                               scope("com.example.notes:write", "GWXYZ-6789")};
  const std::string claim = encode_scope_claim(scopes);
  EXPECT_EQ(claim, "xyz.groundmist.library:read@GABCD-2345 com.example.notes:write@GWXYZ-6789");
  auto back = decode_scope_claim(claim);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, scopes);
  EXPECT_TRUE(decode_scope_claim("")->empty());
  for (const char* bad : {"xyz.groundmist.library:read", "xyz.groundmist.library:read@", "xyz.groundmist:read@G 1",
                          "xyz.groundmist:read@G/1", "nope@G1"}) {
    EXPECT_FALSE(decode_scope_claim(bad).ok()) << bad;
  }
}

TEST(Scopes, AccessIsTheOwnGroupAndTheStandingScopes) {
  Access a{"xyz.groundmist.library", {scope("xyz.groundmist.notebook:read", "G1"), scope("com.example:write", "G2")}};
  EXPECT_TRUE(a.can_write("xyz.groundmist.library"));
  EXPECT_TRUE(a.can_read("xyz.groundmist.notebook"));
  EXPECT_FALSE(a.can_write("xyz.groundmist.notebook"));
  EXPECT_TRUE(a.can_write("com.example.notes"));
  EXPECT_FALSE(a.can_read("xyz.groundmist.other"));
  EXPECT_FALSE(Access{}.can_read("xyz.groundmist.library"));
}

}  // namespace
}  // namespace gm::auth
