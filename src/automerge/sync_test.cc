#include "automerge/sync.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>

#include "automerge/leb.h"
#include "util/hex.h"

namespace gm::automerge {
namespace {

std::map<std::string, std::string> read_vectors(const std::string& name) {
  std::ifstream in(std::string(GM_SHARED_DIR) + "/spec/vectors/automerge/out/" + name);
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.find(' ');
    if (sp != std::string::npos) out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

Bytes hex(const std::string& s) { return *from_hex(s); }

// A change chunk with no ops: the graph and the sync protocol read only headers.
Bytes make_change(const std::string& actor, uint64_t seq, std::vector<ChangeHash> deps, ChangeHash* hash) {
  std::sort(deps.begin(), deps.end());
  Bytes body;
  put_uleb(body, deps.size());
  for (const ChangeHash& d : deps) append(body, d.bytes);
  put_uleb(body, actor.size());
  append(body, as_bytes(actor));
  put_uleb(body, seq);
  put_uleb(body, seq);
  put_sleb(body, 0);
  put_uleb(body, 0);
  put_uleb(body, 0);
  put_uleb(body, 0);
  return make_chunk(ChunkType::kChange, body, hash);
}

// Appends `n` changes by `actor` on top of the graph's current heads.
void edit(ChangeGraph& g, const std::string& actor, int n) {
  uint64_t seq = 0;
  for (ChangeGraph::Index i = 0; i < g.size(); ++i) {
    if (g.actor(i) == Bytes(actor.begin(), actor.end())) seq = std::max(seq, g.seq(i));
  }
  for (int k = 0; k < n; ++k) {
    ChangeHash h;
    Bytes c = make_change(actor, ++seq, g.heads(), &h);
    ASSERT_TRUE(g.add_chunk(c).ok());
  }
}

std::vector<ChangeHash> sorted_hashes(const ChangeGraph& g) {
  std::vector<ChangeHash> v = g.hashes();
  std::sort(v.begin(), v.end());
  return v;
}

const ChangeHash kDocHead = *ChangeHash::from_hex("872484f70ef791c30d8e3dea8d59d5864f036772f683fc05ef927c4d95bd022b");

TEST(BloomFilter, MatchesSpecVector) {
  BloomFilter f(1);
  f.add(kDocHead);
  EXPECT_EQ(to_hex(f.encode()), "010a07a1e1");
  EXPECT_TRUE(f.contains(kDocHead));
  auto d = BloomFilter::decode(hex("010a07a1e1"));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->contains(kDocHead));
  EXPECT_EQ(*d, f);
  EXPECT_TRUE(BloomFilter().encode().empty());
  EXPECT_FALSE(BloomFilter().contains(kDocHead));
}

TEST(BloomFilter, ContainsWhatWasAddedAndRarelyMore) {
  std::vector<ChangeHash> in, out;
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {
    ChangeHash h;
    for (auto& b : h.bytes) b = static_cast<uint8_t>(rng());
    (i < 1000 ? in : out).push_back(h);
  }
  BloomFilter f = BloomFilter::from_hashes(in.begin(), in.end());
  auto round = BloomFilter::decode(f.encode());
  ASSERT_TRUE(round.ok());
  int false_positives = 0;
  for (auto& h : in) EXPECT_TRUE(round->contains(h));
  for (auto& h : out) false_positives += round->contains(h);
  EXPECT_LT(false_positives, 40);  // ~1% expected
}

TEST(BloomFilter, UsesTransmittedParametersAndRejectsBadOnes) {
  // 2 entries × 4 bits = 1 byte, 3 probes.
  auto f = BloomFilter::decode(hex("020403ff"));
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->contains(kDocHead));
  EXPECT_EQ(to_hex(f->encode()), "020403ff");
  EXPECT_FALSE(BloomFilter::decode(hex("020403")).ok());        // bits missing
  EXPECT_FALSE(BloomFilter::decode(hex("020403ffff")).ok());    // extra bytes
  EXPECT_FALSE(BloomFilter::decode(hex("01")).ok());            // truncated
  EXPECT_FALSE(BloomFilter::decode(hex("ffffffff0f0a07")).ok());  // absurd size
  EXPECT_FALSE(BloomFilter::decode(hex("010affffffff0f00")).ok());  // absurd probes
  EXPECT_TRUE(BloomFilter::decode(hex("010a200000")).ok());           // 32 probes
  EXPECT_FALSE(BloomFilter::decode(hex("010a210000")).ok());          // 33: more work than any peer asks
  // No entries: the parameters do not matter; it re-encodes as nothing.
  auto no_entries = BloomFilter::decode(hex("000001"));
  ASSERT_TRUE(no_entries.ok());
  EXPECT_EQ(*no_entries, BloomFilter());
  // Entries but no bits (bits per entry 0) cannot be probed: contains nothing.
  auto empty_bits = BloomFilter::decode(hex("010007"));
  ASSERT_TRUE(empty_bits.ok());
  EXPECT_FALSE(empty_bits->contains(kDocHead));
}

TEST(SyncMessage, SpecVectorsRoundTripByteExact) {
  auto v = read_vectors("02_doc_and_sync.txt");
  ASSERT_FALSE(v.empty());
  for (const char* name : {"sync_m1_doc_to_empty_hex", "sync_m2_empty_to_doc_hex", "sync_m3_doc_to_empty_hex",
                           "sync_m4_hex"}) {
    Bytes bytes = hex(v[name]);
    auto m = decode_sync_message(bytes);
    ASSERT_TRUE(m.ok()) << name << ": " << m.error().message;
    EXPECT_EQ(encode_sync_message(*m), bytes) << name;
    ASSERT_TRUE(m->flags.has_value());
    EXPECT_EQ(to_hex(*m->flags), "0284");
    EXPECT_EQ(m->flag_bits(), kFlagSupportsSyncReset);
  }
  const Bytes m1_bytes = hex(v["sync_m1_doc_to_empty_hex"]);
  auto m1 = *decode_sync_message(m1_bytes);
  EXPECT_EQ(m1.version, SyncVersion::kV1);
  EXPECT_EQ(m1.heads, std::vector<ChangeHash>{kDocHead});
  ASSERT_EQ(m1.have.size(), 1u);
  EXPECT_TRUE(m1.have[0].last_sync.empty());
  EXPECT_EQ(to_hex(m1.have[0].bloom.encode()), "010a07a1e1");
  const Bytes m3_bytes = hex(v["sync_m3_doc_to_empty_hex"]);
  auto m3 = *decode_sync_message(m3_bytes);
  EXPECT_EQ(m3.version, SyncVersion::kV2);
  ASSERT_EQ(m3.changes.size(), 1u);
  EXPECT_EQ(to_hex(m3.changes[0]), v["doc_save_hex"]);
}

TEST(SyncMessage, RejectsMalformedInputWithoutCrashing) {
  auto v = read_vectors("02_doc_and_sync.txt");
  Bytes m3 = hex(v["sync_m3_doc_to_empty_hex"]);
  // Every truncation that cuts into a field fails; cutting exactly before the flags
  // leaves a valid flag-less message.
  size_t flags_at = m3.size() - 3;
  for (size_t len = 0; len < m3.size(); ++len) {
    auto m = decode_sync_message(ByteView(m3).first(len));
    EXPECT_EQ(m.ok(), len == flags_at) << len;
  }
  EXPECT_FALSE(decode_sync_message(ByteView(hex("44000000000000"))).ok());  // bad type byte
  EXPECT_FALSE(decode_sync_message(ByteView(hex("42ffffffffffffffffff01"))).ok());  // absurd head count
  EXPECT_FALSE(decode_sync_message(ByteView(hex("420000ffffff7f"))).ok());    // absurd have count
  // Have entries (each: no lastSync, an empty filter): up to 4 (Automerge sends one).
  auto with_haves = [](size_t n) {
    std::string h = "420000" + to_hex(Bytes{static_cast<uint8_t>(n)});
    for (size_t i = 0; i < n; ++i) h += "0000";
    return hex(h + "00");
  };
  const Bytes four = with_haves(4), five = with_haves(5);
  EXPECT_TRUE(decode_sync_message(ByteView(four)).ok());
  EXPECT_FALSE(decode_sync_message(ByteView(five)).ok());
  EXPECT_FALSE(decode_sync_message(ByteView(hex("42000000ffffffff0f"))).ok());  // absurd change count
  EXPECT_FALSE(decode_sync_message(ByteView(hex("420000000105"))).ok());      // change longer than input
  // No flags, legacy flags, bitfield flags, and bytes after the flags.
  const Bytes none_bytes = hex("4200000000");
  auto none = decode_sync_message(none_bytes);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->flags.has_value());
  const Bytes legacy_bytes = hex("42000000000102");
  auto legacy = decode_sync_message(legacy_bytes);
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(legacy->flag_bits(), 0);
  EXPECT_TRUE(legacy->flags.has_value());
  const Bytes trailing_bytes = hex("4200000000020287ffff");
  auto trailing = decode_sync_message(trailing_bytes);
  ASSERT_TRUE(trailing.ok());
  EXPECT_EQ(trailing->flag_bits(), 7);
}

