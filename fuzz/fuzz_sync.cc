// Fuzzes the sync protocol (src/automerge/sync.h). The first input byte picks a mode:
//   even: the rest is a sync message. Decoding must not crash; a decoded message must
//         re-encode to bytes that decode to the same message. It is then received by a
//         small graph, which then generates replies.
//   odd:  the rest is a change chunk body; the target wraps it in a change chunk (so
//         the checksum is right), sends it in a V1 message and lets the graph receive
//         it, reaching the change-header and queue code that random checksums never do.
// The rest is also tried as a persisted sync state and as a bloom filter.
#include <cstdint>
#include <cstdlib>

#include "automerge/leb.h"
#include "automerge/sync.h"

namespace {

using namespace gm;
using namespace gm::automerge;

Bytes make_test_change(const char* actor, uint64_t seq, const std::vector<ChangeHash>& deps) {
  Bytes body;
  put_uleb(body, deps.size());
  for (const ChangeHash& d : deps) append(body, d.bytes);
  put_uleb(body, 2);
  append(body, as_bytes(actor));
  put_uleb(body, seq);
  put_uleb(body, seq);
  put_sleb(body, 0);
  put_uleb(body, 0);
  put_uleb(body, 0);
  put_uleb(body, 0);
  return make_chunk(ChunkType::kChange, body);
}

// A small history: a1 ← a2, a1 ← b1.
const ChangeGraph& base_graph() {
  static const ChangeGraph graph = [] {
    ChangeGraph g;
    (void)g.load(make_test_change("aa", 1, {}));
    ChangeHash a1 = g.hash(0);
    (void)g.load(make_test_change("aa", 2, {a1}));
    (void)g.load(make_test_change("bb", 1, {a1}));
    return g;
  }();
  return graph;
}

void receive_and_reply(const SyncMessage& m) {
  ChangeGraph graph = base_graph();
  SyncState state;
  for (int round = 0; round < 3; ++round) {
    (void)receive_sync_message(graph, state, m);
    auto reply = generate_sync_message(graph, state);
    if (reply) {
      const Bytes encoded = encode_sync_message(*reply);
      auto again = decode_sync_message(encoded);
      if (!again.ok() || !(*again == *reply)) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ByteView rest(data + 1, size - 1);
  (void)decode_sync_state(rest);
  (void)BloomFilter::decode(rest);

  if (data[0] % 2 == 0) {
    auto m = decode_sync_message(rest);
    if (!m.ok()) return 0;
    Bytes encoded = encode_sync_message(*m);
    auto again = decode_sync_message(encoded);
    if (!again.ok() || !(*again == *m)) std::abort();
    if (encode_sync_message(*again) != encoded) std::abort();
    for (const SyncHave& h : m->have) {
      for (const ChangeHash& x : m->heads) (void)h.bloom.contains(x);
    }
    receive_and_reply(*m);
  } else {
    SyncMessage m;
    m.heads = base_graph().heads();
    m.add_owned(make_chunk(ChunkType::kChange, rest));
    m.flags = make_flags(kFlagSupportsSyncReset);
    receive_and_reply(m);
  }
  return 0;
}
