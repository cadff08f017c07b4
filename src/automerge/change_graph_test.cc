#include "automerge/change_graph.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <iostream>
#include <map>
#include <numeric>

#include "automerge/document.h"
#include "automerge/leb.h"
#include "util/hex.h"

namespace gm::automerge {
namespace {

// A change chunk with no ops: enough for the graph, which reads only the header.
struct TestChange {
  Bytes chunk;
  ChangeHash hash;
};

TestChange make_change(const std::string& actor, uint64_t seq, std::vector<ChangeHash> deps,
                       const std::string& message = "") {
  std::sort(deps.begin(), deps.end());
  Bytes body;
  put_uleb(body, deps.size());
  for (const ChangeHash& d : deps) append(body, d.bytes);
  put_uleb(body, actor.size());
  append(body, as_bytes(actor));
  put_uleb(body, seq);
  put_uleb(body, seq);  // startOp
  put_sleb(body, 1700000000);
  put_uleb(body, message.size());
  append(body, as_bytes(message));
  put_uleb(body, 0);  // other actors
  put_uleb(body, 0);  // op columns
  TestChange c;
  c.chunk = make_chunk(ChunkType::kChange, body, &c.hash);
  return c;
}

std::vector<ChangeHash> sorted(std::vector<ChangeHash> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<ChangeHash> hashes_of(const ChangeGraph& g, const std::vector<ChangeGraph::Index>& idx) {
  std::vector<ChangeHash> out;
  for (auto i : idx) out.push_back(g.hash(i));
  return out;
}

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

TEST(ChangeGraph, LinearHistoryKeepsBytesHeadsAndHeaders) {
  ChangeGraph g;
  auto a1 = make_change("aa", 1, {});
  auto a2 = make_change("aa", 2, {a1.hash});
  auto a3 = make_change("aa", 3, {a2.hash});
  std::vector<ChangeGraph::Index> applied;
  ASSERT_TRUE(g.add_chunk(a1.chunk, &applied).ok());
  ASSERT_TRUE(g.add_chunk(a2.chunk, &applied).ok());
  ASSERT_TRUE(g.add_chunk(a3.chunk, &applied).ok());
  EXPECT_EQ(applied, (std::vector<ChangeGraph::Index>{0, 1, 2}));
  EXPECT_EQ(g.size(), 3u);
  EXPECT_EQ(g.heads(), std::vector<ChangeHash>{a3.hash});
  EXPECT_EQ(Bytes(g.chunk(1).begin(), g.chunk(1).end()), a2.chunk);
  EXPECT_EQ(g.hash(2), a3.hash);
  EXPECT_EQ(g.seq(2), 3u);
  EXPECT_EQ(g.start_op(2), 3u);
  EXPECT_EQ(g.actor(0), Bytes({'a', 'a'}));
  ASSERT_EQ(g.deps(2).size(), 1u);
  EXPECT_EQ(g.deps(2)[0], 1u);
  EXPECT_TRUE(g.has(a2.hash));
  EXPECT_EQ(*g.find(a2.hash), 1u);
}

TEST(ChangeGraph, QueuesChangesUntilDepsArrive) {
  ChangeGraph g;
  auto a1 = make_change("aa", 1, {});
  auto a2 = make_change("aa", 2, {a1.hash});
  auto b1 = make_change("bb", 1, {a1.hash});
  auto m = make_change("aa", 3, {a2.hash, b1.hash});
  std::vector<ChangeGraph::Index> applied;
  ASSERT_TRUE(g.add_chunk(m.chunk, &applied).ok());
  ASSERT_TRUE(g.add_chunk(a2.chunk, &applied).ok());
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(g.queued_count(), 2u);
  EXPECT_TRUE(g.is_queued(m.hash));
  // getMissingDeps: a1 (needed by a2) and b1 (needed by m).
  EXPECT_EQ(g.missing_deps(), sorted({a1.hash, b1.hash}));
  // main's need rule: only what is reachable from the given heads.
  EXPECT_EQ(g.missing_deps_from(std::vector<ChangeHash>{a2.hash}), std::vector<ChangeHash>{a1.hash});
  std::vector<ChangeHash> unknown{make_change("cc", 1, {}).hash};
  EXPECT_EQ(g.missing_deps_from(unknown), unknown);

  ASSERT_TRUE(g.add_chunk(a1.chunk, &applied).ok());
  EXPECT_EQ(hashes_of(g, applied), (std::vector<ChangeHash>{a1.hash, a2.hash}));
  EXPECT_EQ(g.queued_count(), 1u);
  EXPECT_EQ(g.heads(), std::vector<ChangeHash>{a2.hash});
  ASSERT_TRUE(g.add_chunk(b1.chunk, &applied).ok());
  EXPECT_EQ(hashes_of(g, applied), (std::vector<ChangeHash>{a1.hash, a2.hash, b1.hash, m.hash}));
  EXPECT_EQ(g.queued_count(), 0u);
  EXPECT_EQ(g.heads(), std::vector<ChangeHash>{m.hash});
  EXPECT_TRUE(g.missing_deps().empty());
}

TEST(ChangeGraph, QueueOfOrphanChangesIsBounded) {
  ChangeGraph g;
  auto a1 = make_change("aa", 1, {});
  auto a2 = make_change("aa", 2, {a1.hash});
  auto b1 = make_change("bb", 1, {a1.hash});
  g.set_max_queued_bytes(a2.chunk.size() + b1.chunk.size() / 2);
  ASSERT_TRUE(g.add_chunk(a2.chunk).ok());
  EXPECT_EQ(g.queued_bytes(), a2.chunk.size());
  // The next orphan would pass the bound: refused with an error, nothing else changes.
  Status full = g.add_chunk(b1.chunk);
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.error().message.find("queue"), std::string::npos) << full.error().message;
  EXPECT_EQ(g.queued_count(), 1u);
  // Released changes free their room.
  std::vector<ChangeGraph::Index> applied;
  ASSERT_TRUE(g.add_chunk(a1.chunk, &applied).ok());
  EXPECT_EQ(applied.size(), 2u);
  EXPECT_EQ(g.queued_bytes(), 0u);
  ASSERT_TRUE(g.add_chunk(b1.chunk).ok());
  EXPECT_EQ(g.size(), 3u);
}

TEST(ChangeGraph, IgnoresDuplicatesAppliedOrQueued) {
  ChangeGraph g;
  auto a1 = make_change("aa", 1, {});
  auto a2 = make_change("aa", 2, {a1.hash});
  std::vector<ChangeGraph::Index> applied;
  ASSERT_TRUE(g.add_chunk(a2.chunk, &applied).ok());
  ASSERT_TRUE(g.add_chunk(a2.chunk, &applied).ok());
  EXPECT_EQ(g.queued_count(), 1u);
  Bytes both = a1.chunk;
  append(both, a1.chunk);
  ASSERT_TRUE(g.load(both, &applied).ok());
  ASSERT_TRUE(g.add_chunk(a1.chunk, &applied).ok());
  EXPECT_EQ(applied.size(), 2u);
  EXPECT_EQ(g.size(), 2u);
}

TEST(ChangeGraph, ConcurrentBranchesHaveSortedHeads) {
  ChangeGraph g;
  auto a1 = make_change("aa", 1, {});
  auto b1 = make_change("bb", 1, {a1.hash});
  auto c1 = make_change("cc", 1, {a1.hash});
  auto d1 = make_change("dd", 1, {a1.hash});
  Bytes all;
  for (auto* c : {&a1, &b1, &c1, &d1}) append(all, c->chunk);
  ASSERT_TRUE(g.load(all).ok());
  EXPECT_EQ(g.heads(), sorted({b1.hash, c1.hash, d1.hash}));
  auto m = make_change("aa", 2, {b1.hash, c1.hash});
  ASSERT_TRUE(g.add_chunk(m.chunk).ok());
  EXPECT_EQ(g.heads(), sorted({m.hash, d1.hash}));
}

TEST(ChangeGraph, RejectsDuplicateSequenceNumbers) {
  ChangeGraph g;
  auto a1 = make_change("aa", 1, {});
  auto a1b = make_change("aa", 1, {}, "other");
  ASSERT_TRUE(g.add_chunk(a1.chunk).ok());
  Status s = g.add_chunk(a1b.chunk);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("duplicate sequence number"), std::string::npos);
  EXPECT_EQ(g.size(), 1u);
}

TEST(ChangeGraph, MalformedInputAppliesNothing) {
  ChangeGraph g;
  auto a1 = make_change("aa", 1, {});
  Bytes data = a1.chunk;
  Bytes bad = make_change("bb", 1, {}).chunk;
  bad[bad.size() - 1] ^= 1;  // checksum no longer matches
  append(data, bad);
  std::vector<ChangeGraph::Index> applied;
  EXPECT_FALSE(g.load(data, &applied).ok());
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(g.size(), 0u);
  // Truncated and garbage input.
  EXPECT_FALSE(g.load(ByteView(a1.chunk).first(a1.chunk.size() - 1)).ok());
  EXPECT_FALSE(g.load(as_bytes("hello world")).ok());
  EXPECT_TRUE(g.load(ByteView{}).ok());
  EXPECT_FALSE(g.add_chunk({}).ok());
}

TEST(ChangeGraph, AcceptsCompressedChangesAndStoresThemUncompressed) {
  auto a1 = make_change("aa", 1, {}, std::string(600, 'x'));
  // A type-2 chunk: the type-1 checksum, then the DEFLATEd type-1 body.
  Reader r(a1.chunk);
  ASSERT_TRUE(r.bytes(9, "hdr").ok());
  ByteView body = *r.length_prefixed("body");
  Bytes deflated = deflate_raw(body);
  Bytes compressed(a1.chunk.begin(), a1.chunk.begin() + 8);
  compressed.push_back(2);
  put_uleb(compressed, deflated.size());
  append(compressed, deflated);
  ChangeGraph g;
  ASSERT_TRUE(g.load(compressed).ok());
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g.hash(0), a1.hash);
  EXPECT_EQ(Bytes(g.chunk(0).begin(), g.chunk(0).end()), a1.chunk);
}