TEST(SyncState, EncodeDecode) {
  auto v = read_vectors("02_doc_and_sync.txt");
  SyncState s;
  s.shared_heads = {kDocHead};
  EXPECT_EQ(to_hex(encode_sync_state(s)), v["encoded_sync_state_s1"]);
  auto d = decode_sync_state(hex(v["encoded_sync_state_s1"]));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->shared_heads, s.shared_heads);
  ASSERT_TRUE(d->their_have.has_value());
  EXPECT_TRUE(d->their_have->empty());
  EXPECT_FALSE(d->their_heads.has_value());
  EXPECT_FALSE(decode_sync_state(hex("4201")).ok());
  EXPECT_FALSE(decode_sync_state(hex("4200")).ok());
  EXPECT_FALSE(decode_sync_state({}).ok());
}

// The spec's exchange (vector c), generated by our side on both ends.
TEST(Sync, ReproducesNpmExchangeByteExact) {
  auto v = read_vectors("02_doc_and_sync.txt");
  ChangeGraph doc, empty;
  ASSERT_TRUE(doc.load(hex(v["doc_change_0_hex"])).ok());
  SyncOptions doc_options;
  Bytes saved = hex(v["doc_save_hex"]);
  doc_options.save_document = [&] { return saved; };
  SyncState doc_state, empty_state;

  auto m1 = generate_sync_message(doc, doc_state, doc_options);
  ASSERT_TRUE(m1.has_value());
  EXPECT_EQ(to_hex(encode_sync_message(*m1)), v["sync_m1_doc_to_empty_hex"]);
  ASSERT_TRUE(receive_sync_message(empty, empty_state, *m1).ok());

  auto m2 = generate_sync_message(empty, empty_state);
  ASSERT_TRUE(m2.has_value());
  EXPECT_EQ(to_hex(encode_sync_message(*m2)), v["sync_m2_empty_to_doc_hex"]);
  ASSERT_TRUE(receive_sync_message(doc, doc_state, *m2).ok());

  auto m3 = generate_sync_message(doc, doc_state, doc_options);
  ASSERT_TRUE(m3.has_value());
  EXPECT_EQ(to_hex(encode_sync_message(*m3)), v["sync_m3_doc_to_empty_hex"]);
  Status s = receive_sync_message(empty, empty_state, *m3);
  if (!s.ok() && s.error().message.find("not implemented") != std::string::npos) {
    GTEST_SKIP() << "document chunk expansion not available yet: " << s.error().message;
  }
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(empty.heads(), std::vector<ChangeHash>{kDocHead});

  auto m4 = generate_sync_message(empty, empty_state);
  ASSERT_TRUE(m4.has_value());
  EXPECT_EQ(to_hex(encode_sync_message(*m4)), v["sync_m4_hex"]);
  ASSERT_TRUE(receive_sync_message(doc, doc_state, *m4).ok());
  EXPECT_FALSE(generate_sync_message(doc, doc_state, doc_options).has_value());  // m5 = null
  EXPECT_EQ(to_hex(encode_sync_state(doc_state)), v["encoded_sync_state_s1"]);
}

