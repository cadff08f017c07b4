#include "automerge/change.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>

#include "util/hex.h"

namespace gm::automerge {
namespace {

// spec/automerge.md §5(a), produced by npm @automerge/automerge 3.5.0.
constexpr const char* kA1 =
    "856f4a83913f8185013400100123456789abcdef0123456789abcdef0101000000061507340142025602570270027f057469746c65017f01"
    "7f2668697f00";
constexpr const char* kA1Hash = "913f8185ebaccd6dedbb5f391d12abfbe1a0c112bb5476a37e90a21c420271ab";
constexpr const char* kA2 =
    "856f4a83227da37b016701913f8185ebaccd6dedbb5f391d12abfbe1a0c112bb5476a37e90a21c420271ab100123456789abcdef012345"
    "6789abcdef020280d095ffbc31016d0008150934014202560357037003710273027e057469746c65016e0202017e2618796f057e01007f"
    "007f01";
constexpr const char* kA2Hash = "227da37b4ffcac3c22799432866e25ef536b8e5a4134992e88e7a43654b09854";
constexpr const char* kA3 =
    "856f4a83fce6216f015000100123456789abcdef0123456789abcdef01010000000a010402041104130515053402420456045702700200"
    "0102000001020100027f0000017e00027f0174000201027f0402017f00021668690300";
constexpr const char* kA3Hash = "fce6216faee59a7055f911806076e2e0a182fbb0cc7b266c637a97ea7631121b";
// The single change of the saved document of §5(b).
constexpr const char* kB =
    "856f4a83872484f701890100100123456789abcdef0123456789abcdef01010000000a010802081108130b15183404420a560a57087002"
    "0003020000010300000302030001030600047f000002020000037e000400017d7c07017d057469746c65016e046c69737400027f0474657874"
    "00030302010302017f0202017f0403017d26140002147f00031668690101026865790900";
constexpr const char* kBHash = "872484f70ef791c30d8e3dea8d59d5864f036772f683fc05ef927c4d95bd022b";

constexpr const char* kActorHex = "0123456789abcdef0123456789abcdef";

Bytes hex(const char* h) { return *from_hex(h); }

Chunk single_chunk(const Bytes& bytes) {
  auto chunks = parse_chunks(bytes);
  EXPECT_TRUE(chunks.ok()) << (chunks.ok() ? "" : chunks.error().message);
  EXPECT_EQ(chunks->size(), 1u);
  return std::move((*chunks)[0]);
}

Change decode_ok(ByteView body) {
  auto c = decode_change(body);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(*c) : Change{};
}

void expect_round_trip(const char* chunk_hex, const char* hash_hex) {
  Bytes bytes = hex(chunk_hex);
  Chunk chunk = single_chunk(bytes);
  EXPECT_EQ(chunk.hash.hex(), hash_hex);
  Change c = decode_ok(chunk.body);
  Bytes body = encode_change_body(c);
  EXPECT_EQ(to_hex(body), to_hex(chunk.body));
  ChangeHash h;
  Bytes whole = encode_change(c, &h);
  EXPECT_EQ(to_hex(whole), chunk_hex);
  EXPECT_EQ(h.hex(), hash_hex);
}

Value string_value(const std::string& s) {
  Value v;
  v.type = static_cast<uint8_t>(ValueType::kString);
  v.bytes = s;
  return v;
}

TEST(Change, VectorA1) {
  Bytes bytes = hex(kA1);
  Chunk chunk = single_chunk(bytes);
  Change c = decode_ok(chunk.body);
  EXPECT_TRUE(c.deps.empty());
  EXPECT_EQ(to_hex(c.actor), kActorHex);
  EXPECT_EQ(c.seq, 1u);
  EXPECT_EQ(c.start_op, 1u);
  EXPECT_EQ(c.time, 0);
  EXPECT_EQ(c.message, "");
  EXPECT_TRUE(c.other_actors.empty());
  EXPECT_TRUE(c.extra.empty());
  EXPECT_TRUE(c.unknown_columns.empty());
  ASSERT_EQ(c.ops.size(), 1u);
  const Op& op = c.ops[0];
  EXPECT_EQ(op.id, (OpId{1, 0}));
  EXPECT_TRUE(op.obj.is_root());
  EXPECT_EQ(op.key.map_key, "title");
  EXPECT_FALSE(op.insert);
  EXPECT_EQ(op.action, static_cast<uint64_t>(Action::kSet));
  EXPECT_EQ(op.value, string_value("hi"));
  EXPECT_TRUE(op.pred.empty());
  EXPECT_FALSE(op.expand);
  EXPECT_FALSE(op.mark_name.has_value());
  EXPECT_EQ(c.max_op(), 1u);
  expect_round_trip(kA1, kA1Hash);
}

TEST(Change, VectorA2) {
  Bytes bytes = hex(kA2);
  Chunk chunk = single_chunk(bytes);
  Change c = decode_ok(chunk.body);
  ASSERT_EQ(c.deps.size(), 1u);
  EXPECT_EQ(c.deps[0].hex(), kA1Hash);
  EXPECT_EQ(c.seq, 2u);
  EXPECT_EQ(c.start_op, 2u);
  EXPECT_EQ(c.time, 1700000000000);
  EXPECT_EQ(c.message, "m");
  ASSERT_EQ(c.ops.size(), 2u);
  EXPECT_EQ(c.ops[0].id, (OpId{2, 0}));
  EXPECT_EQ(c.ops[0].key.map_key, "title");
  EXPECT_EQ(c.ops[0].value, string_value("yo"));
  ASSERT_EQ(c.ops[0].pred.size(), 1u);
  EXPECT_EQ(c.ops[0].pred[0], (OpId{1, 0}));
  EXPECT_EQ(c.ops[1].id, (OpId{3, 0}));
  EXPECT_EQ(c.ops[1].key.map_key, "n");
  EXPECT_EQ(c.ops[1].value.kind(), ValueType::kCounter);
  EXPECT_EQ(c.ops[1].value.int_value, 5);
  EXPECT_TRUE(c.ops[1].pred.empty());
  EXPECT_EQ(c.max_op(), 3u);
  expect_round_trip(kA2, kA2Hash);
}

TEST(Change, VectorA3Text) {
  Bytes bytes = hex(kA3);
  Chunk chunk = single_chunk(bytes);
  Change c = decode_ok(chunk.body);
  ASSERT_EQ(c.ops.size(), 3u);
  EXPECT_EQ(c.ops[0].action, static_cast<uint64_t>(Action::kMakeText));
  EXPECT_EQ(c.ops[0].key.map_key, "t");
  EXPECT_EQ(c.ops[0].value.kind(), ValueType::kNull);
  for (int i = 1; i <= 2; ++i) {
    const Op& op = c.ops[i];
    EXPECT_EQ(op.obj, (OpId{1, 0}));
    EXPECT_FALSE(op.key.is_map());
    EXPECT_TRUE(op.insert);
    EXPECT_EQ(op.action, static_cast<uint64_t>(Action::kSet));
  }
  EXPECT_EQ(c.ops[1].key.elem, (OpId{0, 0}));  // HEAD
  EXPECT_EQ(c.ops[2].key.elem, (OpId{2, 0}));
  EXPECT_EQ(c.ops[1].value, string_value("h"));
  EXPECT_EQ(c.ops[2].value, string_value("i"));
  expect_round_trip(kA3, kA3Hash);
}

TEST(Change, VectorBDocumentChange) {
  Bytes bytes = hex(kB);
  Chunk chunk = single_chunk(bytes);
  Change c = decode_ok(chunk.body);
  EXPECT_EQ(c.time, 0);
  ASSERT_EQ(c.ops.size(), 9u);
  // title, n, list (+1, +2), text (+h, e, y) in op order.
  EXPECT_EQ(c.ops[0].key.map_key, "title");
  EXPECT_EQ(c.ops[1].key.map_key, "n");
  EXPECT_EQ(c.ops[1].value.kind(), ValueType::kInt);
  EXPECT_EQ(c.ops[2].key.map_key, "list");
  EXPECT_EQ(c.ops[2].action, static_cast<uint64_t>(Action::kMakeList));
  EXPECT_EQ(c.ops[3].obj, (OpId{3, 0}));
  EXPECT_EQ(c.ops[3].key.elem, (OpId{0, 0}));
  EXPECT_EQ(c.ops[4].key.elem, (OpId{4, 0}));
  EXPECT_EQ(c.ops[5].action, static_cast<uint64_t>(Action::kMakeText));
  EXPECT_EQ(c.ops[8].value, string_value("y"));
  EXPECT_EQ(c.ops[8].key.elem, (OpId{8, 0}));
  expect_round_trip(kB, kBHash);
}

// Builds a change from scratch, exercising what the vectors do not: other actors,
// multi-pred conflicts, marks with expand, unknown columns and extra bytes.
Change built_change() {
  Change c;
  c.actor = {0xbb};
  c.other_actors = {{0xaa}, {0xcc}};
  c.seq = 3;
  c.start_op = 10;
  c.time = -7;
  c.message = "built";
  Op set;
  set.id = {10, 0};
  set.key.map_key = "k";
  set.value = string_value("v");
  set.pred = {{4, 1}, {4, 0}, {5, 2}};
  Op mark;
  mark.id = {11, 0};
  mark.obj = {2, 1};
  mark.key.elem = {3, 2};
  mark.insert = true;
  mark.action = static_cast<uint64_t>(Action::kMark);
  mark.value.type = static_cast<uint8_t>(ValueType::kTrue);
  mark.expand = true;
  mark.mark_name = "bold";
  Op inc;
  inc.id = {12, 0};
  inc.key.map_key = "c";
  inc.action = static_cast<uint64_t>(Action::kIncrement);
  inc.value.type = static_cast<uint8_t>(ValueType::kInt);
  inc.value.int_value = -3;
  inc.pred = {{9, 0}};
  c.ops = {set, mark, inc};
  c.unknown_columns = {{0xe5, {0x7f, 0x01, 0x61}}, {0x3f0, {0x01}}};
  c.extra = {0x01, 0x02, 0xab, 0xcd};
  return c;
}

TEST(Change, BuiltChangeRoundTrips) {
  Change c = built_change();
  Bytes body = encode_change_body(c);
  Change d = decode_ok(body);
  EXPECT_EQ(encode_change_body(d), body);
  ASSERT_EQ(d.ops.size(), 3u);
  EXPECT_EQ(d.other_actors, c.other_actors);
  EXPECT_EQ(d.ops[0].pred, c.ops[0].pred);
  EXPECT_EQ(d.ops[1].obj, (OpId{2, 1}));
  EXPECT_EQ(d.ops[1].key.elem, (OpId{3, 2}));
  EXPECT_TRUE(d.ops[1].expand);
  EXPECT_EQ(d.ops[1].mark_name, "bold");
  EXPECT_FALSE(d.ops[0].mark_name.has_value());
  EXPECT_EQ(d.ops[2].value.int_value, -3);
  EXPECT_EQ(d.unknown_columns, c.unknown_columns);
  EXPECT_EQ(d.extra, c.extra);
  EXPECT_EQ(d.message, "built");
  EXPECT_EQ(d.time, -7);
  EXPECT_EQ(d.actor_count(), 3u);
  EXPECT_EQ(d.actor_at(0), Bytes{0xbb});
  EXPECT_EQ(d.actor_at(2), Bytes{0xcc});
}

TEST(Change, EmptyChange) {
  Change c;
  c.actor = {1, 2};
  c.seq = 1;
  c.start_op = 5;
  Bytes body = encode_change_body(c);
  // deps 0, actor, seq, startOp, time, message, other actors, 0 columns.
  EXPECT_EQ(to_hex(body),
            "0002010201050000"
            "00"
            "00");
  Change d = decode_ok(body);
  EXPECT_TRUE(d.ops.empty());
  EXPECT_EQ(encode_change_body(d), body);
}

TEST(Change, RejectsDeflatedColumns) {
  Bytes body = *from_hex(
      "0001aa0101000000"
      "01"
      "4a02"
      "7f01");  // action column with the DEFLATE bit
  auto r = decode_change(body);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("DEFLATE"), std::string::npos) << r.error().message;
}

// A body (author aa, one other actor bb) with the given op columns: (spec, hex data),
// in spec order; empty data is still listed in the metadata.
Bytes body_with_columns(const std::vector<std::pair<uint32_t, std::string>>& columns) {
  Bytes body = *from_hex("0001aa010100000101bb");
  Bytes data;
  put_uleb(body, columns.size());
  for (const auto& [spec, h] : columns) {
    Bytes d = *from_hex(h);
    put_uleb(body, spec);
    put_uleb(body, d.size());
    append(data, d);
  }
  append(body, data);
  return body;
}

std::string decode_error(const Bytes& body, bool canonical = true) {
  ChangeDecodeOptions o;
  o.require_canonical = canonical;
  auto r = decode_change(body, o);
  return r.ok() ? "" : r.error().message;
}

void expect_error(const Bytes& body, const std::string& needle) {
  std::string e = decode_error(body);
  EXPECT_NE(e.find(needle), std::string::npos) << "error: '" << e << "', expected it to mention '" << needle << "'";
}

TEST(Change, ValidatesOps) {
  // The valid base: root["a"] = null.
  EXPECT_EQ(
      decode_error(body_with_columns({{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}})),
      "");
  // Unknown action code 8 (the reference rejects it: "unrecognized action index 8").
  expect_error(body_with_columns({{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f08"}, {0x56, "7f00"}, {0x70, "7f00"}}),
               "unknown action code 8");
  // Increment with a string value.
  expect_error(
      body_with_columns({{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f05"}, {0x56, "7f16"}, {0x57, "78"}, {0x70, "7f00"}}),
      "increment");
  // Key actor index 2 out of range (the change names 2 actors).
  expect_error(
      body_with_columns({{0x11, "7f02"}, {0x13, "7f05"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}}),
      "out of range");
  // Key with both a string and an element id.
  expect_error(body_with_columns({{0x11, "7f01"},
                                  {0x13, "7f05"},
                                  {0x15, "7f0161"},
                                  {0x34, "01"},
                                  {0x42, "7f01"},
                                  {0x56, "7f00"},
                                  {0x70, "7f00"}}),
               "both");
  // HEAD with an actor.
  expect_error(
      body_with_columns({{0x11, "7f01"}, {0x13, "7f00"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}}),
      "HEAD");
  // No key at all.
  expect_error(body_with_columns({{0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}}), "no key");
  // Object id with an actor but no counter.
  expect_error(body_with_columns(
                   {{0x01, "7f00"}, {0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}}),
               "object id");
  // Pred count 2 but only one pred entry.
  expect_error(body_with_columns({{0x15, "7f0161"},
                                  {0x34, "01"},
                                  {0x42, "7f01"},
                                  {0x56, "7f00"},
                                  {0x70, "7f02"},
                                  {0x71, "7f00"},
                                  {0x73, "7f01"}}),
               "pred 1 of 2");
  // Pred counter 0.
  expect_error(body_with_columns({{0x15, "7f0161"},
                                  {0x34, "01"},
                                  {0x42, "7f01"},
                                  {0x56, "7f00"},
                                  {0x70, "7f01"},
                                  {0x71, "7f00"},
                                  {0x73, "7f00"}}),
               "counter 0");
  // Invalid UTF-8 in a map key, a string value, a mark name.
  expect_error(body_with_columns({{0x15, "7f01ff"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}}),
               "UTF-8");
  expect_error(body_with_columns(
                   {{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f26"}, {0x57, "c0af"}, {0x70, "7f00"}}),
               "UTF-8");
  expect_error(body_with_columns(
                   {{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}, {0xa5, "7f01ff"}}),
               "UTF-8");
  // Truncated column data inside a valid metadata layout.
  expect_error(body_with_columns({{0x15, "7f05"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}}),
               "key string");
}

TEST(Change, CanonicalCheck) {
  // Action column "01 01" (a run of one) instead of "7f 01": the reference accepts it,
  // but re-encoding would change the bytes.
  Bytes run_of_one =
      body_with_columns({{0x15, "7f0161"}, {0x34, "01"}, {0x42, "0101"}, {0x56, "7f00"}, {0x70, "7f00"}});
  EXPECT_NE(decode_error(run_of_one).find("canonical"), std::string::npos) << decode_error(run_of_one);
  EXPECT_EQ(decode_error(run_of_one, /*canonical=*/false), "");
  // A present-but-empty column.
  Bytes empty_col =
      body_with_columns({{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x57, ""}, {0x70, "7f00"}});
  EXPECT_NE(decode_error(empty_col), "");
  Bytes empty_unknown =
      body_with_columns({{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}, {0xf0, ""}});
  EXPECT_NE(decode_error(empty_unknown), "");
  // A missing insert column (the canonical encoder always writes it).
  Bytes no_insert = body_with_columns({{0x15, "7f0161"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}});
  EXPECT_NE(decode_error(no_insert).find("insert"), std::string::npos) << decode_error(no_insert);
  EXPECT_EQ(decode_error(no_insert, false), "");
  // An all-false expand column (canonically omitted).
  Bytes false_expand =
      body_with_columns({{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f01"}, {0x56, "7f00"}, {0x70, "7f00"}, {0x94, "01"}});
  EXPECT_NE(decode_error(false_expand).find("expand"), std::string::npos) << decode_error(false_expand);
  // Trailing garbage after the last row of a column.
  Bytes trailing =
      body_with_columns({{0x15, "7f0161"}, {0x34, "01"}, {0x42, "7f017f01"}, {0x56, "7f00"}, {0x70, "7f00"}});
  EXPECT_NE(decode_error(trailing), "");
}

TEST(Change, CountsOpsWithoutDecodingThem) {
  for (const char* v : {kA1, kA2, kA3, kB}) {
    Bytes bytes = hex(v);
    Chunk chunk = single_chunk(bytes);
    auto change = decode_change(chunk.body);
    ASSERT_TRUE(change.ok()) << change.error().message;
    auto count = count_change_ops(chunk.body);
    ASSERT_TRUE(count.ok()) << count.error().message;
    EXPECT_EQ(*count, change->ops.size());
    for (size_t n = 0; n < chunk.body.size(); ++n) (void)count_change_ops(chunk.body.first(n));  // no crash
  }
}

TEST(Change, RefusesHugeOpCounts) {
  // Action column: one run of 2^40 sets, in 7 bytes; every other column a run too.
  Bytes run;
  put_sleb(run, int64_t{1} << 40);
  std::string n = to_hex(run);
  Bytes body =
      body_with_columns({{0x15, n + "0161"}, {0x34, "00"}, {0x42, n + "01"}, {0x56, n + "00"}, {0x70, n + "00"}});
  EXPECT_NE(decode_error(body).find("limit"), std::string::npos) << decode_error(body);
  EXPECT_FALSE(count_change_ops(body).ok());
  ChangeDecodeOptions small;
  small.max_ops = 2;
  Bytes three = body_with_columns({{0x15, "030161"}, {0x34, "03"}, {0x42, "0301"}, {0x56, "0300"}, {0x70, "0300"}});
  EXPECT_TRUE(decode_change(three).ok());
  EXPECT_FALSE(decode_change(three, small).ok());
}

TEST(Change, EveryTruncationFails) {
  for (const char* v : {kA1, kA2, kA3, kB}) {
    Bytes bytes = hex(v);
    Chunk chunk = single_chunk(bytes);
    Bytes body(chunk.body.begin(), chunk.body.end());
    for (size_t n = 0; n < body.size(); ++n) {
      Bytes cut(body.begin(), body.begin() + n);
      // These vectors have no extra bytes, so every cut lands in a counted field.
      auto r = decode_change(cut);
      EXPECT_FALSE(r.ok()) << "truncated at " << n;
      ChangeDecodeOptions lenient;
      lenient.require_canonical = false;
      EXPECT_FALSE(decode_change(cut, lenient).ok()) << "truncated at " << n;
    }
  }
}

TEST(Change, RandomByteFlipsNeverCrash) {
  std::mt19937 rng(1234);
  size_t decoded = 0;
  for (const char* v : {kA1, kA2, kA3, kB}) {
    Bytes bytes = hex(v);
    Chunk chunk = single_chunk(bytes);
    Bytes body(chunk.body.begin(), chunk.body.end());
    for (int i = 0; i < 4000; ++i) {
      Bytes b = body;
      int flips = 1 + static_cast<int>(rng() % 3);
      for (int f = 0; f < flips; ++f) b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
      auto r = decode_change(b);
      if (r.ok()) {
        ++decoded;
        EXPECT_EQ(encode_change_body(*r), b);
      }
      ChangeDecodeOptions lenient;
      lenient.require_canonical = false;
      auto l = decode_change(b, lenient);
      if (l.ok()) (void)encode_change_body(*l);
    }
  }
  // Flips inside values and strings still decode; most flips do not.
  EXPECT_GT(decoded, 0u);
}

TEST(Change, ActorHelpers) {
  // A change whose ops index a document's actor table [cc, bb, aa, dd].
  std::vector<ActorId> doc = {{0xcc}, {0xbb}, {0xaa}, {0xdd}};
  Change c;
  c.actor = {0xbb};
  c.seq = 1;
  c.start_op = 7;
  Op op;
  op.id = {7, 1};
  op.obj = {3, 0};       // cc
  op.key.elem = {4, 2};  // aa
  op.insert = true;
  op.pred = {{5, 1}, {5, 0}};
  c.ops = {op};
  localize_change_actors(c, doc);
  EXPECT_EQ(c.other_actors, (std::vector<ActorId>{{0xaa}, {0xcc}}));
  EXPECT_EQ(c.ops[0].id, (OpId{7, 0}));
  EXPECT_EQ(c.ops[0].obj, (OpId{3, 2}));
  EXPECT_EQ(c.ops[0].key.elem, (OpId{4, 1}));
  EXPECT_EQ(c.ops[0].pred, (std::vector<OpId>{{5, 0}, {5, 2}}));
  // And back: change index i -> document index of actor_at(i).
  std::vector<uint32_t> table = {1, 2, 0};
  remap_change_actors(c, table);
  EXPECT_EQ(c.ops[0].id, (OpId{7, 1}));
  EXPECT_EQ(c.ops[0].obj, (OpId{3, 0}));
  EXPECT_EQ(c.ops[0].key.elem, (OpId{4, 2}));
  EXPECT_EQ(c.ops[0].pred, (std::vector<OpId>{{5, 1}, {5, 0}}));
}

// Round-trips every change of a corpus file (a concatenation of change chunks made by
// tests/interop/tools/change_corpus.mjs from npm 3.5.0 and 2.2.8).
void corpus_round_trip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "cannot open " << path;
  Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto chunks = parse_chunks(data);
  ASSERT_TRUE(chunks.ok()) << chunks.error().message;
  ASSERT_GT(chunks->size(), 100u);
  size_t ops = 0, marks = 0, blocks = 0, expands = 0, incs = 0, multi_actor = 0, extra = 0, messages = 0, empty = 0,
         deletes = 0;
  for (const Chunk& chunk : *chunks) {
    auto c = decode_change(chunk.body);
    ASSERT_TRUE(c.ok()) << "change " << chunk.hash.hex() << ": " << c.error().message;
    ChangeHash h;
    Bytes whole = encode_change(*c, &h);
    ASSERT_EQ(to_hex(whole), to_hex(chunk.bytes)) << "change " << chunk.hash.hex();
    ASSERT_EQ(h, chunk.hash);
    ops += c->ops.size();
    empty += c->ops.empty();
    multi_actor += !c->other_actors.empty();
    extra += !c->extra.empty();
    messages += !c->message.empty();
    for (const Op& op : c->ops) {
      marks += op.action == static_cast<uint64_t>(Action::kMark);
      incs += op.action == static_cast<uint64_t>(Action::kIncrement);
      deletes += op.action == static_cast<uint64_t>(Action::kDelete);
      blocks += op.insert && op.action == static_cast<uint64_t>(Action::kMakeMap);
      expands += op.expand;
    }
  }
  std::cout << chunks->size() << " changes, " << ops << " ops, " << marks << " mark ops (" << expands << " expanding), "
            << blocks << " block markers, " << incs << " increments, " << deletes << " deletes, " << multi_actor
            << " with other actors, " << extra << " with extra bytes, " << messages << " with messages, " << empty
            << " empty\n";
  EXPECT_GT(marks, 0u);
  EXPECT_GT(expands, 0u);
  EXPECT_GT(blocks, 0u);
  EXPECT_GT(incs, 0u);
  EXPECT_GT(multi_actor, 0u);
  EXPECT_GT(extra, 0u);
  EXPECT_GT(empty, 0u);
}

TEST(Change, NpmCorpusRoundTrips) {
  corpus_round_trip(std::string(GM_SOURCE_DIR) + "/src/automerge/testdata/change_corpus.bin");
}

// During development: CHANGE_CORPUS=/path/to/larger.bin.
TEST(Change, ExternalCorpusRoundTrips) {
  const char* path = std::getenv("CHANGE_CORPUS");
  if (!path) GTEST_SKIP() << "set CHANGE_CORPUS to a corpus file to run";
  corpus_round_trip(path);
}

}  // namespace
}  // namespace gm::automerge
