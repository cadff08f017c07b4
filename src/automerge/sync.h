// The Automerge sync protocol (spec/automerge.md §2): messages, the bloom filter
// summary, per-peer sync state, and generating/receiving messages over a ChangeGraph.
//
// Sync message (§2.1):
//   type      1 byte: 0x42 = V1, 0x43 = V2
//   heads     uLEB n, n × 32-byte hashes (the sender's heads, sorted)
//   need      uLEB n, n × 32-byte hashes (changes the sender asks for)
//   have      uLEB n, each: lastSync (uLEB m, m × 32 bytes), bloom (uLEB len + bytes)
//   changes   uLEB n, each uLEB length + bytes. V1: one change chunk each. V2: 0 or 1
//             entry holding a concatenation of chunks (a whole document chunk, or
//             change chunks back to back)
//   flags     optional, present iff bytes remain: uLEB length + bytes. Automerge ≥ 3.x
//             sends `02 02 8x`: the legacy "supports V2" byte 0x02, then a bitfield
//             byte with bit 7 set (bit 0 SYNC_RESET, 1 READ_ONLY, 2 SUPPORTS_SYNC_RESET).
//             Any flags section at all means the sender understands V2.
//
// Bloom filter (§2.2): empty when it has no entries; else uLEB entries, uLEB bits per
//   entry (10), uLEB probes (7), then ceil(entries × bits per entry / 8) bytes.
//
// Persisted sync state (§2.3): 0x43, uLEB n, n × 32-byte shared heads.
#pragma once

#include <functional>
#include <optional>

#include "automerge/change_graph.h"

namespace gm::automerge {

inline constexpr uint8_t kSyncMessageV1 = 0x42;
inline constexpr uint8_t kSyncMessageV2 = 0x43;
inline constexpr uint8_t kSyncStateType = 0x43;

// The most hashes one list of a sync message (heads, need, a have's lastSync) or of a
// persisted sync state (shared heads) may hold; decoding refuses more with a limit
// error. Automerge itself sets no bound, but real peers send far fewer: heads are the
// document's concurrent tips (one or a handful), lastSync is a set of heads, and need
// lists the dependencies a peer found missing, which is at most the heads it was told
// of plus the deps of the changes it holds queued. 4096 × 32 bytes is 128 KiB a list;
// unbounded, one 2 MB message of 64k heads made every reply to that peer do billions
// of hash comparisons.
inline constexpr size_t kMaxSyncHashes = 4096;

// Bits of the flags bitfield byte.
inline constexpr uint8_t kFlagSyncReset = 1 << 0;
inline constexpr uint8_t kFlagReadOnly = 1 << 1;
inline constexpr uint8_t kFlagSupportsSyncReset = 1 << 2;

class BloomFilter {
 public:
  static constexpr uint32_t kBitsPerEntry = 10;
  static constexpr uint32_t kProbes = 7;

  BloomFilter() = default;
  // A filter sized for `entries` hashes; add() them.
  explicit BloomFilter(size_t entries);
  template <class It>
  static BloomFilter from_hashes(It begin, It end) {
    BloomFilter f(static_cast<size_t>(std::distance(begin, end)));
    for (It it = begin; it != end; ++it) f.add(*it);
    return f;
  }

  void add(const ChangeHash& hash);
  // False for a filter with no entries; a filter that cannot be probed (no bits)
  // contains nothing.
  bool contains(const ChangeHash& hash) const;

  uint32_t entries() const { return entries_; }
  void encode_to(Bytes& out) const;
  Bytes encode() const;
  // Uses the transmitted parameters; the whole input must be consumed.
  static Result<BloomFilter> decode(ByteView data);

  bool operator==(const BloomFilter&) const = default;

 private:
  // Calls f(bit) for each probe position of `hash` (§2.2) until f returns false.
  template <class F>
  void for_each_probe(const ChangeHash& hash, F&& f) const;

  uint32_t entries_ = 0;
  uint32_t bits_per_entry_ = kBitsPerEntry;
  uint32_t probes_ = kProbes;
  Bytes bits_;
};

struct SyncHave {
  std::vector<ChangeHash> last_sync;
  BloomFilter bloom;
  bool operator==(const SyncHave&) const = default;
};

enum class SyncVersion : uint8_t { kV1 = kSyncMessageV1, kV2 = kSyncMessageV2 };

struct SyncMessage {
  SyncVersion version = SyncVersion::kV1;
  std::vector<ChangeHash> heads;
  std::vector<ChangeHash> need;
  std::vector<SyncHave> have;
  // Change data, each entry one or more chunks back to back. Views, not copies: into
  // the bytes a message was decoded from, into the graph a message was generated from
  // (valid until the graph changes), or into `owned`.
  std::vector<ByteView> changes;
  std::vector<Bytes> owned;    // what `changes` entries made for this message point into
  std::optional<Bytes> flags;  // the raw flags section, when present

  // The bitfield bits in `flags` (0 when absent or legacy-only).
  uint8_t flag_bits() const;
  // Points a new `changes` entry at bytes the message keeps.
  void add_owned(Bytes bytes) {
    owned.push_back(std::move(bytes));
    changes.push_back(owned.back());
  }
  // Equal fields and change bytes (where the bytes live does not matter).
  bool operator==(const SyncMessage& o) const;