TEST(Sync, RequestPayloadOfAnEmptyPeer) {
  ChangeGraph g;
  SyncState s;
  auto m = generate_sync_message(g, s);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(to_hex(encode_sync_message(*m)), "42000001000000020284");
  // Without flags: the same, minus the flags section.
  SyncState s2;
  SyncOptions no_flags;
  no_flags.send_flags = false;
  EXPECT_EQ(to_hex(encode_sync_message(*generate_sync_message(g, s2, no_flags))), "42000001000000");
}

TEST(Sync, ResetReplyWhenPeerClaimsSharedChangesWeLack) {
  ChangeGraph g;
  ChangeHash head;
  ASSERT_TRUE(g.add_chunk(make_change("aa", 1, {}, &head)).ok());
  SyncState s;
  SyncMessage incoming;
  incoming.heads = {kDocHead};
  incoming.have.push_back(SyncHave{{kDocHead}, BloomFilter()});
  incoming.flags = make_flags(kFlagSupportsSyncReset);
  ASSERT_TRUE(receive_sync_message(g, s, incoming).ok());
  auto m = generate_sync_message(g, s);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(to_hex(encode_sync_message(*m)), "4201" + head.hex() + "0001000000020284");
}

// Runs the protocol between two graphs until neither has anything to say.
struct Peer {
  ChangeGraph graph;
  SyncState state;
  SyncOptions options;
};

int sync_until_quiet(Peer& a, Peer& b, int max_rounds = 100) {
  int messages = 0;
  for (int round = 0; round < max_rounds; ++round) {
    auto ab = generate_sync_message(a.graph, a.state, a.options);
    if (ab) {
      ++messages;
      Bytes wire = encode_sync_message(*ab);
      Status s = receive_sync_message(b.graph, b.state, wire);
      EXPECT_TRUE(s.ok()) << s.error().message;
    }
    auto ba = generate_sync_message(b.graph, b.state, b.options);
    if (ba) {
      ++messages;
      Bytes wire = encode_sync_message(*ba);
      Status s = receive_sync_message(a.graph, a.state, wire);
      EXPECT_TRUE(s.ok()) << s.error().message;
    }
    if (!ab && !ba) return messages;
  }
  ADD_FAILURE() << "no convergence after " << max_rounds << " rounds";
  return messages;
}