TEST(ChangeGraph, LoadsRealChangesFromNpm) {
  auto v = read_vectors("01_basic.txt");
  ASSERT_FALSE(v.empty());
  ChangeGraph g;
  for (const char* name : {"a1", "a2"}) {
    Bytes chunk = *from_hex(v[std::string(name) + "_change_hex"]);
    ASSERT_TRUE(g.load(chunk).ok()) << name;
    EXPECT_EQ(g.hash(g.size() - 1).hex(), v[std::string(name) + "_hash"]);
  }
  EXPECT_EQ(g.heads()[0].hex(), v["a2_hash"]);
  // a3 is the first change of another document by the same actor: seq 1 again.
  EXPECT_FALSE(g.load(*from_hex(v["a3_change_hex"])).ok());
}

TEST(ChangeGraph, ChangesSinceAndAncestry) {
  ChangeGraph g;
  auto a1 = make_change("aa", 1, {});
  auto a2 = make_change("aa", 2, {a1.hash});
  auto b1 = make_change("bb", 1, {a1.hash});
  auto b2 = make_change("bb", 2, {b1.hash});
  auto m = make_change("aa", 3, {a2.hash, b2.hash});
  Bytes all;
  for (auto* c : {&a1, &a2, &b1, &b2, &m}) append(all, c->chunk);
  ASSERT_TRUE(g.load(all).ok());
  using H = std::vector<ChangeHash>;
  EXPECT_EQ(hashes_of(g, g.changes_since({})), (H{a1.hash, a2.hash, b1.hash, b2.hash, m.hash}));
  EXPECT_EQ(hashes_of(g, g.changes_since(H{a2.hash})), (H{b1.hash, b2.hash, m.hash}));
  EXPECT_EQ(hashes_of(g, g.changes_since(H{b1.hash})), (H{a2.hash, b2.hash, m.hash}));
  EXPECT_EQ(hashes_of(g, g.changes_since(H{a2.hash, b2.hash})), (H{m.hash}));
  EXPECT_TRUE(g.changes_since(H{m.hash}).empty());
  // Unknown hashes are ignored.
  EXPECT_EQ(g.changes_since(H{make_change("zz", 1, {}).hash}).size(), 5u);

  EXPECT_TRUE(g.is_ancestor(0, 4));
  EXPECT_TRUE(g.is_ancestor(2, 4));
  EXPECT_FALSE(g.is_ancestor(1, 3));
  EXPECT_TRUE(g.is_ancestor(3, 3));

  ChangeHashSet set{a1.hash, a2.hash, b1.hash, b2.hash, m.hash};
  g.remove_ancestors(set, H{b1.hash});
  EXPECT_EQ(set, (ChangeHashSet{a2.hash, b2.hash, m.hash}));
  g.remove_ancestors(set, H{m.hash});
  EXPECT_TRUE(set.empty());
}

