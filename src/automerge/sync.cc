#include "automerge/sync.h"

#include <algorithm>
#include <cstring>

#include "automerge/doc_chunk.h"
#include "automerge/leb.h"

namespace gm::automerge {

// ---------------------------------------------------------------------------------
// Bloom filter (§2.2)

namespace {

// Above anything Automerge produces (7 probes, one have entry): they bound the
// work a message can ask for, which is (changes since its lastSync) × have entries ×
// probes. Unbounded, 256 KB of one-entry filters with 1024 probes each would keep a
// peer busy for minutes.
constexpr uint64_t kMaxProbes = 32;
constexpr size_t kMaxHaveEntries = 4;

uint64_t bloom_bytes(uint64_t entries, uint64_t bits_per_entry) { return (entries * bits_per_entry + 7) / 8; }

uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

BloomFilter::BloomFilter(size_t entries)
    : entries_(static_cast<uint32_t>(entries)), bits_(bloom_bytes(entries, kBitsPerEntry), 0) {}

template <class F>
void BloomFilter::for_each_probe(const ChangeHash& hash, F&& f) const {
  uint64_t modulo = 8 * static_cast<uint64_t>(bits_.size());
  uint64_t x = le32(&hash.bytes[0]) % modulo;
  uint64_t y = le32(&hash.bytes[4]) % modulo;
  uint64_t z = le32(&hash.bytes[8]) % modulo;
  if (!f(x)) return;
  for (uint32_t i = 1; i < probes_; ++i) {
    x = (x + y) % modulo;
    y = (y + z) % modulo;
    if (!f(x)) return;
  }
}

void BloomFilter::add(const ChangeHash& hash) {
  if (bits_.empty()) return;
  for_each_probe(hash, [&](uint64_t bit) {
    bits_[bit >> 3] |= static_cast<uint8_t>(1u << (bit & 7));
    return true;
  });
}

bool BloomFilter::contains(const ChangeHash& hash) const {
  if (entries_ == 0 || bits_.empty()) return false;
  bool all_set = true;
  for_each_probe(hash, [&](uint64_t bit) {
    all_set = (bits_[bit >> 3] >> (bit & 7)) & 1;
    return all_set;
  });
  return all_set;
}

void BloomFilter::encode_to(Bytes& out) const {
  if (entries_ == 0) return;
  put_uleb(out, entries_);
  put_uleb(out, bits_per_entry_);
  put_uleb(out, probes_);
  append(out, bits_);
}

Bytes BloomFilter::encode() const {
  Bytes out;
  encode_to(out);
  return out;
}

Result<BloomFilter> BloomFilter::decode(ByteView data) {
  BloomFilter f;
  if (data.empty()) return f;
  Reader r(data);
  GM_ASSIGN_OR_RETURN(uint64_t entries, r.uleb("bloom filter entry count"));
  GM_ASSIGN_OR_RETURN(uint64_t bits_per_entry, r.uleb("bloom filter bits per entry"));
  GM_ASSIGN_OR_RETURN(uint64_t probes, r.uleb("bloom filter probe count"));
  if (entries > UINT32_MAX || bits_per_entry > UINT32_MAX) return r.fail("bloom filter parameters out of range");
  if (probes > kMaxProbes) {
    return r.fail("bloom filter has " + std::to_string(probes) + " probes (at most " + std::to_string(kMaxProbes) +
                  " allowed)");
  }
  uint64_t nbytes = bloom_bytes(entries, bits_per_entry);
  if (nbytes != r.remaining()) {
    return r.fail("bloom filter of " + std::to_string(entries) + " entries × " + std::to_string(bits_per_entry) +
                  " bits needs " + std::to_string(nbytes) + " bytes, got " + std::to_string(r.remaining()));
  }
  // A filter without entries contains nothing whatever its parameters; it is encoded
  // as no bytes at all, so keep the defaults for it.
  if (entries == 0) return f;
  f.entries_ = static_cast<uint32_t>(entries);
  f.bits_per_entry_ = static_cast<uint32_t>(bits_per_entry);
  f.probes_ = static_cast<uint32_t>(probes);
  ByteView bits = r.rest();
  f.bits_.assign(bits.begin(), bits.end());
  return f;
}

// ---------------------------------------------------------------------------------
// Messages (§2.1)

namespace {

void put_hashes(Bytes& out, const std::vector<ChangeHash>& hashes) {
  put_uleb(out, hashes.size());
  for (const ChangeHash& h : hashes) append(out, h.bytes);
}

// At most kMaxSyncHashes (sync.h): refused before anything is read into memory.
Result<std::vector<ChangeHash>> read_hashes(Reader& r, const char* what) {
  size_t at = r.pos();
  GM_ASSIGN_OR_RETURN(size_t n, r.count(what, 32));
  if (n > kMaxSyncHashes) {
    return limit_error(std::to_string(n) + " " + what + " hashes at byte " + std::to_string(at) + " (at most " +
                       std::to_string(kMaxSyncHashes) + " allowed)");
  }
  std::vector<ChangeHash> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView h, r.bytes(32, what));
    out.push_back(ChangeHash::from_bytes(h));
  }
  return out;
}

}  // namespace