void expect_converged(const Peer& a, const Peer& b) {
  EXPECT_EQ(a.graph.heads(), b.graph.heads());
  EXPECT_EQ(sorted_hashes(a.graph), sorted_hashes(b.graph));
  EXPECT_EQ(a.graph.queued_count(), 0u);
  EXPECT_EQ(b.graph.queued_count(), 0u);
}

enum class Start { kBothEmpty, kOneEmpty, kDisjoint, kSharedPrefix, kConcurrentBranches, kMany, kSame };

void build(Start start, Peer& a, Peer& b) {
  switch (start) {
    case Start::kBothEmpty:
      break;
    case Start::kOneEmpty:
      edit(a.graph, "aa", 5);
      break;
    case Start::kDisjoint:
      edit(a.graph, "aa", 3);
      edit(b.graph, "bb", 4);
      break;
    case Start::kSharedPrefix:
    case Start::kConcurrentBranches:
    case Start::kMany:
    case Start::kSame: {
      int prefix = start == Start::kMany ? 3000 : 10;
      edit(a.graph, "aa", prefix);
      for (ChangeGraph::Index i = 0; i < a.graph.size(); ++i) ASSERT_TRUE(b.graph.add_chunk(a.graph.chunk(i)).ok());
      if (start == Start::kSame) break;
      edit(a.graph, "aa", start == Start::kMany ? 500 : 2);
      edit(b.graph, "bb", 3);
      if (start == Start::kConcurrentBranches) {
        // More actors branching off each side's history.
        edit(a.graph, "cc", 2);
        edit(b.graph, "dd", 1);
        edit(b.graph, "bb", 2);
      }
      break;
    }
  }
}

class SyncConverges : public ::testing::TestWithParam<std::tuple<Start, bool, bool, bool>> {};

TEST_P(SyncConverges, FromStartingState) {
  auto [start, a_flags, b_flags, a_saves] = GetParam();
  Peer a, b;
  build(start, a, b);
  a.options.send_flags = a_flags;
  b.options.send_flags = b_flags;
  // A whole-document "save" made of the change chunks back to back: what a V2 send
  // carries when the sender has no op set, and loadable by any graph.
  if (a_saves) {
    a.options.save_document = [&a] {
      Bytes out;
      for (ChangeGraph::Index i = 0; i < a.graph.size(); ++i) append(out, a.graph.chunk(i));
      return out;
    };
  }
  sync_until_quiet(a, b);
  expect_converged(a, b);
  // Then both sides edit concurrently and sync again on the same states.
  edit(a.graph, "ee", 2);
  edit(b.graph, "ff", 1);
  sync_until_quiet(a, b);
  expect_converged(a, b);
  // A new connection starting from persisted states.
  edit(a.graph, "ee", 1);
  Peer a2{a.graph, *decode_sync_state(encode_sync_state(a.state)), a.options};
  Peer b2{b.graph, *decode_sync_state(encode_sync_state(b.state)), b.options};
  sync_until_quiet(a2, b2);
  expect_converged(a2, b2);
}

INSTANTIATE_TEST_SUITE_P(
    AllStarts, SyncConverges,
    ::testing::Combine(::testing::Values(Start::kBothEmpty, Start::kOneEmpty, Start::kDisjoint, Start::kSharedPrefix,
                                         Start::kConcurrentBranches, Start::kMany, Start::kSame),
                       ::testing::Bool(), ::testing::Bool(), ::testing::Bool()));

void expect_same_state(const SyncState& a, const SyncState& b) {
  EXPECT_EQ(a.shared_heads, b.shared_heads);
  EXPECT_EQ(a.last_sent_heads, b.last_sent_heads);
  EXPECT_EQ(a.their_heads, b.their_heads);
  EXPECT_EQ(a.their_need, b.their_need);
  EXPECT_EQ(a.their_have, b.their_have);
  EXPECT_EQ(a.sent_hashes, b.sent_hashes);
  EXPECT_EQ(a.sent_document_heads, b.sent_document_heads);
  EXPECT_EQ(a.in_flight, b.in_flight);
  EXPECT_EQ(a.have_responded, b.have_responded);
  EXPECT_EQ(a.their_capabilities.has_value(), b.their_capabilities.has_value());
  EXPECT_EQ(a.peer_supports_v2(), b.peer_supports_v2());
  EXPECT_EQ(a.peer_read_only, b.peer_read_only);
}

// The same message, but that the whole document may come with a summary of "all up to
// our heads" instead of a filter of every change (generate_sync_message on a
// SavedDocument).
void expect_same_but_summary(const SyncMessage& a, const SyncMessage& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.heads, b.heads);
  EXPECT_EQ(a.need, b.need);
  EXPECT_EQ(a.flags, b.flags);
  ASSERT_EQ(a.have.size(), b.have.size());
  const bool whole_document = a.version == SyncVersion::kV2 && a.heads.size() > 0 && a.changes.size() == 1 && b.have.size() == 1 && b.have[0].last_sync == b.heads && b.have[0].bloom.entries() == 0;
  for (size_t i = 0; i < a.have.size() && !whole_document; ++i) EXPECT_EQ(a.have[i], b.have[i]);
  ASSERT_EQ(a.changes.size(), b.changes.size());
  for (size_t i = 0; i < a.changes.size(); ++i) {
    EXPECT_TRUE(std::equal(a.changes[i].begin(), a.changes[i].end(), b.changes[i].begin(), b.changes[i].end()));
  }
}