// changes_since against a brute-force ancestor computation on random DAGs.
TEST(ChangeGraph, ChangesSinceMatchesBruteForceOnRandomGraphs) {
  std::mt19937 rng(7);
  for (int round = 0; round < 30; ++round) {
    ChangeGraph g;
    std::vector<TestChange> changes;
    std::vector<uint64_t> seqs(4, 0);
    std::vector<int> last(4, -1);  // an actor's changes form a chain, as in Automerge
    int n = 5 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      int actor = static_cast<int>(rng() % 4);
      std::set<ChangeHash> deps;
      int ndeps = i == 0 ? 0 : 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < ndeps; ++k) deps.insert(changes[rng() % changes.size()].hash);
      if (last[actor] >= 0) deps.insert(changes[last[actor]].hash);
      last[actor] = i;
      changes.push_back(make_change(std::string(1, static_cast<char>('a' + actor)), ++seqs[actor],
                                    std::vector<ChangeHash>(deps.begin(), deps.end())));
    }
    // Add in a shuffled order: exercises the queue too.
    std::vector<size_t> order(changes.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) ASSERT_TRUE(g.add_chunk(changes[i].chunk).ok());
    ASSERT_EQ(g.size(), changes.size());
    // Ancestor sets by brute force over the application order.
    size_t sz = g.size();
    std::vector<std::vector<bool>> anc(sz, std::vector<bool>(sz, false));
    for (ChangeGraph::Index i = 0; i < sz; ++i) {
      anc[i][i] = true;
      for (auto d : g.deps(i)) {
        ASSERT_LT(d, i);
        for (size_t k = 0; k < sz; ++k)
          if (anc[d][k]) anc[i][k] = true;
      }
    }
    for (int q = 0; q < 10; ++q) {
      std::vector<ChangeHash> heads;
      std::vector<ChangeGraph::Index> hi;
      int nh = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < nh; ++k) {
        hi.push_back(static_cast<ChangeGraph::Index>(rng() % sz));
        heads.push_back(g.hash(hi.back()));
      }
      std::vector<ChangeGraph::Index> expect;
      for (ChangeGraph::Index i = 0; i < sz; ++i) {
        bool is_anc = false;
        for (auto h : hi) is_anc = is_anc || anc[h][i];
        if (!is_anc) expect.push_back(i);
      }
      EXPECT_EQ(g.changes_since(heads), expect);
      for (auto h : hi)
        for (ChangeGraph::Index i = 0; i < sz; ++i) EXPECT_EQ(g.is_ancestor(i, h), anc[h][i]);
    }
  }
}