bool SyncMessage::operator==(const SyncMessage& o) const {
  return version == o.version && heads == o.heads && need == o.need && have == o.have && flags == o.flags &&
         std::equal(changes.begin(), changes.end(), o.changes.begin(), o.changes.end(),
                    [](ByteView a, ByteView b) { return std::ranges::equal(a, b); });
}

uint8_t SyncMessage::flag_bits() const {
  uint8_t bits = 0;
  if (!flags) return 0;
  for (uint8_t b : *flags) {
    if (b & 0x80) bits |= b & 0x7f;  // legacy bytes (< 0x80) carry no bits
  }
  return bits;
}

Bytes make_flags(uint8_t bits) { return Bytes{0x02, static_cast<uint8_t>(0x80 | bits)}; }

Result<SyncMessage> decode_sync_message(ByteView data) {
  Reader r(data);
  SyncMessage m;
  GM_ASSIGN_OR_RETURN(uint8_t type, r.byte());
  if (type != kSyncMessageV1 && type != kSyncMessageV2) {
    return error("not a sync message: first byte is 0x" + to_hex(ByteView(&type, 1)) + ", expected 0x42 or 0x43");
  }
  m.version = static_cast<SyncVersion>(type);
  GM_ASSIGN_OR_RETURN(m.heads, read_hashes(r, "heads"));
  GM_ASSIGN_OR_RETURN(m.need, read_hashes(r, "need"));
  GM_ASSIGN_OR_RETURN(size_t nhave, r.count("have count", 2));
  if (nhave > kMaxHaveEntries) {
    return r.fail(std::to_string(nhave) + " have entries (at most " + std::to_string(kMaxHaveEntries) +
                  " allowed; Automerge sends one)");
  }
  m.have.reserve(nhave);
  for (size_t i = 0; i < nhave; ++i) {
    SyncHave have;
    GM_ASSIGN_OR_RETURN(have.last_sync, read_hashes(r, "have lastSync"));
    size_t bloom_at = r.pos();
    GM_ASSIGN_OR_RETURN(ByteView bloom, r.length_prefixed("have bloom filter"));
    auto decoded = BloomFilter::decode(bloom);
    if (!decoded) return context("bloom filter at byte " + std::to_string(bloom_at), decoded.error());
    have.bloom = std::move(*decoded);
    m.have.push_back(std::move(have));
  }
  GM_ASSIGN_OR_RETURN(size_t nchanges, r.count("change count", 1));
  m.changes.reserve(nchanges);
  for (size_t i = 0; i < nchanges; ++i) {
    GM_ASSIGN_OR_RETURN(ByteView change, r.length_prefixed("change"));
    m.changes.push_back(change);
  }
  // Bytes after the flags section are ignored, as Automerge does, so that a later
  // extension does not break us.
  if (!r.done()) {
    GM_ASSIGN_OR_RETURN(ByteView flags, r.length_prefixed("flags"));
    m.flags.emplace(flags.begin(), flags.end());
  }
  return m;
}