// A server answering from its saved document (heads and saved form) until a message
// needs the changes, beside one with the graph all along, each with its own client:
// the same server states and messages at every step, and the same end.
class SavedDocumentSync : public ::testing::TestWithParam<std::tuple<Start, bool>> {};

TEST_P(SavedDocumentSync, AnswersAsTheGraphUntilItNeedsIt) {
  auto [start, client_flags] = GetParam();
  Peer graph_server, graph_client;
  build(start, graph_server, graph_client);
  ASSERT_FALSE(graph_server.graph.empty());
  graph_client.options.send_flags = client_flags;
  Bytes saved;
  for (ChangeGraph::Index i = 0; i < graph_server.graph.size(); ++i) append(saved, graph_server.graph.chunk(i));
  graph_server.options.save_document = [&saved] { return saved; };
  Peer saved_server = graph_server, saved_client = graph_client;  // its graph is used once expanded
  const SavedDocument doc{graph_server.graph.heads(), saved};
  bool expanded = false;
  int answered_from_saved = 0;
  for (int round = 0; round < 100; ++round) {
    auto cg = generate_sync_message(graph_client.graph, graph_client.state, graph_client.options);
    auto cs = generate_sync_message(saved_client.graph, saved_client.state, saved_client.options);
    ASSERT_EQ(cg.has_value(), cs.has_value());
    if (cg) {
      EXPECT_TRUE(*cg == *cs);
      ASSERT_TRUE(receive_sync_message(graph_server.graph, graph_server.state, *cg).ok());
      expanded = expanded || !receive_sync_message(doc, saved_server.state, *cs);
      if (expanded) {
        ASSERT_TRUE(receive_sync_message(saved_server.graph, saved_server.state, *cs).ok());
      }
      expect_same_state(graph_server.state, saved_server.state);
    }
    auto sg = generate_sync_message(graph_server.graph, graph_server.state, graph_server.options);
    std::optional<SyncMessage> ss;
    if (!expanded && generate_sync_message(doc, saved_server.state, saved_server.options, &ss)) {
      ++answered_from_saved;
    } else {
      expanded = true;
      ss = generate_sync_message(saved_server.graph, saved_server.state, saved_server.options);
    }
    ASSERT_EQ(sg.has_value(), ss.has_value());
    expect_same_state(graph_server.state, saved_server.state);
    if (sg) {
      expect_same_but_summary(*sg, *ss);
      ASSERT_TRUE(receive_sync_message(graph_client.graph, graph_client.state, *sg).ok());
      ASSERT_TRUE(receive_sync_message(saved_client.graph, saved_client.state, *ss).ok());
    }
    if (!cg && !sg) break;
  }
  expect_converged(graph_server, graph_client);
  expect_converged(saved_server, saved_client);
  if ((start == Start::kOneEmpty && client_flags) || start == Start::kSame) {
    // A peer with nothing that takes V2, and a peer with everything: no graph needed.
    EXPECT_FALSE(expanded);
    EXPECT_GT(answered_from_saved, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(AllStarts, SavedDocumentSync,
                         ::testing::Combine(::testing::Values(Start::kOneEmpty, Start::kDisjoint, Start::kSharedPrefix,
                                                              Start::kConcurrentBranches, Start::kSame),
                                            ::testing::Bool()));

TEST(Sync, SavedDocumentLeavesTheStateAloneWhenItNeedsTheChanges) {
  ChangeGraph g;
  edit(g, "aa", 3);
  Bytes saved;
  for (ChangeGraph::Index i = 0; i < g.size(); ++i) append(saved, g.chunk(i));
  const SavedDocument doc{g.heads(), saved};
  ChangeHash older = g.hash(0);
  std::vector<SyncMessage> needing(3);
  needing[0].heads = {older};  // known, but not one of our heads
  needing[1].heads = {*ChangeHash::from_hex(std::string(64, 'f'))};  // unknown
  needing[2].heads = g.heads();
  needing[2].changes.push_back(g.chunk(2));  // carries changes
  for (SyncMessage& m : needing) {
    SyncState state;
    EXPECT_FALSE(receive_sync_message(doc, state, m));
    EXPECT_FALSE(state.their_heads.has_value());
  }
  // Their heads are ours but they ask for a change by hash: the graph must find it.
  SyncMessage asks;
  asks.heads = g.heads();
  asks.need = {older};
  SyncState state;
  ASSERT_TRUE(receive_sync_message(doc, state, asks));
  SyncState before = state;
  std::optional<SyncMessage> out;
  EXPECT_FALSE(generate_sync_message(doc, state, {}, &out));
  expect_same_state(before, state);
  // A fresh state (no message yet) needs the graph for its summary.
  SyncState fresh;
  EXPECT_FALSE(generate_sync_message(doc, fresh, {}, &out));
}

TEST(Sync, WithoutFlagsOnlyV1ChangeChunksFlow) {
  Peer server, client;
  server.options.send_flags = false;
  edit(client.graph, "cc", 20);
  edit(server.graph, "ss", 5);
  // The client behaves like npm (flags); the server never advertises V2.
  for (int round = 0; round < 20; ++round) {
    auto cs = generate_sync_message(client.graph, client.state, client.options);
    if (cs) {
      EXPECT_EQ(cs->version, SyncVersion::kV1);
      for (ByteView c : cs->changes) EXPECT_EQ(c[8], 1);  // a type-1 chunk each
      ASSERT_TRUE(receive_sync_message(server.graph, server.state, encode_sync_message(*cs)).ok());
    }
    auto sc = generate_sync_message(server.graph, server.state, server.options);
    if (sc) {
      EXPECT_FALSE(sc->flags.has_value());
      ASSERT_TRUE(receive_sync_message(client.graph, client.state, encode_sync_message(*sc)).ok());
    }
    if (!cs && !sc) break;
  }
  expect_converged(server, client);
}

TEST(Sync, AWholeDocumentSentIsRememberedByItsHeads) {
  Peer server, client;
  edit(server.graph, "ss", 1000);
  edit(client.graph, "cc", 2);
  server.options.save_document = [&server] {
    Bytes out;
    for (ChangeGraph::Index i = 0; i < server.graph.size(); ++i) append(out, server.graph.chunk(i));
    return out;
  };
  auto hello = generate_sync_message(client.graph, client.state, client.options);
  ASSERT_TRUE(hello);
  Bytes hello_bytes = encode_sync_message(*hello);
  ASSERT_TRUE(receive_sync_message(server.graph, server.state, hello_bytes).ok());
  // The client lacks more than a third of the server's changes: the whole document.
  auto whole = generate_sync_message(server.graph, server.state, server.options);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->version, SyncVersion::kV2);
  EXPECT_EQ(server.state.sent_document_heads, server.graph.heads());
  EXPECT_TRUE(server.state.sent_hashes.empty());
  // A new change before the client answers: only it goes out, not the 1000 again.
  edit(server.graph, "ss", 1);
  auto next = generate_sync_message(server.graph, server.state, server.options);
  ASSERT_TRUE(next);
  ASSERT_EQ(next->changes.size(), 1u);
  ByteView newest = server.graph.chunk(static_cast<ChangeGraph::Index>(server.graph.size() - 1));
  EXPECT_TRUE(std::equal(next->changes[0].begin(), next->changes[0].end(), newest.begin(), newest.end()));
  Bytes whole_bytes = encode_sync_message(*whole), next_bytes = encode_sync_message(*next);
  ASSERT_TRUE(receive_sync_message(client.graph, client.state, whole_bytes).ok());
  ASSERT_TRUE(receive_sync_message(client.graph, client.state, next_bytes).ok());
  // Once the client's heads cover what was sent, nothing counts as in flight.
  sync_until_quiet(client, server);
  expect_converged(client, server);
  EXPECT_TRUE(server.state.sent_document_heads.empty());
}

TEST(Sync, ChangesAskedForAfterAWholeDocumentAllGoOut) {
  // Two changes made after the document went out, asked for by hash (`need`, hash
  // order) while the peer has not acknowledged the document: both are sent, whatever
  // their order in the graph.
  for (int attempt = 0; attempt < 8; ++attempt) {
    Peer server;
    edit(server.graph, "ss", 6);
    server.options.save_document = [] { return Bytes{}; };  // the bytes do not matter here
    SyncMessage hello;
    hello.version = SyncVersion::kV1;
    hello.have.emplace_back();
    hello.flags = make_flags(kFlagSupportsSyncReset);
    ASSERT_TRUE(receive_sync_message(server.graph, server.state, encode_sync_message(hello)).ok());
    ASSERT_TRUE(generate_sync_message(server.graph, server.state, server.options));
    ASSERT_FALSE(server.state.sent_document_heads.empty());
    const std::vector<ChangeHash> document_heads = server.graph.heads();
    ChangeHash a, b;
    ASSERT_TRUE(server.graph.add_chunk(make_change("a" + std::to_string(attempt), 1, document_heads, &a)).ok());
    ASSERT_TRUE(server.graph.add_chunk(make_change("b" + std::to_string(attempt), 1, document_heads, &b)).ok());
    if (!(b < a)) continue;  // want the graph's order to differ from hash order
    SyncMessage ask;
    ask.version = SyncVersion::kV1;
    ask.heads = {*ChangeHash::from_hex(std::string(64, '7'))};  // unknown to us: no acknowledgement
    ask.need = {b, a};
    ask.flags = make_flags(kFlagSupportsSyncReset);
    ASSERT_TRUE(receive_sync_message(server.graph, server.state, encode_sync_message(ask)).ok());
    server.options.save_document = nullptr;
    auto reply = generate_sync_message(server.graph, server.state, server.options);
    ASSERT_TRUE(reply);
    size_t sent = 0;
    for (ByteView c : reply->changes) sent += parse_chunks(c)->size();
    EXPECT_EQ(sent, 2u);
    return;
  }
  GTEST_SKIP() << "no pair of changes whose hash order differs from their order";
}

// The shape of differential corpus seed 12 document 23 (v2): b's head is a change
// made on top of history both peers share, a has five changes b lacks, one of them
// depending on that shared history. npm 3.5.0 settles it in four messages, each
// change going once to the peer that lacks it. (npm 2.2.8 then bounces b's head back
// and forth: when that change has no ops, its clock keeps the actor's previous seq,
// as Clock::include keeps the entry with the larger max_op, so getChanges(heads)
// still lists the head. The C++ engine, like 3.x, goes by ancestry.)
TEST(Sync, ChangesAPeerHasAreNotSentBack) {
  Peer a, b;
  edit(a.graph, "xx", 11);
  for (ChangeGraph::Index i = 0; i < a.graph.size(); ++i) ASSERT_TRUE(b.graph.add_chunk(a.graph.chunk(i)).ok());
  const std::vector<ChangeHash> shared = a.graph.heads();
  edit(b.graph, "xx", 1);
  edit(a.graph, "yy", 4);
  ChangeHash merge;
  std::vector<ChangeHash> deps = a.graph.heads();
  deps.insert(deps.end(), shared.begin(), shared.end());
  ASSERT_TRUE(a.graph.add_chunk(make_change("yy", 5, deps, &merge)).ok());

  std::vector<size_t> changes_per_message;
  size_t redundant = 0;
  auto send = [&](Peer& from, Peer& to) {
    auto m = generate_sync_message(from.graph, from.state, from.options);
    if (!m) return false;
    size_t n = 0;
    for (ByteView entry : m->changes) {
      for (const Chunk& c : *parse_chunks(entry)) {
        ++n;
        if (to.graph.has(c.hash)) ++redundant;
      }
    }
    changes_per_message.push_back(n);
    EXPECT_TRUE(receive_sync_message(to.graph, to.state, encode_sync_message(*m)).ok());
    return true;
  };
  for (int round = 0; round < 20; ++round) {
    bool ab = send(a, b);
    bool ba = send(b, a);
    if (!ab && !ba) break;
  }
  expect_converged(a, b);
  EXPECT_EQ(redundant, 0u);
  EXPECT_EQ(changes_per_message, (std::vector<size_t>{0, 1, 5, 0}));
}

TEST(Sync, PeerThatLostEverythingGetsAFullResync) {
  Peer a, b;
  edit(a.graph, "aa", 4);
  sync_until_quiet(a, b);
  expect_converged(a, b);
  // b loses its data; a reconnects with the persisted shared heads.
  Peer a2{a.graph, *decode_sync_state(encode_sync_state(a.state)), a.options};
  Peer fresh;
  sync_until_quiet(a2, fresh);
  expect_converged(a2, fresh);
  // And the other way round: the peer that lost data remembers nothing, the other
  // remembers shared heads.
  Peer lost;
  Peer b2{b.graph, *decode_sync_state(encode_sync_state(b.state)), b.options};
  sync_until_quiet(lost, b2);
  expect_converged(lost, b2);
}

TEST(Sync, ChangesArrivingOutOfOrderAreRequestedByNeed) {
  // b holds a change whose dependency it lacks (queued); syncing with a, which has
  // the whole history, fills the gap.
  Peer a, b;
  edit(a.graph, "aa", 3);
  ASSERT_TRUE(b.graph.add_chunk(a.graph.chunk(2)).ok());
  EXPECT_EQ(b.graph.queued_count(), 1u);
  sync_until_quiet(a, b);
  expect_converged(a, b);
}

TEST(Sync, ReadOnlyPeerIgnoresChanges) {
  Peer a, b;
  edit(a.graph, "aa", 2);
  edit(b.graph, "bb", 2);
  b.state.read_only = true;
  sync_until_quiet(a, b);
  // a got b's changes; b ignored a's.
  EXPECT_EQ(a.graph.size(), 4u);
  EXPECT_EQ(b.graph.size(), 2u);
}

// ---------------------------------------------------------------------------------
// Hash lists a peer controls (issue 12): bounded at decode, linear to act on.

std::vector<ChangeHash> random_hashes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<ChangeHash> out(n);
  for (ChangeHash& h : out) {
    for (uint8_t& b : h.bytes) b = static_cast<uint8_t>(rng());
  }
  return out;
}

// A graph of a few changes, and a peer that has exchanged one message with it.
ChangeGraph small_graph() {
  ChangeGraph g;
  edit(g, "aa", 3);
  return g;
}

TEST(SyncLimits, HugeHeadsOrNeedAreRefusedAtDecode) {
  const std::vector<ChangeHash> many = random_hashes(kMaxSyncHashes + 1, 1);
  const std::vector<ChangeHash> most = random_hashes(kMaxSyncHashes, 2);
  for (int field = 0; field < 3; ++field) {  // heads, need, have lastSync
    SyncMessage m;
    m.have.emplace_back();
    auto& list = field == 0 ? m.heads : field == 1 ? m.need : m.have[0].last_sync;
    list = many;
    const Bytes over = encode_sync_message(m);
    auto decoded = decode_sync_message(over);
    ASSERT_FALSE(decoded.ok()) << field;
    EXPECT_TRUE(decoded.error().code == ErrorCode::kOverLimit) << field << ": " << decoded.error().message;
    // Refused before anything is applied or remembered.
    ChangeGraph g = small_graph();
    SyncState s;
    Status r = receive_sync_message(g, s, over);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().code == ErrorCode::kOverLimit);
    EXPECT_FALSE(s.their_heads.has_value());
    // At the limit it decodes.
    list = most;
    const Bytes at = encode_sync_message(m);
    auto ok = decode_sync_message(at);
    ASSERT_TRUE(ok.ok()) << field << ": " << ok.error().message;
    EXPECT_EQ(ok->heads.size() + ok->need.size() + ok->have[0].last_sync.size(), kMaxSyncHashes);
  }
  // A persisted sync state's shared heads too.
  SyncState s;
  s.shared_heads = many;
  auto state = decode_sync_state(encode_sync_state(s));
  ASSERT_FALSE(state.ok());
  EXPECT_TRUE(state.error().code == ErrorCode::kOverLimit);
  s.shared_heads = most;
  EXPECT_TRUE(decode_sync_state(encode_sync_state(s)).ok());
}