TEST(ChangeGraph, ManyChangesAreCheap) {
  constexpr int kN = 100000;
  std::vector<TestChange> changes;
  changes.reserve(kN);
  Bytes all;
  for (int i = 0; i < kN; ++i) {
    changes.push_back(make_change("aa", i + 1, i ? std::vector<ChangeHash>{changes.back().hash}
                                                 : std::vector<ChangeHash>{}));
    append(all, changes.back().chunk);
  }
  auto t0 = std::chrono::steady_clock::now();
  ChangeGraph g;
  std::vector<ChangeGraph::Index> applied;
  ASSERT_TRUE(g.load(all, &applied).ok());
  auto t1 = std::chrono::steady_clock::now();
  EXPECT_EQ(applied.size(), static_cast<size_t>(kN));
  EXPECT_EQ(g.heads(), std::vector<ChangeHash>{changes.back().hash});
  // Near the tip, changes_since walks only what it returns.
  for (int k = 0; k < 1000; ++k) {
    auto since = g.changes_since(std::vector<ChangeHash>{changes[kN - 3].hash});
    ASSERT_EQ(since.size(), 2u);
  }
  auto t2 = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "load " << kN << " changes: " << ms(t1 - t0) << " ms; 1000 changes_since: " << ms(t2 - t1)
            << " ms\n";
  // Loading in reverse order goes entirely through the queue.
  Bytes reversed;
  for (int i = kN - 1; i >= 0; --i) append(reversed, changes[i].chunk);
  ChangeGraph r;
  ASSERT_TRUE(r.load(reversed).ok());
  EXPECT_EQ(r.size(), static_cast<size_t>(kN));
  EXPECT_EQ(r.queued_count(), 0u);
  EXPECT_EQ(r.hashes(), g.hashes());
}

}  // namespace
}  // namespace gm::automerge

