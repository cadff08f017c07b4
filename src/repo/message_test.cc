#include "repo/message.h"

#include <gtest/gtest.h>

#include "util/hex.h"

namespace gm::repo {
namespace {

constexpr const char* kDocId = "3Rvncn6vGfW9LAndSNbqedrx1V2g";

Bytes unhex(std::string_view h) {
  auto r = from_hex(h);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : Bytes{};
}

template <class T>
T decode_as(std::string_view hex) {
  auto m = decode_message(unhex(hex));
  EXPECT_TRUE(m.ok()) << m.error().message;
  if (!m.ok()) return T{};
  const T* t = std::get_if<T>(&*m);
  EXPECT_NE(t, nullptr) << "decoded as " << message_type(*m);
  return t ? *t : T{};
}

std::string decode_error(ByteView frame) {
  auto m = decode_message(frame);
  EXPECT_FALSE(m.ok());
  return m.ok() ? std::string() : m.error().message;
}
std::string decode_error_hex(std::string_view hex) { return decode_error(unhex(hex)); }

// --- spec/automerge.md §5(d): frames as the JS adapters send them ---

TEST(RepoMessage, SpecJoinDecodes) {
  auto m = decode_as<JoinMessage>(
      "b900046474797065646a6f696e6873656e646572496465616c6963656c706565724d65746164617461b900026973746f726167654964"
      "f76b6973457068656d6572616cf57819737570706f7274656450726f746f636f6c56657273696f6e73816131");
  EXPECT_EQ(m.sender_id, "alice");
  EXPECT_FALSE(m.peer_metadata.storage_id.has_value());  // undefined (0xf7)
  EXPECT_EQ(m.peer_metadata.is_ephemeral, std::optional<bool>(true));
  ASSERT_TRUE(m.supported_protocol_versions.has_value());
  EXPECT_EQ(*m.supported_protocol_versions, std::vector<std::string>{"1"});
}

TEST(RepoMessage, SpecPeerDecodes) {
  auto m = decode_as<PeerMessage>(
      "b90005647479706564706565726873656e6465724964667365727665726c706565724d65746164617461b900026973746f7261676549"
      "64782437373863366461352d393735372d346133632d626536612d3531633531663537613366376b6973457068656d6572616cf477"
      "73656c656374656450726f746f636f6c56657273696f6e613168746172676574496465616c696365");
  EXPECT_EQ(m.sender_id, "server");
  EXPECT_EQ(m.target_id, "alice");
  EXPECT_EQ(m.peer_metadata.storage_id, std::optional<std::string>("778c6da5-9757-4a3c-be6a-51c51f57a3f7"));
  EXPECT_EQ(m.peer_metadata.is_ephemeral, std::optional<bool>(false));
  EXPECT_EQ(m.selected_protocol_version, "1");
}

TEST(RepoMessage, SpecSyncDecodes) {
  auto m = decode_as<SyncMessage>(
      "b9000564747970656473796e63687461726765744964667365727665726464617461582f4201913f8185ebaccd6dedbb5f391d12abfb"
      "e1a0c112bb5476a37e90a21c420271ab00010005010a07521e000202846a646f63756d656e744964781c3352766e636e3676476657"
      "394c416e64534e627165647278315632676873656e646572496465616c696365");
  EXPECT_EQ(m.sender_id, "alice");
  EXPECT_EQ(m.target_id, "server");
  EXPECT_EQ(m.document_id, kDocId);
  EXPECT_EQ(to_hex(m.data),
            "4201913f8185ebaccd6dedbb5f391d12abfbe1a0c112bb5476a37e90a21c420271ab00010005010a07521e00020284");
}

TEST(RepoMessage, SpecDocUnavailableDecodes) {
  auto m = decode_as<DocUnavailableMessage>(
      "b9000464747970656f646f632d756e617661696c61626c656a646f63756d656e744964781c3352766e636e3676476657394c416e6453"
      "4e6271656472783156326768746172676574496465616c6963656873656e646572496466736572766572");
  EXPECT_EQ(m.sender_id, "server");
  EXPECT_EQ(m.target_id, "alice");
  EXPECT_EQ(m.document_id, kDocId);
}

// --- our encoding; each hex below was decoded by cbor-x with
// tests/interop/tools/cbor_check.mjs (output quoted) ---

struct EncodedVector {
  Message message;
  const char* hex;
};

std::vector<EncodedVector> encoded_vectors() {
  return {
      // {"type":"join","senderId":"alice","peerMetadata":{"isEphemeral":true},"supportedProtocolVersions":["1"]}
      {JoinMessage{"alice", PeerMetadata{std::nullopt, true}, std::vector<std::string>{"1"}},
       "a46474797065646a6f696e6873656e646572496465616c6963656c706565724d65746164617461a16b6973457068656d6572616cf578"
       "19737570706f7274656450726f746f636f6c56657273696f6e73816131"},
      // {"type":"peer","senderId":"server","peerMetadata":{"storageId":"778c6da5-9757-4a3c-be6a-51c51f57a3f7",
      //  "isEphemeral":false},"selectedProtocolVersion":"1","targetId":"alice"}
      {PeerMessage{"server", "alice", PeerMetadata{"778c6da5-9757-4a3c-be6a-51c51f57a3f7", false}, "1"},
       "a5647479706564706565726873656e6465724964667365727665726c706565724d65746164617461a26973746f72616765496478243737"
       "3863366461352d393735372d346133632d626536612d3531633531663537613366376b6973457068656d6572616cf47773656c656374"
       "656450726f746f636f6c56657273696f6e613168746172676574496465616c696365"},
      // {"type":"sync","targetId":"alice","data":{"bytes":"42000000000000"},
      //  "documentId":"3Rvncn6vGfW9LAndSNbqedrx1V2g","senderId":"server"}  (data decodes as a Uint8Array)
      {SyncMessage{"server", "alice", kDocId, unhex("42000000000000")},
       "a564747970656473796e6368746172676574496465616c696365646461746147420000000000006a646f63756d656e744964781c335276"
       "6e636e3676476657394c416e64534e627165647278315632676873656e646572496466736572766572"},
      // {"type":"doc-unavailable","documentId":"3Rvncn6vGfW9LAndSNbqedrx1V2g","targetId":"alice","senderId":"server"}
      {DocUnavailableMessage{"server", "alice", kDocId},
       "a464747970656f646f632d756e617661696c61626c656a646f63756d656e744964781c3352766e636e3676476657394c416e64534e6271"
       "656472783156326768746172676574496465616c6963656873656e646572496466736572766572"},
  };
}

TEST(RepoMessage, EncodingsMatchCborXCheckedVectors) {
  for (const auto& v : encoded_vectors()) {
    Bytes encoded = encode_message(v.message);
    EXPECT_EQ(to_hex(encoded), v.hex) << message_type(v.message);
    auto back = decode_message(encoded);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, v.message);
  }
}


TEST(RepoMessage, EveryTypeRoundTrips) {
  std::vector<Message> all = {
      JoinMessage{"peer-x", PeerMetadata{"sid", false}, std::nullopt},
      JoinMessage{"peer-y", PeerMetadata{}, std::vector<std::string>{"1", "2"}},
      PeerMessage{"s", "c", PeerMetadata{}, "1"},
      ErrorMessage{"s", "c", "unsupported protocol version"},
      SyncMessage{"a", "b", kDocId, Bytes{}},
      RequestMessage{"a", "b", kDocId, unhex("42000001000000")},
      DocUnavailableMessage{"a", "b", kDocId},
      EphemeralMessage{"a", "b", kDocId, "sess", 1ull << 40, unhex("a0")},
      RemoteSubscriptionChangeMessage{"a", "b", {"s1", "s2"}, {}},
      RemoteHeadsChangedMessage{"a", "b", kDocId, {RemoteHeads{"s1", {"h1"}, 1732000000123.0}, RemoteHeads{"s2", {}, 0.5}}},
      LeaveMessage{"a"},
      UnknownMessage{"future-thing", std::string("a")},
  };
  for (const auto& m : all) {
    auto back = decode_message(encode_message(m));
    ASSERT_TRUE(back.ok()) << message_type(m) << ": " << back.error().message;
    EXPECT_EQ(*back, m) << message_type(m);
  }
}

// cbor-x writes integers >= 2^32 (Date.now(), counts) as float64.
TEST(RepoMessage, AcceptsIntegersSentAsFloats) {
  // {"type":"ephemeral","senderId":"a","targetId":"b","documentId":kDocId,"sessionId":"s",
  //  "count": 4294967296.0 (fb 41f0000000000000), "data": h'a0'}
  std::string hex = "b90007" "6474797065" "69657068656d6572616c" "6873656e6465724964" "6161" "68746172676574496" "4" "6162"
                    "6a646f63756d656e744964" "781c3352766e636e3676476657394c416e64534e6271656472783156326"
                    "7" "6973657373696f6e4964" "6173" "65636f756e74" "fb41f0000000000000" "6464617461" "41a0";
  auto m = decode_as<EphemeralMessage>(hex);
  EXPECT_EQ(m.count, 4294967296ull);
  EXPECT_EQ(m.data, Bytes{0xa0});
  // A fractional or negative count is not an integer.
  std::string frac = hex;
  frac.replace(frac.find("fb41f0000000000000"), 18, "fb3ff8000000000000");  // 1.5
  EXPECT_NE(decode_error_hex(frac).find("\"count\" is a float, expected non-negative integer"), std::string::npos);
}

TEST(RepoMessage, RejectsNonMapItems) {
  EXPECT_NE(decode_error_hex("83010203").find("is a CBOR array, expected a map"), std::string::npos);
  EXPECT_NE(decode_error_hex("01").find("unsigned integer"), std::string::npos);
  EXPECT_NE(decode_error_hex("4161").find("byte string"), std::string::npos);
  EXPECT_NE(decode_error(Bytes{}).find("empty frame"), std::string::npos);
}

TEST(RepoMessage, RejectsMissingAndWrongTypedFields) {
  // {"type":"sync","senderId":"a","targetId":"b","documentId":kDocId} — no data
  std::string no_data = "a4" "6474797065" "6473796e63" "6873656e6465724964" "6161" "6874617267657449" "64" "6162"
                        "6a646f63756d656e744964" "781c3352766e636e3676476657394c416e64534e62716564727831563267";
  EXPECT_EQ(decode_error_hex(no_data), "\"sync\" message lacks field \"data\"");
  // data as text instead of bytes
  std::string text_data = no_data;
  text_data.replace(0, 2, "a5");
  text_data += "6464617461" "6178";
  EXPECT_EQ(decode_error_hex(text_data), "\"sync\" message field \"data\" is a text string, expected byte string");
  // no type at all
  EXPECT_EQ(decode_error_hex("a0"), "message lacks field \"type\"");
  // type is a number
  EXPECT_EQ(decode_error_hex("a1647479706501"), "message field \"type\" is a unsigned integer, expected text string");
  // join whose senderId is missing
  EXPECT_EQ(decode_error_hex("a16474797065646a6f696e"), "\"join\" message lacks field \"senderId\"");
}

TEST(RepoMessage, RejectsInvalidDocumentId) {
  // doc-unavailable with documentId "../x"
  std::string hex = "a4" "6474797065" "6f646f632d756e617661696c61626c65" "6873656e6465724964" "6161"
                    "6874617267657449" "64" "6162" "6a646f63756d656e744964" "642e2e2f78";
  std::string e = decode_error_hex(hex);
  EXPECT_NE(e.find("documentId \"../x\""), std::string::npos) << e;
  EXPECT_NE(e.find("base58"), std::string::npos) << e;
}

TEST(RepoMessage, RejectsTrailingBytesTruncationAndGarbage) {
  EXPECT_NE(decode_error_hex("a16474797065656c6561766500").find("1 trailing bytes"), std::string::npos);
  EXPECT_NE(decode_error_hex("a16474797065656c656176").find("truncated"), std::string::npos);
  EXPECT_NE(decode_error_hex("b9000a").find("declares 20 items"), std::string::npos);
  // A byte string claiming 2^64-1 bytes.
  EXPECT_NE(decode_error_hex("a164747970655bffffffffffffffff").find("truncated"), std::string::npos);
  EXPECT_NE(decode_error_hex("9bffffffffffffffff").find("declares"), std::string::npos);
  EXPECT_NE(decode_error_hex("ff").find("break"), std::string::npos);
  EXPECT_NE(decode_error_hex("1c").find("malformed"), std::string::npos);
}

TEST(RepoMessage, RejectsUnsupportedItems) {
  EXPECT_NE(decode_error_hex("bf6474797065646c65617665ff").find("indefinite-length map"), std::string::npos);
  EXPECT_NE(decode_error_hex("a1647479706578").find("truncated"), std::string::npos);
  EXPECT_NE(decode_error_hex("a164747970657f6161ff").find("indefinite-length string"), std::string::npos);
  EXPECT_NE(decode_error_hex("d840a0").find("tag"), std::string::npos);
}

TEST(RepoMessage, RejectsOversizedNesting) {
  Bytes frame = {0xa1, 0x61, 'x'};
  for (int i = 0; i < 40; ++i) frame.push_back(0x81);
  frame.push_back(0x00);
  EXPECT_NE(decode_error(frame).find("nesting deeper than"), std::string::npos);
}

TEST(RepoMessage, RejectsTooManyItems) {
  Bytes frame = {0x9a, 0x00, 0x02, 0x00, 0x00};  // array of 131072 zeros
  frame.resize(frame.size() + 131072, 0x00);
  EXPECT_NE(decode_error(frame).find("more than 65536 CBOR items"), std::string::npos);
}

TEST(RepoMessage, IdsHaveABoundedLength) {
  JoinMessage join;
  join.sender_id = std::string(kMaxIdBytes, 'p');
  EXPECT_TRUE(decode_message(encode_message(join)).ok());
  join.sender_id += "p";
  auto too_long = decode_message(encode_message(join));
  ASSERT_FALSE(too_long.ok());
  EXPECT_TRUE(too_long.error().code == ErrorCode::kOverLimit);
  EXPECT_NE(too_long.error().message.find("senderId is 1025 bytes"), std::string::npos) << too_long.error().message;
  join.sender_id = "p";
  join.peer_metadata.storage_id = std::string(kMaxIdBytes + 1, 's');
  EXPECT_FALSE(decode_message(encode_message(join)).ok());
}

TEST(RepoMessage, RejectsBadKeysAndText) {
  EXPECT_NE(decode_error_hex("a10101").find("unsigned integer key"), std::string::npos);
  EXPECT_NE(decode_error_hex("a26474797065656c656176656474797065656c65617665").find("key \"type\" twice"),
            std::string::npos);
  EXPECT_NE(decode_error_hex("a1647479706562c328").find("not valid UTF-8"), std::string::npos);
}

TEST(RepoMessage, UnknownTypesAndExtraFieldsAreTolerated) {
  // {"type":"hello","senderId":"a","x":[1,{"y":null}]}
  auto m = decode_as<UnknownMessage>("a3" "6474797065" "6568656c6c6f" "6873656e6465724964" "6161" "6178" "8201a1617" "9f6");
  EXPECT_EQ(m.type, "hello");
  EXPECT_EQ(m.sender_id, std::optional<std::string>("a"));
  // A join with an extra field and no peerMetadata (tolerated like the JS adapter).
  auto j = decode_as<JoinMessage>("a3" "6474797065" "646a6f696e" "6873656e6465724964" "6161" "6178" "f6");
  EXPECT_EQ(j.sender_id, "a");
  EXPECT_FALSE(j.supported_protocol_versions.has_value());
}

TEST(RepoMessage, PeerMetadataTypesAreChecked) {
  // {"type":"join","senderId":"a","peerMetadata":{"isEphemeral":"yes"}}
  std::string e = decode_error_hex("a3" "6474797065" "646a6f696e" "6873656e6465724964" "6161" "6c706565724d65746164617461"
                                   "a1" "6b6973457068656d6572616c" "63796573");
  EXPECT_EQ(e, "\"join\" message peerMetadata field \"isEphemeral\" is a text string, expected boolean");
}

// A relayed ephemeral message shares its payload: the frame flattened is the message
// encoded whole, byte for byte.
TEST(Message, EphemeralWithASharedPayloadIsTheSameBytes) {
  EphemeralMessage m{"a", "b", kDocId, "sess", 7, Bytes(300, 0x42)};
  auto data = std::make_shared<const Bytes>(m.data);
  Frame frame = encode_ephemeral(m, data);
  EXPECT_EQ(frame.shared, data);
  EXPECT_EQ(frame.size(), encode_message(m).size());
  EXPECT_EQ(frame.flatten(), encode_message(m));
}

}  // namespace
}  // namespace gm::repo