// 64k unknown heads given directly (not through decode, which refuses them): the reply
// asks for every one of them, and the work to find that is linear in their number
// (it was quadratic: `need_covered` searched the heads once per need, 10 s here).
TEST(SyncLimits, ManyUnknownHeadsAreAnsweredWithTheirNeed) {
  ChangeGraph g = small_graph();
  SyncState s;
  SyncMessage m;
  m.heads = random_hashes(65536, 3);
  m.need = random_hashes(65536, 4);
  m.have.emplace_back();
  ASSERT_TRUE(receive_sync_message(g, s, m).ok());
  for (int edit_round = 0; edit_round < 3; ++edit_round) {  // the cost recurred on every edit
    auto reply = generate_sync_message(g, s);
    ASSERT_TRUE(reply.has_value());
    std::vector<ChangeHash> expected = m.heads;
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(reply->need, expected);
    EXPECT_EQ(reply->have.size(), 1u);  // every need is among their heads: covered
    s.in_flight = false;
    edit(g, "bb", 1);
  }
}

// Their heads, some known and some not, unsorted and repeated: the need is the unknown
// ones, and a need that is not among their heads withholds our have.
TEST(SyncLimits, NeedCoveredOnlyWhenEveryNeedIsAmongTheirHeads) {
  ChangeGraph g = small_graph();
  std::vector<ChangeHash> unknown = random_hashes(5, 5);
  SyncState s;
  SyncMessage m;
  m.heads = {unknown[3], g.heads()[0], unknown[1], unknown[3]};
  m.have.emplace_back();
  ASSERT_TRUE(receive_sync_message(g, s, m).ok());
  auto reply = generate_sync_message(g, s);
  ASSERT_TRUE(reply.has_value());
  std::vector<ChangeHash> need = {unknown[1], unknown[3]};
  std::sort(need.begin(), need.end());
  EXPECT_EQ(reply->need, need);
  EXPECT_EQ(reply->have.size(), 1u);

  // Their head is a change we hold queued for a dependency we lack: we need the
  // dependency, which is not among their heads, so no have yet.
  ChangeGraph q = small_graph();
  ChangeHash queued;
  ASSERT_TRUE(q.add_chunk(make_change("cc", 1, {unknown[0]}, &queued)).ok());
  ASSERT_TRUE(q.is_queued(queued));
  SyncState qs;
  SyncMessage qm;
  qm.heads = {unknown[2], queued};
  qm.have.emplace_back();
  ASSERT_TRUE(receive_sync_message(q, qs, qm).ok());
  auto qreply = generate_sync_message(q, qs);
  ASSERT_TRUE(qreply.has_value());
  need = {unknown[0], unknown[2]};
  std::sort(need.begin(), need.end());
  EXPECT_EQ(qreply->need, need);
  EXPECT_TRUE(qreply->have.empty());
}

}  // namespace
}  // namespace gm::automerge