namespace gm::automerge {
namespace {

// A change chunk by `actor` whose columns are runs of `ops` map sets of key "a" to
// null: a few bytes, whatever `ops` is.
TestChange change_with_ops(const std::string& actor, uint64_t ops) {
  Bytes body;
  put_uleb(body, 0);  // deps
  put_uleb(body, actor.size());
  append(body, as_bytes(actor));
  put_uleb(body, 1), put_uleb(body, 1);                     // seq, startOp
  put_sleb(body, 0), put_uleb(body, 0), put_uleb(body, 0);  // time, message, other actors
  Bytes run;
  put_sleb(run, static_cast<int64_t>(ops));
  std::vector<std::pair<uint32_t, Bytes>> columns = {{0x15, run}, {0x34, {}}, {0x42, run}, {0x56, run}, {0x70, run}};
  append(columns[0].second, Bytes{0x01, 'a'});  // key "a"
  put_uleb(columns[1].second, ops);             // insert: `ops` × false
  columns[2].second.push_back(1);               // action: set
  columns[3].second.push_back(0);               // value: null
  columns[4].second.push_back(0);               // no preds
  put_uleb(body, columns.size());
  for (const auto& [spec, data] : columns) put_uleb(body, spec), put_uleb(body, data.size());
  for (const auto& [spec, data] : columns) append(body, data);
  TestChange c;
  c.chunk = make_chunk(ChunkType::kChange, body, &c.hash);
  return c;
}

TEST(ChangeGraph, CountsOpsAndRefusesChangesPastTheLimit) {
  TestChange a = change_with_ops("aa", 4), b = change_with_ops("bb", 5), c = change_with_ops("cc", 2);
  ChangeGraph g;
  g.set_max_ops(10);
  Bytes ab = a.chunk;
  append(ab, b.chunk);
  ASSERT_TRUE(g.load(ab).ok());
  EXPECT_EQ(g.op_count(), 9u);
  Status s = g.load(c.chunk);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("together more than the limit of 10 ops"), std::string::npos)
      << s.error().message;
  EXPECT_FALSE(g.has(c.hash));
  EXPECT_EQ(g.op_count(), 9u);

  // The default limit: a 70-byte change claiming 4M ops fits once; with the first
  // one's ops, a second cannot, and is refused without its ops being decoded.
  ChangeGraph d;
  ASSERT_TRUE(d.load(change_with_ops("aa", kMaxDocumentRows - 2).chunk).ok());
  EXPECT_FALSE(d.load(change_with_ops("bb", 3).chunk).ok());
  EXPECT_TRUE(d.load(change_with_ops("cc", 2).chunk).ok());
  EXPECT_EQ(d.op_count(), kMaxDocumentRows);

  // Trusted input (documents read back from storage) has no op limit; limited again after.
  g.set_trusted(true);
  ASSERT_TRUE(g.load(c.chunk).ok());
  EXPECT_EQ(g.op_count(), 11u);
  g.set_trusted(false);
  EXPECT_FALSE(g.load(change_with_ops("dd", 1).chunk).ok());
}

// A valid document chunk of `changes` empty changes by actor `a`, each with the same
// `length`-byte message: its columns DEFLATEd, about a hundred bytes that rebuild
// into megabytes.
Bytes repeated_message_document(uint8_t a, size_t changes, size_t length) {
  DecodedDocument doc;
  doc.actors = {Bytes(16, a)};
  const std::string message(length, 'm');
  for (uint32_t i = 0; i < changes; ++i) {
    std::vector<uint32_t> dep;
    if (i > 0) dep.push_back(i - 1);
    doc.add_change(0, i + 1, 0, 0, dep, &message);
  }
  // Without heads the expansion fails, saying which heads it rebuilt.
  auto rebuilt = expand_document(doc);
  const std::string said = rebuilt ? std::string() : rebuilt.error().message;
  const size_t at = said.find("rebuilt: ");
  EXPECT_NE(at, std::string::npos) << said;
  if (at != std::string::npos) doc.heads = {*ChangeHash::from_hex(said.substr(at + 9, 64))};
  return encode_document(doc);
}

// The document chunks of one load share one budget for their rebuilt changes: each of
// these rebuilds within what its own size allows (the 16 MiB every chunk may take),
// but three of them in one message do not; and the same chunk twice is expanded once.
TEST(ChangeGraph, DocumentChunksOfOneLoadShareTheirExpansionBudget) {
  const Bytes one = repeated_message_document(1, 20000, 600);
  const size_t rebuilt_size = [&] {
    ChangeGraph g;
    EXPECT_TRUE(g.load(one).ok());
    size_t bytes = 0;
    for (ChangeGraph::Index i = 0; i < g.size(); ++i) bytes += g.chunk(i).size();
    return bytes;
  }();
  ASSERT_LT(rebuilt_size, document_expansion_limit(one.size()));
  ASSERT_GT(3 * rebuilt_size, document_expansion_limit(3 * one.size()));

  Bytes three = one;
  append(three, repeated_message_document(2, 20000, 600));
  append(three, repeated_message_document(3, 20000, 600));
  ChangeGraph g;
  Status s = g.load(three);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("bytes rebuilt"), std::string::npos) << s.error().message;
  EXPECT_TRUE(g.empty());

