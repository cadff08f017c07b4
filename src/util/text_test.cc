#include "util/text.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gm {
namespace {

TEST(Printable, KeepsValidTextAndReplacesTheRest) {
  EXPECT_EQ(printable("https://library.groundmist.xyz", 256), "https://library.groundmist.xyz");
  EXPECT_EQ(printable("héllo ✓ 𝄞", 256), "héllo ✓ 𝄞");
  EXPECT_EQ(printable("a\nb\x1b[31m\x7f", 256), "a?b?[31m?");
  EXPECT_EQ(printable("x\xff\x9b" "31m", 256), "x??31m");
  EXPECT_EQ(printable("\xc2\x9b" "c1", 256), "?c1");                // C1 control (CSI)
  EXPECT_EQ(printable("\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80", 256), "?? ??? ????");  // overlong, surrogate, > U+10FFFF
}

TEST(Printable, CutsOnACharacterBoundary) {
  const std::string s = std::string(255, 'a') + "é";
  const std::string cut = printable(s, 256);
  EXPECT_EQ(cut, std::string(255, 'a') + "…");
  EXPECT_NO_THROW((void)nlohmann::json(cut).dump());
  EXPECT_EQ(printable("abc", 3), "abc");
  EXPECT_EQ(printable("abcd", 3), "abc…");
}

}  // namespace
}  // namespace gm