Bytes encode_sync_message(const SyncMessage& m) {
  Bytes out;
  size_t size = 8 + 33 * (m.heads.size() + m.need.size());
  for (ByteView c : m.changes) size += c.size() + 5;
  out.reserve(size);
  out.push_back(static_cast<uint8_t>(m.version));
  put_hashes(out, m.heads);
  put_hashes(out, m.need);
  put_uleb(out, m.have.size());
  Bytes bloom;
  for (const SyncHave& h : m.have) {
    put_hashes(out, h.last_sync);
    bloom.clear();
    h.bloom.encode_to(bloom);
    put_uleb(out, bloom.size());
    append(out, bloom);
  }
  put_uleb(out, m.changes.size());
  for (ByteView c : m.changes) {
    put_uleb(out, c.size());
    append(out, c);
  }
  if (m.flags) {
    put_uleb(out, m.flags->size());
    append(out, *m.flags);
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Sync state (§2.3)

Bytes encode_sync_state(const SyncState& state) {
  Bytes out{kSyncStateType};
  put_hashes(out, state.shared_heads);
  return out;
}

Result<SyncState> decode_sync_state(ByteView data) {
  Reader r(data);
  GM_ASSIGN_OR_RETURN(uint8_t type, r.byte());
  if (type != kSyncStateType) {
    return error("not a sync state: first byte is 0x" + to_hex(ByteView(&type, 1)) + ", expected 0x43");
  }
  SyncState s;
  GM_ASSIGN_OR_RETURN(s.shared_heads, read_hashes(r, "shared heads"));
  s.their_have.emplace();  // as Automerge: known-empty, so the first reply can carry changes
  return s;
}

// ---------------------------------------------------------------------------------
// generateSyncMessage (§2.4)

namespace {

using Index = ChangeGraph::Index;

SyncHave make_have(const ChangeGraph& graph, const std::vector<ChangeHash>& last_sync) {
  std::vector<Index> since = graph.changes_since(last_sync);
  SyncHave have;
  have.last_sync = last_sync;
  have.bloom = BloomFilter(since.size());
  for (Index i : since) have.bloom.add(graph.hash(i));
  return have;
}

// The changes the peer lacks according to its need and have (§2.4 step 5), in the
// order Automerge sends them: explicitly needed changes not otherwise selected, then
// the selected changes in application order.
std::vector<Index> changes_to_send(const ChangeGraph& graph, const std::vector<SyncHave>& have,
                                   const std::vector<ChangeHash>& need) {
  std::vector<Index> needed;
  for (const ChangeHash& h : need) {
    if (auto i = graph.find(h)) needed.push_back(*i);
  }
  if (have.empty()) return needed;

  std::vector<ChangeHash> last_sync;
  for (const SyncHave& h : have) last_sync.insert(last_sync.end(), h.last_sync.begin(), h.last_sync.end());
  std::sort(last_sync.begin(), last_sync.end());
  last_sync.erase(std::unique(last_sync.begin(), last_sync.end()), last_sync.end());
  std::vector<Index> since = graph.changes_since(last_sync);

  // A change goes if no bloom filter has it, or if it depends on one that goes. `since`
  // is in application order, so one forward pass closes over dependencies.
  std::vector<uint8_t> sending(graph.size(), 0);
  for (Index i : since) {
    bool go = std::none_of(have.begin(), have.end(), [&](const SyncHave& h) { return h.bloom.contains(graph.hash(i)); });
    if (!go) {
      for (Index d : graph.deps(i)) {
        if (sending[d]) {
          go = true;
          break;
        }
      }
    }
    sending[i] = go;
  }
  std::vector<Index> out;
  for (Index i : needed) {
    if (!sending[i]) out.push_back(i);
  }
  for (Index i : since) {
    if (sending[i]) out.push_back(i);
  }
  return out;
}

// One entry holding the chunks back to back: a view of the graph's storage when they
// already lie so there (all changes, or a run applied together), else a copy.
void add_joined_chunks(const ChangeGraph& graph, std::span<const Index> sending, SyncMessage& m) {
  if (sending.empty()) return;
  if (ByteView run = graph.contiguous_chunks(sending); !run.empty()) {
    m.changes.push_back(run);
    return;
  }
  Bytes joined;
  for (Index i : sending) append(joined, graph.chunk(i));
  m.add_owned(std::move(joined));
}

SyncMessage reset_message(const std::vector<ChangeHash>& our_heads, const SyncOptions& options) {
  SyncMessage m;
  m.version = SyncVersion::kV1;
  m.heads = our_heads;
  m.have.emplace_back();
  if (options.send_flags) m.flags = make_flags(kFlagSupportsSyncReset);
  return m;
}

// The end of generateSyncMessage (§2.4) once the content is chosen: whether to say
// anything at all, and what sending it records in the state.
std::optional<SyncMessage> finish_message(SyncMessage m, SyncState& state, const std::vector<ChangeHash>& our_heads,
                                          std::vector<ChangeHash> our_need, std::vector<SyncHave> our_have,
                                          std::span<const ChangeHash> delivered, bool sends_document,
                                          const SyncOptions& options) {
  // Say nothing if nothing changed since our last message: neither side has anything
  // new, or we are still waiting for the answer to our last message.
  bool heads_unchanged = state.last_sent_heads == our_heads;
  bool heads_equal = state.their_heads && *state.their_heads == our_heads;
  if (heads_unchanged && state.have_responded) {
    if ((heads_equal || state.read_only) && delivered.empty() && !sends_document) return std::nullopt;
    if (state.in_flight) return std::nullopt;
  }

  state.have_responded = true;
  state.last_sent_heads = our_heads;
  if (sends_document) state.sent_document_heads = our_heads;
  state.sent_hashes.reserve(state.sent_hashes.size() + delivered.size());
  state.sent_hashes.insert(delivered.begin(), delivered.end());

  uint8_t bits = kFlagSupportsSyncReset | (state.read_only ? kFlagReadOnly : 0);
  m.heads = our_heads;
  if (state.needs_reset) {
    // Ask the peer to resend what we ignored while read-only. Peers that do not know
    // the SYNC_RESET flag are told we have nothing, which has the same effect.
    state.needs_reset = false;
    if (options.send_flags && state.their_capabilities && state.their_capabilities->sync_reset) {
      bits |= kFlagSyncReset;
    } else {
      m.heads.clear();
    }
  }
  m.need = std::move(our_need);
  m.have = std::move(our_have);
  if (options.send_flags) m.flags = make_flags(bits);
  state.in_flight = true;
  return m;
}

}  // namespace

std::optional<SyncMessage> generate_sync_message(const ChangeGraph& graph, SyncState& state,
                                                 const SyncOptions& options) {
  const std::vector<ChangeHash>& our_heads = graph.heads();

  std::vector<ChangeHash> our_need;
  if (!state.read_only && state.their_heads) our_need = graph.missing_deps_from(*state.their_heads);

  // Only summarise what we have once the peer's heads cover everything we asked for;
  // otherwise the peer would send what we have before what we need. (Both sorted, so
  // one merge pass: their heads may be as many as kMaxSyncHashes, and a search per
  // need made this quadratic.)
  std::vector<SyncHave> our_have;
  bool need_covered = our_need.empty();
  if (!need_covered && state.their_heads) {
    std::vector<ChangeHash> their_heads = *state.their_heads;
    std::sort(their_heads.begin(), their_heads.end());
    need_covered = std::includes(their_heads.begin(), their_heads.end(), our_need.begin(), our_need.end());
  }
  if (need_covered) our_have.push_back(make_have(graph, state.shared_heads));

  // The peer believes we share changes we do not have (we lost data): ask it to start
  // over from nothing.
  if (state.their_have && !state.their_have->empty() && !graph.has_all(state.their_have->front().last_sync)) {
    return reset_message(our_heads, options);
  }

  SyncMessage m;
  std::vector<Index> sending;
  bool whole_document = false;
  if (!state.peer_read_only && state.their_have && state.their_need) {
    if (state.peer_supports_v2() && state.their_heads && state.their_heads->empty()) {
      whole_document = true;
    } else {
      sending = changes_to_send(graph, *state.their_have, *state.their_need);
      std::erase_if(sending, [&](Index i) { return state.sent_hashes.count(graph.hash(i)) != 0; });
      if (!state.sent_document_heads.empty()) {
        // What the whole document we sent held counts as sent. (`sending` keeps its
        // order: the changes the peer asked for by hash come first.)
        std::vector<bool> unsent(graph.size(), false);
        for (Index i : graph.changes_since(state.sent_document_heads)) unsent[i] = true;
        std::erase_if(sending, [&](Index i) { return !unsent[i]; });
      }
      if (state.peer_supports_v2() && sending.size() > graph.size() / 3) whole_document = true;
    }
  }
  // Hashes this message delivers, for sent_hashes.
  std::vector<ChangeHash> delivered;
  bool sends_document = false;  // everything up to our heads, as one saved document
  if (whole_document) {
    m.version = SyncVersion::kV2;
    if (options.save_document) {
      m.add_owned(options.save_document());
      sends_document = !graph.empty();
    } else {
      // No op set to save from: the same changes, as change chunks back to back.
      if (sending.empty() && state.their_heads && state.their_heads->empty()) {
        sending.resize(graph.size());
        for (Index i = 0; i < graph.size(); ++i) sending[i] = i;
      }
      for (Index i : sending) delivered.push_back(graph.hash(i));
      add_joined_chunks(graph, sending, m);
    }
  } else if (state.peer_supports_v2()) {
    m.version = SyncVersion::kV2;
    for (Index i : sending) delivered.push_back(graph.hash(i));
    add_joined_chunks(graph, sending, m);
  } else {
    m.version = SyncVersion::kV1;
    for (Index i : sending) {
      m.changes.push_back(graph.chunk(i));
      delivered.push_back(graph.hash(i));
    }
  }

  return finish_message(std::move(m), state, our_heads, std::move(our_need), std::move(our_have), delivered,
                        sends_document, options);
}

// ---------------------------------------------------------------------------------
// receiveSyncMessage (§2.5)

namespace {

// What the peer's flags say about it (§2.1).
void take_flags(SyncState& state, const SyncMessage& message) {
  if (!message.flags) return;
  uint8_t bits = message.flag_bits();
  state.their_capabilities = SyncState::Capabilities{true, (bits & kFlagSupportsSyncReset) != 0};
  if (bits & kFlagSyncReset) {
    state.sent_hashes.clear();
    state.sent_document_heads.clear();
  }
  state.peer_read_only = (bits & kFlagReadOnly) != 0;
}

}  // namespace

Status receive_sync_message(ChangeGraph& graph, SyncState& state, const SyncMessage& message,
                            std::vector<ChangeGraph::Index>* applied) {
  state.in_flight = false;
  std::vector<ChangeHash> before = graph.heads();

  take_flags(state, message);

  if (!message.changes.empty() && !state.read_only) {
    Status loaded = graph.load(message.changes, applied);
    if (!loaded) return context("sync message changes", loaded.error());
    // Shared heads advance to our new heads, plus old shared heads still current.
    const std::vector<ChangeHash>& after = graph.heads();
    std::vector<ChangeHash> shared;
    for (const ChangeHash& h : after) {
      if (!std::binary_search(before.begin(), before.end(), h)) shared.push_back(h);
    }
    for (const ChangeHash& h : state.shared_heads) {
      if (std::binary_search(after.begin(), after.end(), h)) shared.push_back(h);
    }
    std::sort(shared.begin(), shared.end());
    shared.erase(std::unique(shared.begin(), shared.end()), shared.end());
    state.shared_heads = std::move(shared);
  }

  // Whatever the peer's heads include, it has: no need to hold those back any more.
  graph.remove_ancestors(state.sent_hashes, message.heads);
  if (!state.sent_document_heads.empty()) {
    ChangeHashSet unacknowledged(state.sent_document_heads.begin(), state.sent_document_heads.end());
    graph.remove_ancestors(unacknowledged, message.heads);
    if (unacknowledged.empty()) state.sent_document_heads.clear();
  }

  if (message.changes.empty() && message.heads == before) state.last_sent_heads = message.heads;

  std::vector<ChangeHash> known;
  for (const ChangeHash& h : message.heads) {
    if (graph.has(h)) known.push_back(h);
  }
  if (known.size() == message.heads.size()) {
    state.shared_heads = message.heads;
    if (message.heads.empty()) {
      // The peer has lost everything: start a full resync.
      state.last_sent_heads.clear();
      state.sent_hashes.clear();
      state.sent_document_heads.clear();
    }
  } else {
    state.shared_heads.insert(state.shared_heads.end(), known.begin(), known.end());
    std::sort(state.shared_heads.begin(), state.shared_heads.end());
    state.shared_heads.erase(std::unique(state.shared_heads.begin(), state.shared_heads.end()),
                             state.shared_heads.end());
  }

  state.their_have = message.have;
  state.their_heads = message.heads;
  state.their_need = message.need;
  return Status::Ok();
}

// ---------------------------------------------------------------------------------
// A document known by its heads and saved form only

namespace {

bool all_among(std::span<const ChangeHash> hashes, const std::vector<ChangeHash>& heads) {
  return std::all_of(hashes.begin(), hashes.end(),
                     [&](const ChangeHash& h) { return std::find(heads.begin(), heads.end(), h) != heads.end(); });
}

bool same_set(std::vector<ChangeHash> a, std::vector<ChangeHash> b) {
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return a == b;
}

}  // namespace

// Each step below is the graph version's, with what the graph would answer worked out
// from the heads: a hash among the heads is known and is its own only ancestor among
// them (heads never descend from one another), and nothing comes after all the heads.
bool receive_sync_message(const SavedDocument& doc, SyncState& state, const SyncMessage& message) {
  if (!message.changes.empty() || !state.sent_hashes.empty() || !all_among(message.heads, doc.heads) ||
      !all_among(state.sent_document_heads, doc.heads)) {
    return false;
  }
  state.in_flight = false;
  take_flags(state, message);
  if (all_among(state.sent_document_heads, message.heads)) state.sent_document_heads.clear();
  if (message.heads == doc.heads) state.last_sent_heads = message.heads;
  state.shared_heads = message.heads;  // all known
  if (message.heads.empty()) {
    state.last_sent_heads.clear();
    state.sent_hashes.clear();
    state.sent_document_heads.clear();
  }
  state.their_have = message.have;
  state.their_heads = message.heads;
  state.their_need = message.need;
  return true;
}

bool generate_sync_message(const SavedDocument& doc, SyncState& state, const SyncOptions& options,
                           std::optional<SyncMessage>* out) {
  if (!state.sent_hashes.empty()) return false;
  // Our need is empty when their heads are all ours.
  if (state.their_heads && !all_among(*state.their_heads, doc.heads)) return false;
  if (state.their_have && !state.their_have->empty() && !all_among(state.their_have->front().last_sync, doc.heads)) {
    return false;  // the reset path
  }
  bool whole_document = false;
  if (!state.peer_read_only && state.their_have && state.their_need) {
    if (state.peer_supports_v2() && state.their_heads && state.their_heads->empty()) {
      whole_document = true;
    } else if (!state.their_need->empty() || !state.their_heads || !same_set(*state.their_heads, doc.heads)) {
      // A peer whose heads are ours has every change (its summary lists all it has since
      // its last sync, and a bloom filter never misses one): only then is there surely
      // nothing to send.
      return false;
    }
  }
  // Our summary: the changes since the shared heads, none when those are our heads. To a
  // peer that gets the whole document it says "everything up to our heads" instead of
  // listing every change since none (which needs the changes' hashes): the same to the
  // peer once it has the document, which this message gives it, so it sends nothing back.
  std::vector<SyncHave> our_have(1);
  if (whole_document) {
    our_have[0].last_sync = doc.heads;
  } else if (state.shared_heads == doc.heads) {
    our_have[0].last_sync = state.shared_heads;
  } else {
    return false;
  }
  SyncMessage m;
  m.version = whole_document || state.peer_supports_v2() ? SyncVersion::kV2 : SyncVersion::kV1;
  if (whole_document) m.changes.push_back(doc.saved);
  *out = finish_message(std::move(m), state, doc.heads, {}, std::move(our_have), {}, whole_document && !doc.heads.empty(),
                        options);
  return true;
}

namespace {

// The document chunk a sync message carries when that is all it carries: a peer
// sending us its whole document (V2, §2.6).
std::optional<Chunk> whole_document_chunk(const SyncMessage& m) {
  if (m.version != SyncVersion::kV2 || m.changes.size() != 1) return std::nullopt;
  size_t consumed = 0;
  auto chunk = parse_chunk(m.changes[0], &consumed);
  if (!chunk || consumed != m.changes[0].size() || chunk->type != ChunkType::kDocument) return std::nullopt;
  return std::move(*chunk);
}

}  // namespace

Status receive_sync_message(ChangeGraph& graph, SyncState& state, const SyncMessage& message,
                            std::vector<ChangeGraph::Index>* applied, std::optional<ReceivedDocument>* document) {
  document->reset();
  std::optional<Chunk> chunk = state.read_only ? std::nullopt : whole_document_chunk(message);
  if (chunk) {
    // Applied here rather than by the call below (which then finds nothing new in it),
    // because the decoded chunk also tells whether its op order is canonical.
    GM_ASSIGN_OR_RETURN(std::vector<ChangeHash> heads, document_heads(chunk->body));
    if (heads.empty() || !graph.has_all(heads)) {
      auto decoded = graph.decode_document_chunk(chunk->body);
      if (!decoded) return context("sync message changes: document chunk", decoded.error());
      const bool servable = has_canonical_op_order(decoded->doc);
      decoded->doc.release_ops();
      GM_TRY(graph.load_document(decoded->doc, std::move(decoded->expanded), applied));
      *document = ReceivedDocument{std::move(*chunk), servable};
    }
  }
  return receive_sync_message(graph, state, message, applied);
}

Status receive_sync_message(ChangeGraph& graph, SyncState& state, ByteView message,
                            std::vector<ChangeGraph::Index>* applied) {
  GM_ASSIGN_OR_RETURN(SyncMessage m, decode_sync_message(message));
  return receive_sync_message(graph, state, m, applied);
}

}  // namespace gm::automerge