  Bytes twice = one;
  append(twice, one);
  ChangeGraph h;
  std::vector<ChangeGraph::Index> applied;
  ASSERT_TRUE(h.load(twice, &applied).ok());
  EXPECT_EQ(applied.size(), 20000u);
}

// Likewise their rows: a message of many chunks, each within what its own size
// allows, decodes at most as many rows as one chunk may (max_ops, and at most
// kMaxDocumentRows), not that many per chunk.
TEST(ChangeGraph, DocumentChunksOfOneLoadShareTheirRowBudget) {
  const Bytes one = repeated_message_document(1, 40000, 0);
  ChangeGraph alone;
  alone.set_max_ops(50000);
  ASSERT_TRUE(alone.load(one).ok());
  Bytes two = one;
  append(two, repeated_message_document(2, 40000, 0));
  ChangeGraph g;
  g.set_max_ops(50000);
  Status s = g.load(two);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("rows"), std::string::npos) << s.error().message;
  EXPECT_TRUE(g.empty());
}

// Every caller that decodes a document chunk itself (GroupRepo checks its op order,
// Document takes its op set) gets it through the graph, under the graph's limits: a
// chunk rebuilding into more than its size allows is refused for a peer's graph and
// decoded for a trusted one; its ops alone must be within the op limit before anything
// is rebuilt, and the changes it adds count against what the graph holds.
TEST(ChangeGraph, DecodesDocumentChunksUnderItsOwnLimits) {
  const Bytes bomb = repeated_message_document(1, 20000, 1000);  // ~20 MB rebuilt
  size_t consumed = 0;
  auto bomb_chunk = parse_chunk(bomb, &consumed);
  ASSERT_TRUE(bomb_chunk.ok());
  ChangeGraph peer;
  auto refused = peer.decode_document_chunk(bomb_chunk->body);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("bytes rebuilt"), std::string::npos) << refused.error().message;
  ChangeGraph stored;
  stored.set_trusted(true);
  auto decoded = stored.decode_document_chunk(bomb_chunk->body);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->expanded.size(), 20000u);
  ASSERT_TRUE(stored.load_document(decoded->doc, std::move(decoded->expanded)).ok());
  EXPECT_EQ(stored.size(), 20000u);

  std::ifstream in(std::string(GM_SOURCE_DIR) + "/src/automerge/testdata/counter_100k.amrg", std::ios::binary);
  const Bytes counter((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto counter_chunk = parse_chunk(counter, &consumed);
  ASSERT_TRUE(counter_chunk.ok());
  ChangeGraph full;
  full.set_max_ops(200'000);
  ASSERT_TRUE(full.load(change_with_ops("aa", 150'000).chunk).ok());
  auto decoded_counter = full.decode_document_chunk(counter_chunk->body);
  ASSERT_TRUE(decoded_counter.ok()) << decoded_counter.error().message;
  Status over = full.load_document(decoded_counter->doc, std::move(decoded_counter->expanded));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.error().message.find("more than the limit of 200000 ops"), std::string::npos) << over.error().message;
  ChangeGraph small;
  small.set_max_ops(50'000);
  auto too_big = small.decode_document_chunk(counter_chunk->body);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, ErrorCode::kOverLimit) << too_big.error().message;
}

// A peer that holds a large document and makes one more change sends the whole document
// back (Automerge does when it has over a third of its changes to send): its ops are
// mostly ours, and only the new change counts against the limit.
TEST(ChangeGraph, AWholeDocumentWithOneMoreChangeFitsWhereTheDocumentDoes) {
  std::ifstream in(std::string(GM_SOURCE_DIR) + "/src/automerge/testdata/counter_100k.amrg", std::ios::binary);
  const Bytes counter((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ChangeGraph ours;
  ASSERT_TRUE(ours.load(counter).ok());
  ours.set_max_ops(ours.op_count() + ours.op_count() / 2);
  Change next;
  next.actor = Bytes(16, 0xbb);
  next.seq = 1;
  next.start_op = ours.op_count() + 1;
  next.deps = ours.heads();
  next.ops.resize(1);
  next.ops[0].key.map_key = "k";
  Bytes both = counter;
  append(both, encode_change(next));
  auto theirs = Document::load(both);
  ASSERT_TRUE(theirs.ok()) << theirs.error().message;
  std::vector<ChangeGraph::Index> applied;
  Status s = ours.load(theirs->save(), &applied);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(applied.size(), 1u);
  EXPECT_EQ(ours.heads(), theirs->heads());
}

// The same, for the memory it takes: room is made for the one new change, not for the
// whole document again (sizing for every change rebuilt doubled the graph).
TEST(ChangeGraph, AWholeDocumentSentAgainGrowsTheGraphByItsNewChangeOnly) {
  std::ifstream in(std::string(GM_SOURCE_DIR) + "/src/automerge/testdata/counter_100k.amrg", std::ios::binary);
  const Bytes counter((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ChangeGraph ours;
  ASSERT_TRUE(ours.load(counter).ok());
  Change next;
  next.actor = Bytes(16, 0xbb);
  next.seq = 1;
  next.start_op = ours.op_count() + 1;
  next.deps = ours.heads();
  next.ops.resize(1);
  next.ops[0].key.map_key = "k";
  Bytes both = counter;
  append(both, encode_change(next));
  auto theirs = Document::load(both);
  ASSERT_TRUE(theirs.ok());
  const Bytes whole = theirs->save();
  ::malloc_trim(0);
  const size_t before = ::mallinfo2().uordblks + ::mallinfo2().hblkhd;
  ASSERT_TRUE(ours.load(whole).ok());
  ::malloc_trim(0);
  const size_t after = ::mallinfo2().uordblks + ::mallinfo2().hblkhd;
  EXPECT_LT(static_cast<int64_t>(after) - static_cast<int64_t>(before), static_cast<int64_t>(ours.chunk_bytes() / 4));
}

// Changes whose dependencies are missing are kept by save(), after the document chunk
// in the order they came, as npm's save() keeps them. testdata/orphan_mixed.amrg is
// npm 3.5.0's save of {z: 1} followed by a change (setting b on another document)
// whose dependency is not there; orphan_mixed.npm-save.amrg is npm's
// save(loadIncremental(load(that save), that change)).
TEST(Document, SaveKeepsChangesWaitingForTheirDependencies) {
  auto read = [](const std::string& name) {
    std::ifstream in(std::string(GM_SOURCE_DIR) + "/src/automerge/testdata/" + name, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const Bytes input = read("orphan_mixed.amrg"), npm = read("orphan_mixed.npm-save.amrg");
  ASSERT_FALSE(input.empty());
  auto doc = Document::load(input);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(doc->graph().queued_count(), 1u);
  EXPECT_EQ(doc->save(), npm);
  auto again = Document::load(doc->save());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->graph().queued_count(), 1u);
}

// Uniform changes made in a loop are far denser than typed text: npm 3.5.0 saves a
// counter incremented 100,000 times within one second (each its own change) in 306
// bytes, 200,001 rows. A client sending it whole must get it stored.
TEST(ChangeGraph, ADenseDocumentFromNpmLoadsFromAPeer) {
  std::ifstream in(std::string(GM_SOURCE_DIR) + "/src/automerge/testdata/counter_100k.amrg", std::ios::binary);
  const Bytes saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(saved.size(), 306u);
  ChangeGraph g;
  Status s = g.load(saved);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(g.size(), 100'001u);
  EXPECT_EQ(g.op_count(), 100'001u);
}

// The 260k-change benchmark document, through document-chunk expansion.
TEST(ChangeGraph, LoadsBenchmarkDocuments) {
  for (const char* name : {"text-doc-50k.amrg", "text-doc.amrg"}) {
    std::ifstream in(std::string(GM_SHARED_DIR) + "/data/automerge-perf/" + name, std::ios::binary);
    if (!in) GTEST_SKIP() << name << " not present";
    Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto t0 = std::chrono::steady_clock::now();
    ChangeGraph g;
    std::vector<ChangeGraph::Index> applied;
    Status s = g.load(data, &applied);
    auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(s.ok()) << name << ": " << s.error().message;
    EXPECT_EQ(applied.size(), g.size());
    EXPECT_EQ(g.size(), std::string(name) == "text-doc.amrg" ? 259779u : 50001u);
    EXPECT_EQ(g.queued_count(), 0u);
    std::cout << name << ": " << g.size() << " changes in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count() << " ms\n";
    // Loading it again adds nothing: all its heads are known.
    applied.clear();
    ASSERT_TRUE(g.load(data, &applied).ok());
    EXPECT_TRUE(applied.empty());

    // Ops counted from the document's change rows = ops counted from each change.
    Bytes changes;
    for (ChangeGraph::Index i = 0; i < g.size(); ++i) append(changes, g.chunk(i));
    ChangeGraph from_changes;
    ASSERT_TRUE(from_changes.load(changes).ok());
    EXPECT_EQ(from_changes.op_count(), g.op_count());
    EXPECT_GE(g.op_count(), g.size());
    // A document over the limit is refused whole.
    ChangeGraph small;
    small.set_max_ops(g.op_count() - 1);
    EXPECT_FALSE(small.load(data).ok());
    EXPECT_TRUE(small.empty());
  }
}

// A peer may send many changes with no dependencies at once: each is a new head.
// Heads are updated once per batch (they were kept sorted per change: 64k such changes
// cost 64k × 32k hash moves), and come out as before: sorted, without dependencies.
TEST(ChangeGraph, ManyHeadsInOneBatch) {
  ChangeGraph g;
  Bytes batch;
  std::vector<ChangeHash> roots;
  for (int i = 0; i < 65536; ++i) {
    TestChange c = make_change("r" + std::to_string(i), 1, {});
    append(batch, c.chunk);
    roots.push_back(c.hash);
  }
  ASSERT_TRUE(g.load(batch).ok());
  EXPECT_EQ(g.heads(), sorted(roots));
  // A merge of half of them leaves it and the other half.
  std::vector<ChangeHash> half(roots.begin(), roots.begin() + 32768);
  TestChange merge = make_change("m", 1, half);
  TestChange child = make_change("m", 2, {merge.hash, roots[40000]});
  Bytes two = merge.chunk;
  append(two, child.chunk);
  ASSERT_TRUE(g.load(two).ok());
  std::vector<ChangeHash> expected(roots.begin() + 32768, roots.end());
  std::erase(expected, roots[40000]);
  expected.push_back(child.hash);
  EXPECT_EQ(g.heads(), sorted(expected));
  // Out of order: the child queued, then its dependency; heads right after each call.
  ChangeGraph q;
  TestChange a = make_change("a", 1, {});
  TestChange b = make_change("a", 2, {a.hash});
  ASSERT_TRUE(q.add_chunk(b.chunk).ok());
  EXPECT_TRUE(q.heads().empty());
  ASSERT_TRUE(q.add_chunk(a.chunk).ok());
  EXPECT_EQ(q.heads(), std::vector<ChangeHash>{b.hash});
}

}  // namespace
}  // namespace gm::automerge

namespace gm::automerge {
namespace {

Bytes read_testdata(const std::string& name) {
  std::ifstream in(std::string(GM_SOURCE_DIR) + "/src/automerge/testdata/" + name, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The documents npm 3.5.0 refuses to load (doc_chunk_test.cc lists npm's messages) are
// refused wherever bytes come in: a load (a stored file, the doc CLI), a trusted load
// (storage), the graph alone (the repo), and a whole document in a sync message (an
// upload). decode_document is the one place that refuses them.
TEST(ChangeGraph, DocumentsNpmRefusesAreRefusedOnEveryPath) {
  for (const char* name : {"refused_mark_end_first_v2.amrg", "refused_counter_2p32.amrg",
                           "refused_succ_counter_2p32.amrg", "refused_max_op_2p32.amrg"}) {
    SCOPED_TRACE(name);
    const Bytes bytes = read_testdata(name);
    ASSERT_FALSE(bytes.empty());
    EXPECT_FALSE(Document::load(bytes).ok());
    EXPECT_FALSE(Document::load(bytes, /*trusted=*/true).ok());
    ChangeGraph graph;
    EXPECT_FALSE(graph.load(bytes).ok());
    EXPECT_TRUE(graph.empty());
    Document doc;
    SyncState state;
    SyncMessage m;
    m.version = SyncVersion::kV2;
    m.add_owned(bytes);
    EXPECT_FALSE(doc.receive_sync_message(state, encode_sync_message(m)).ok());
    EXPECT_TRUE(doc.heads().empty());
  }
  // The changes of the mark document load, as in npm (only document chunks are checked).
  auto doc = Document::load(read_testdata("refused_mark_end_first_v2.changes"));
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(doc->to_json(), nlohmann::json::parse(R"({"t":"abc"})"));
}

}  // namespace
}  // namespace gm::automerge