  SyncMessage() = default;
  // `changes` may point into `owned`: a copy would point into the original.
  SyncMessage(const SyncMessage&) = delete;
  SyncMessage& operator=(const SyncMessage&) = delete;
  SyncMessage(SyncMessage&&) noexcept = default;
  SyncMessage& operator=(SyncMessage&&) noexcept = default;
};

// The flags section Automerge 3.x appends: legacy V2 byte, bitfield byte.
Bytes make_flags(uint8_t bits);

// The message's `changes` point into `data`: keep it alive while the message is used
// (decoding a temporary buffer does not compile).
Result<SyncMessage> decode_sync_message(ByteView data);
Result<SyncMessage> decode_sync_message(Bytes&& data) = delete;
Bytes encode_sync_message(const SyncMessage& message);

// What we know about one peer for one document (§2.3). Only shared_heads survives a
// reconnect (encode_sync_state); start every new connection from decode_sync_state or
// a fresh state, never from the previous connection's state.
struct SyncState {
  std::vector<ChangeHash> shared_heads;
  std::vector<ChangeHash> last_sent_heads;
  std::optional<std::vector<ChangeHash>> their_heads;
  std::optional<std::vector<ChangeHash>> their_need;
  std::optional<std::vector<SyncHave>> their_have;
  ChangeHashSet sent_hashes;
  // Our heads when we last sent the peer our whole document (a saved document chunk):
  // every ancestor of them counts as sent too. Heads, not hashes, so that sending a
  // 50k-change document does not make a 50k-entry set.
  std::vector<ChangeHash> sent_document_heads;
  bool in_flight = false;
  bool have_responded = false;
  // From the peer's flags: absent until a message with flags arrives.
  struct Capabilities {
    bool v2 = false;
    bool sync_reset = false;
  };
  std::optional<Capabilities> their_capabilities;
  bool read_only = false;       // we ignore the peer's changes
  bool peer_read_only = false;  // the peer ignores ours
  bool needs_reset = false;     // ask the peer to clear its sent hashes (next message)

  bool peer_supports_v2() const { return their_capabilities && their_capabilities->v2; }
};

Bytes encode_sync_state(const SyncState& state);
Result<SyncState> decode_sync_state(ByteView data);

struct SyncOptions {
  // Append our flags section (`02 02 84`, as npm 3.x does). A peer that sees flags
  // sends us V2 messages, which may carry whole document chunks; without flags peers
  // send only V1 messages of individual change chunks (§2.6).
  bool send_flags = true;
  // Produces the saved document (Automerge.save()) for V2 whole-document sends. When
  // empty, those sends carry the needed change chunks concatenated instead (also valid
  // V2, and all a graph without an op set can produce).
  std::function<Bytes()> save_document;
};

// §2.4. An empty optional means there is nothing to send now.
std::optional<SyncMessage> generate_sync_message(const ChangeGraph& graph, SyncState& state,
                                                 const SyncOptions& options = {});

// §2.5. Changes in the message are loaded into `graph`; the indexes of the changes it
// newly applied are appended to *applied (when non-null), even if an error follows.
Status receive_sync_message(ChangeGraph& graph, SyncState& state, const SyncMessage& message,
                            std::vector<ChangeGraph::Index>* applied = nullptr);
Status receive_sync_message(ChangeGraph& graph, SyncState& state, ByteView message,
                            std::vector<ChangeGraph::Index>* applied = nullptr);

// A document known only by its heads and its saved form (Automerge.save()): a snapshot
// loaded from disk and not yet expanded into its changes, which for a large document
// takes seconds and many times its size in memory. The two functions below are the
// protocol for it where the answer needs no change graph: a peer that has nothing
// (which gets the saved form, as a V2 whole-document message) and a peer that has all
// of it. Elsewhere they return false and leave the state alone: expand the document
// into a graph, then call the graph versions with the same state.
struct SavedDocument {
  std::vector<ChangeHash> heads;  // sorted, as ChangeGraph::heads()
  ByteView saved;
};

// §2.5: true when the message has no changes and names only our heads (or none).
bool receive_sync_message(const SavedDocument& doc, SyncState& state, const SyncMessage& message);
// §2.4: *out is what the graph version would produce, except that the whole document
// sent to a peer with nothing comes with a summary of "all up to our heads" (lastSync
// our heads, no bloom filter) rather than a filter of every change's hash.
bool generate_sync_message(const SavedDocument& doc, SyncState& state, const SyncOptions& options,
                           std::optional<SyncMessage>* out);

// A message that carried the sender's whole document as one document chunk (V2, §2.6):
// the chunk, and whether it may be stored and served as it came. Its changes are checked
// by their hashes, but a loader takes the chunk's op order as the document's state, so
// that order must be the canonical one (doc_chunk.h).
struct ReceivedDocument {
  Chunk chunk;
  bool servable = false;
};

// The same, for a peer that keeps what it receives: when the message carried a whole
// document and its changes reached the graph, *document gets it.
Status receive_sync_message(ChangeGraph& graph, SyncState& state, const SyncMessage& message,
                            std::vector<ChangeGraph::Index>* applied, std::optional<ReceivedDocument>* document);

}  // namespace gm::automerge
