#include "repo/document_id.h"

#include <gtest/gtest.h>

#include "util/hex.h"

namespace gm::repo {
namespace {

TEST(DocumentId, SpecExampleDecodes) {  // spec/automerge.md §3.5
  auto id = decode_document_id("3Rvncn6vGfW9LAndSNbqedrx1V2g");
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(to_hex(*id), "ae682de30d984aa4ab57063df2d367c6");
}

TEST(DocumentId, SpecExampleEncodes) {
  auto raw = from_hex("ae682de30d984aa4ab57063df2d367c6");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(encode_document_id(*raw), "3Rvncn6vGfW9LAndSNbqedrx1V2g");
}

TEST(DocumentId, LeadingZeroBytesBecomeOnes) {
  Bytes zeros = {0, 0, 1, 2};
  std::string s = base58_encode(zeros);
  EXPECT_EQ(s.substr(0, 2), "11");
  auto back = base58_decode(s);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, zeros);
  EXPECT_EQ(base58_encode({}), "");
  EXPECT_EQ(base58_encode(Bytes{0}), "1");
  EXPECT_EQ(base58_encode(Bytes{57}), "z");
  EXPECT_EQ(base58_encode(Bytes{58}), "21");
}

TEST(DocumentId, RoundTripsManyLengths) {
  for (size_t n = 0; n < 40; ++n) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 37 + n);
    auto back = bs58check_decode(bs58check_encode(b));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, b);
  }
}

TEST(DocumentId, RejectsBadCharacterWithPosition) {
  auto r = decode_document_id("3Rvncn6vGfW9LAndSNbqedrx1V2O");  // 'O' is not base58
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("character 27"), std::string::npos) << r.error().message;
  EXPECT_FALSE(validate_document_id("../../etc/passwd").ok());
  EXPECT_FALSE(validate_document_id("").ok());
  EXPECT_FALSE(validate_document_id(std::string(200, '2')).ok());
}

TEST(DocumentId, RejectsChecksumMismatch) {
  auto r = decode_document_id("3Rvncn6vGfW9LAndSNbqedrx1V2h");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("checksum"), std::string::npos) << r.error().message;
}

TEST(DocumentId, NewIdsAreUuidV4) {
  std::string a = new_document_id(), b = new_document_id();
  EXPECT_NE(a, b);
  auto raw = decode_document_id(a);
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->size(), 16u);
  EXPECT_EQ((*raw)[6] >> 4, 4);
  EXPECT_EQ((*raw)[8] & 0xc0, 0x80);
}

}  // namespace
}  // namespace gm::repo
