// Differential test: the C++ engine against npm @automerge/automerge 3.5.0 and 2.2.8 on
// the randomized corpus that tests/interop/gen_corpus.mjs writes (see the top of that
// file for the record layout). GM_CORPUS_DIR names the corpus folder (searched
// recursively for <id>.json records); without it every test is skipped.
//
// One test per property, each looping over every document; a failure names the seed
// and document id so it can be regenerated alone:
//   node tests/interop/gen_corpus.mjs <dir> --seed <seed> --count <n+1> --version <v>
//
// DocumentSaveMatchesNpm also writes <id>.cpp.save (C++ Document::save() of the
// document loaded from its change chunks) next to each record; the ctest
// interop_differential_npm_load then loads those files in npm (lib/check_saves.mjs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "automerge/change.h"
#include "automerge/change_graph.h"
#include "automerge/chunk.h"
#include "automerge/doc_chunk.h"
#include "automerge/document.h"
#include "automerge/leb.h"
#include "automerge/sync.h"
#include "util/hex.h"

namespace gm::automerge {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------- the corpus

struct CorpusDoc {
  fs::path base;  // <dir>/<id>, without extension
  json rec;
  Bytes save;     // npm A.save()
  Bytes changes;  // npm A.getAllChanges(), concatenated
  // What 3.5.0's A.save() gives after loading `save` / `changes` (the files
  // <id>.ref.save and <id>.ref-changes.save, written only when they differ).
  Bytes ref_save;
  Bytes ref_changes_save;

  std::string where() const {
    std::ostringstream s;
    s << "seed " << rec.value("seed", 0) << " document " << rec.value("id", std::string("?")) << " (npm "
      << (rec.value("version", 3) == 2 ? "2.2.8" : "3.5.0") << ", " << rec["stats"].value("changes", 0) << " changes, "
      << rec["stats"].value("ops", 0) << " ops)";
    return s.str();
  }
  int version() const { return rec.value("version", 3); }
};

Bytes read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const char* corpus_dir() { return std::getenv("GM_CORPUS_DIR"); }

const std::vector<CorpusDoc>& corpus() {
  static const std::vector<CorpusDoc> docs = [] {
    std::vector<CorpusDoc> out;
    const char* dir = corpus_dir();
    if (!dir || !fs::is_directory(dir)) return out;
    std::vector<fs::path> records;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().extension() == ".json") records.push_back(e.path());
    }
    std::sort(records.begin(), records.end());
    for (const fs::path& p : records) {
      CorpusDoc d;
      std::ifstream in(p);
      d.rec = json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (d.rec.is_discarded() || !d.rec.contains("id") || !d.rec.contains("changes")) continue;
      d.base = p;
      d.base.replace_extension();
      d.save = read_file(fs::path(d.base).concat(".save"));
      d.changes = read_file(fs::path(d.base).concat(".changes"));
      const fs::path ref = fs::path(d.base).concat(".ref.save");
      const fs::path ref_changes = fs::path(d.base).concat(".ref-changes.save");
      d.ref_save = fs::exists(ref) ? read_file(ref) : d.save;
      d.ref_changes_save = fs::exists(ref_changes) ? read_file(ref_changes) : d.ref_save;
      out.push_back(std::move(d));
    }
    return out;
  }();
  return docs;
}

#define SKIP_WITHOUT_CORPUS()                                                                  \
  do {                                                                                         \
    if (corpus().empty()) GTEST_SKIP() << "GM_CORPUS_DIR is unset or holds no corpus records"; \
  } while (0)

// Reports failures as "<where>: <what>", the first few (GM_DIFF_MAX_REPORTED, default
// 15) in full and then only a count, so one broken layer does not bury the output.
class Failures {
 public:
  explicit Failures(const char* check) : check_(check) {
    const char* env = std::getenv("GM_DIFF_MAX_REPORTED");
    if (env) kMaxReported = std::atoi(env);
  }
  ~Failures() {
    if (count_ > kMaxReported) {
      ADD_FAILURE() << check_ << ": " << count_ << " failures in " << docs_.size() << " documents ("
                    << count_ - kMaxReported << " not shown)";
    }
  }
  void fail(const CorpusDoc& d, const std::string& what) {
    docs_.insert(d.rec.value("id", std::string()));
    if (++count_ <= kMaxReported) ADD_FAILURE() << check_ << ": " << d.where() << ": " << what;
  }
  bool any_for(const CorpusDoc& d) const { return docs_.count(d.rec.value("id", std::string())) != 0; }

 private:
  const char* check_;
  int kMaxReported = 15;
  int count_ = 0;
  std::set<std::string> docs_;
};

std::string hexs(ByteView b, size_t max = 64) {
  std::string h = to_hex(b.size() > max ? b.first(max) : b);
  if (b.size() > max) h += "…";
  return h;
}

// Where two byte strings first differ. For two chunks the header (checksum, length) is
// skipped, since it differs whenever anything does.
std::string first_difference(ByteView got, ByteView want) {
  size_t i = 0;
  size_t c1 = 0, c2 = 0;
  auto g = parse_chunk(got, &c1);
  auto w = parse_chunk(want, &c2);
  if (g.ok() && w.ok() && g->type == w->type && g->type != ChunkType::kCompressedChange) {
    got = g->body;
    want = w->body;
  }
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream s;
  s << "sizes " << got.size() << " vs npm " << want.size() << ", first difference at body byte " << i << ": got "
    << hexs(got.subspan(std::min(i, got.size())), 16) << " want " << hexs(want.subspan(std::min(i, want.size())), 16);
  return s.str();
}

std::string op_string(const Op& op) {
  std::ostringstream s;
  s << "{id " << op.id.counter << "@" << op.id.actor << " obj " << op.obj.counter << "@" << op.obj.actor << " key "
    << (op.key.is_map() ? "\"" + *op.key.map_key + "\"" : std::to_string(op.key.elem.counter) + "@" + std::to_string(op.key.elem.actor))
    << (op.insert ? " insert" : "") << " action " << op.action << " value type " << int(op.value.type) << " succ [";
  for (const OpId& p : op.pred) s << p.counter << "@" << p.actor << " ";
  s << "]" << (op.expand ? " expand" : "") << (op.mark_name ? " mark " + *op.mark_name : "") << "}";
  return s.str();
}

// For two document chunks that differ: the first decoded field that differs.
std::string document_difference(ByteView got, ByteView want) {
  auto parse = [](ByteView b) -> Result<DecodedDocument> {
    size_t consumed = 0;
    GM_ASSIGN_OR_RETURN(Chunk c, parse_chunk(b, &consumed));
    return decode_document(c.body);
  };
  auto g = parse(got);
  auto w = parse(want);
  if (!g.ok()) return "ours does not decode: " + g.error().message;
  if (!w.ok()) return "npm's does not decode: " + w.error().message;
  if (g->actors != w->actors) return "actor tables differ";
  if (g->heads != w->heads) return "heads differ";
  if (g->changes.size() != w->changes.size()) {
    return std::to_string(g->changes.size()) + " change rows vs npm " + std::to_string(w->changes.size());
  }
  for (size_t i = 0; i < g->changes.size(); ++i) {
    const auto& a = g->changes[i];
    const auto& b = w->changes[i];
    const std::string* am = g->message(a);
    const std::string* bm = w->message(b);
    if (a.actor != b.actor || a.seq != b.seq || a.max_op != b.max_op || a.time != b.time ||
        (am && bm ? *am != *bm : am != bm) || !std::ranges::equal(g->deps(a), w->deps(b)) ||
        !std::ranges::equal(g->extra(a), w->extra(b))) {
      return "change row " + std::to_string(i) + " differs (actor " + std::to_string(a.actor) + "/" +
             std::to_string(b.actor) + " seq " + std::to_string(a.seq) + "/" + std::to_string(b.seq) + " maxOp " +
             std::to_string(a.max_op) + "/" + std::to_string(b.max_op) + " time " + std::to_string(a.time) + "/" +
             std::to_string(b.time) + " deps " + std::to_string(a.deps_count) + "/" + std::to_string(b.deps_count) +
             ")";
    }
  }
  for (size_t i = 0; i < std::min(g->ops.size(), w->ops.size()); ++i) {
    const Op a = g->op(i);
    const Op b = w->op(i);
    if (!(a.id == b.id && a.obj == b.obj && a.key == b.key && a.insert == b.insert && a.action == b.action &&
          a.value == b.value && a.pred == b.pred && a.expand == b.expand && a.mark_name == b.mark_name)) {
      return "op " + std::to_string(i) + " differs: ours " + op_string(a) + " npm " + op_string(b);
    }
  }
  if (g->ops.size() != w->ops.size()) {
    return std::to_string(g->ops.size()) + " ops vs npm " + std::to_string(w->ops.size());
  }
  if (g->heads_index != w->heads_index) return "heads index differs";
  return "decoded contents equal; the column encoding differs";
}

std::vector<ChangeHash> hashes_of(const json& arr) {
  std::vector<ChangeHash> out;
  for (const auto& h : arr) {
    auto r = ChangeHash::from_hex(h.get<std::string>());
    if (r.ok()) out.push_back(*r);
  }
  return out;
}

std::string join_hex(const std::vector<ChangeHash>& hs) {
  std::string s = "[";
  for (size_t i = 0; i < hs.size(); ++i) s += (i ? "," : "") + hs[i].hex().substr(0, 12);
  return s + "]";
}

// The change chunks of the .changes file, in npm getAllChanges order.
Result<std::vector<Chunk>> npm_change_chunks(const CorpusDoc& d) {
  GM_ASSIGN_OR_RETURN(std::vector<Chunk> chunks, parse_chunks(d.changes));
  if (chunks.size() != d.rec["changes"].size()) {
    return error("the .changes file holds " + std::to_string(chunks.size()) + " chunks, the record lists " +
                 std::to_string(d.rec["changes"].size()) + " changes");
  }
  return chunks;
}

// ---------------------------------------------------------------- reference helpers

// A document chunk with every DEFLATEd column inflated and its deflate bit cleared:
// how npm's save() would look uncompressed. Written from §1.9 alone (not with the
// engine's document codec), so that it is an independent reference.
Result<Bytes> uncompressed_document(ByteView data, std::vector<uint32_t>* deflated_specs = nullptr) {
  size_t consumed = 0;
  GM_ASSIGN_OR_RETURN(Chunk chunk, parse_chunk(data, &consumed));
  if (chunk.type != ChunkType::kDocument) return error("not a document chunk");
  if (consumed != data.size()) return error("trailing bytes after the document chunk");
  Reader r(chunk.body);
  GM_ASSIGN_OR_RETURN(size_t n_actors, r.count("actors"));
  for (size_t i = 0; i < n_actors; ++i) GM_TRY(r.length_prefixed("actor"));
  GM_ASSIGN_OR_RETURN(size_t n_heads, r.count("heads", 32));
  GM_TRY(r.bytes(32 * n_heads, "heads"));
  const size_t prefix_len = r.pos();
  struct Col {
    uint64_t spec;
    uint64_t len;
  };
  std::vector<Col> meta[2];
  for (auto& m : meta) {
    GM_ASSIGN_OR_RETURN(size_t n, r.count("columns", 2));
    for (size_t i = 0; i < n; ++i) {
      GM_ASSIGN_OR_RETURN(uint64_t spec, r.uleb("column spec"));
      GM_ASSIGN_OR_RETURN(uint64_t len, r.uleb("column length"));
      m.push_back({spec, len});
    }
  }
  std::vector<Bytes> data_out[2];
  for (int k = 0; k < 2; ++k) {
    for (Col& c : meta[k]) {
      GM_ASSIGN_OR_RETURN(ByteView raw, r.bytes(c.len, "column data"));
      if (c.spec & 8) {
        if (deflated_specs) deflated_specs->push_back(static_cast<uint32_t>(c.spec));
        GM_ASSIGN_OR_RETURN(Bytes inflated, inflate_raw(raw));
        c.spec &= ~uint64_t{8};
        data_out[k].push_back(std::move(inflated));
      } else {
        data_out[k].emplace_back(raw.begin(), raw.end());
      }
    }
  }
  Bytes body(chunk.body.begin(), chunk.body.begin() + prefix_len);
  for (int k = 0; k < 2; ++k) {
    put_uleb(body, meta[k].size());
    for (size_t i = 0; i < meta[k].size(); ++i) {
      put_uleb(body, meta[k][i].spec);
      put_uleb(body, data_out[k][i].size());
    }
  }
  for (int k = 0; k < 2; ++k) {
    for (const Bytes& b : data_out[k]) append(body, b);
  }
  append(body, r.rest());  // heads index
  return make_chunk(ChunkType::kDocument, body);
}

// npm 3.5.0's save() of the document loaded from its .save (from_changes = false) or
// its .changes file, uncompressed: the reference for the document encoder checks.
Result<Bytes> npm_reference(const CorpusDoc& d, bool from_changes) {
  return uncompressed_document(from_changes ? d.ref_changes_save : d.ref_save);
}

// ---------------------------------------------------------------- 1. change chunks

TEST(Differential, ChangeChunksParseAndHash) {
  SKIP_WITHOUT_CORPUS();
  Failures f("change chunk parse/hash/header");
  size_t checked = 0;
  for (const CorpusDoc& d : corpus()) {
    auto chunks = npm_change_chunks(d);
    if (!chunks.ok()) {
      f.fail(d, chunks.error().message);
      continue;
    }
    for (size_t i = 0; i < chunks->size(); ++i) {
      const Chunk& c = (*chunks)[i];
      const json& m = d.rec["changes"][i];
      std::string at = "change " + std::to_string(i) + ": ";
      if (c.type != ChunkType::kChange) f.fail(d, at + "not a type-1 chunk");
      if (c.hash.hex() != m["hash"].get<std::string>()) {
        f.fail(d, at + "hash " + c.hash.hex() + " != npm " + m["hash"].get<std::string>());
        continue;
      }
      auto h = decode_change_header(c.body);
      if (!h.ok()) {
        f.fail(d, at + "decode_change_header: " + h.error().message);
        continue;
      }
      std::string msg = m["message"].is_null() ? "" : m["message"].get<std::string>();
      if (to_hex(h->actor) != m["actor"].get<std::string>() || h->seq != m["seq"].get<uint64_t>() ||
          h->start_op != m["startOp"].get<uint64_t>() || h->time != m["time"].get<int64_t>() || h->message != msg ||
          h->deps != hashes_of(m["deps"])) {
        f.fail(d, at + "header fields differ from npm decodeChange: " + m.dump().substr(0, 300));
      }
      ++checked;
    }
  }
  std::cout << "checked " << checked << " change chunks in " << corpus().size() << " documents\n";
}

// ---------------------------------------------------------------- 2. change codec

TEST(Differential, ChangeDecodeEncodeRoundTrip) {
  SKIP_WITHOUT_CORPUS();
  Failures f("decode_change/encode_change");
  for (const CorpusDoc& d : corpus()) {
    auto chunks = npm_change_chunks(d);
    if (!chunks.ok()) {
      f.fail(d, chunks.error().message);
      continue;
    }
    for (size_t i = 0; i < chunks->size(); ++i) {
      const Chunk& c = (*chunks)[i];
      std::string at = "change " + std::to_string(i) + " (" + c.hash.hex().substr(0, 12) + "): ";
      auto change = decode_change(c.body);
      if (!change.ok()) {
        f.fail(d, at + "decode_change: " + change.error().message);
        continue;
      }
      if (change->ops.size() != d.rec["changes"][i]["ops"].get<size_t>()) {
        f.fail(d, at + std::to_string(change->ops.size()) + " ops, npm decodeChange has " +
                      d.rec["changes"][i]["ops"].dump());
      }
      ChangeHash hash;
      Bytes again = encode_change(*change, &hash);
      if (!std::equal(again.begin(), again.end(), c.bytes.begin(), c.bytes.end())) {
        f.fail(d, at + "encode_change differs: " + first_difference(again, c.bytes));
      } else if (hash != c.hash) {
        f.fail(d, at + "encode_change hash differs");
      }
    }
  }
}

// ---------------------------------------------------------------- 3. document chunks

TEST(Differential, DocumentExpandReproducesChanges) {
  SKIP_WITHOUT_CORPUS();
  Failures f("decode_document/expand_document");
  size_t same_order = 0;
  for (const CorpusDoc& d : corpus()) {
    auto chunks = npm_change_chunks(d);
    auto saved = parse_chunks(d.save);
    if (!chunks.ok() || !saved.ok() || saved->size() != 1 || (*saved)[0].type != ChunkType::kDocument) {
      f.fail(d, "the corpus files do not parse: .changes " + (chunks.ok() ? "ok" : chunks.error().message) +
                    ", .save " + (saved.ok() ? std::to_string(saved->size()) + " chunks" : saved.error().message));
      continue;
    }
    auto doc = decode_document((*saved)[0].body);
    if (!doc.ok()) {
      f.fail(d, "decode_document: " + doc.error().message);
      continue;
    }
    if (doc->heads != hashes_of(d.rec["heads"])) f.fail(d, "decoded heads differ from npm getHeads");
    if (!has_canonical_op_order(*doc)) f.fail(d, "npm's save is not accepted as in canonical op order");
    auto rebuilt = expand_document(*doc);
    if (!rebuilt.ok()) {
      f.fail(d, "expand_document: " + rebuilt.error().message);
      continue;
    }
    if (rebuilt->size() != chunks->size()) {
      f.fail(d, "expand_document gave " + std::to_string(rebuilt->size()) + " changes, npm has " +
                    std::to_string(chunks->size()));
      continue;
    }
    std::map<ChangeHash, size_t> npm_index;
    for (size_t i = 0; i < chunks->size(); ++i) npm_index[(*chunks)[i].hash] = i;
    bool order = true;
    for (size_t i = 0; i < rebuilt->size(); ++i) {
      const RebuiltChange& rc = (*rebuilt)[i];
      auto it = npm_index.find(rc.hash);
      if (it == npm_index.end()) {
        // Find the npm change at the same position to show where the bytes differ.
        const Chunk& same = (*chunks)[std::min(i, chunks->size() - 1)];
        f.fail(d, "rebuilt change " + std::to_string(i) + " has hash " + rc.hash.hex().substr(0, 12) +
                      ", unknown to npm; vs npm change at that position: " + first_difference(rc.chunk, same.bytes));
        break;
      }
      if (it->second != i) order = false;
      ByteView want = (*chunks)[it->second].bytes;
      if (!std::equal(rc.chunk.begin(), rc.chunk.end(), want.begin(), want.end())) {
        f.fail(d, "rebuilt change " + std::to_string(i) + " bytes differ: " + first_difference(rc.chunk, want));
      }
    }
    if (order) ++same_order;
  }
  std::cout << same_order << " of " << corpus().size()
            << " documents expand in exactly npm's getAllChanges order\n";
}

TEST(Differential, EncodeDocumentMatchesNpmUncompressed) {
  SKIP_WITHOUT_CORPUS();
  Failures f("encode_document(decode_document(npm save))");
  for (const CorpusDoc& d : corpus()) {
    // Re-encoding must reproduce the input, whichever version wrote it.
    auto reference = uncompressed_document(d.save);
    if (!reference.ok()) {
      f.fail(d, "cannot uncompress the npm save (reference helper): " + reference.error().message);
      continue;
    }
    auto saved = parse_chunks(d.save);
    if (!saved.ok() || saved->empty()) continue;  // reported by DocumentExpandReproducesChanges
    auto doc = decode_document((*saved)[0].body);
    if (!doc.ok()) {
      f.fail(d, "decode_document: " + doc.error().message);
      continue;
    }
    Bytes out = encode_document(*doc, /*compress=*/false);
    if (out != *reference) {
      f.fail(d, "uncompressed re-encoding differs: " + first_difference(out, *reference) + "; " +
                    document_difference(out, *reference));
    }
    Bytes compressed = encode_document(*doc, /*compress=*/true);
    auto un = uncompressed_document(compressed);
    if (!un.ok() || *un != *reference) {
      f.fail(d, "encode_document(compress=true), inflated, differs from npm: " +
                    (un.ok() ? first_difference(*un, *reference) : un.error().message));
    }
  }
}

TEST(Differential, DocumentSaveMatchesNpm) {
  SKIP_WITHOUT_CORPUS();
  Failures f("Document::save");
  size_t written = 0, byte_identical = 0;
  for (const CorpusDoc& d : corpus()) {
    const fs::path cpp_save = fs::path(d.base).concat(".cpp.save");
    fs::remove(cpp_save);
    for (const char* source : {"changes", "save"}) {
      const bool from_changes = std::string(source) == "changes";
      auto reference = npm_reference(d, from_changes);
      if (!reference.ok()) {
        f.fail(d, "cannot uncompress the npm save (reference helper): " + reference.error().message);
        continue;
      }
      std::vector<uint32_t> npm_deflated;
      (void)uncompressed_document(from_changes ? d.ref_changes_save : d.ref_save, &npm_deflated);
      const Bytes& input = from_changes ? d.changes : d.save;
      auto doc = Document::load(input);
      if (!doc.ok()) {
        f.fail(d, std::string("Document::load(.") + source + "): " + doc.error().message);
        continue;
      }
      Bytes plain = doc->save(false);
      if (plain != *reference) {
        f.fail(d, std::string("Document::load(.") + source + ").save(false) differs from npm save uncompressed: " +
                      first_difference(plain, *reference) + "; " + document_difference(plain, *reference));
      }
      Bytes packed = doc->save(true);
      if (packed == (from_changes ? d.ref_changes_save : d.ref_save)) ++byte_identical;
      std::vector<uint32_t> cpp_deflated;
      auto un = uncompressed_document(packed, &cpp_deflated);
      if (!un.ok() || *un != *reference) {
        f.fail(d, std::string("Document::load(.") + source + ").save(true), inflated, differs from npm: " +
                      (un.ok() ? first_difference(*un, *reference) : un.error().message));
      } else if (cpp_deflated != npm_deflated) {
        f.fail(d, std::string("save(true) DEFLATEs other columns than npm (threshold): C++ ") +
                      std::to_string(cpp_deflated.size()) + " columns, npm " + std::to_string(npm_deflated.size()));
      }
      if (from_changes) {
        // Handed to npm by the interop_differential_npm_load test.
        std::ofstream out(cpp_save, std::ios::binary);
        out.write(reinterpret_cast<const char*>(packed.data()), static_cast<std::streamsize>(packed.size()));
        ++written;
      }
    }
  }
  std::cout << "wrote " << written << " .cpp.save files; " << byte_identical << " of " << 2 * corpus().size()
            << " compressed saves are byte-identical to npm's (DEFLATE streams may legitimately differ)\n";
}

// Not a check of the engine: how often npm's own save() depends on whether the
// document was loaded from a document chunk or from change chunks, and why (printed
// for the first few documents). The C++ saves are compared with the matching one.
TEST(Differential, NpmSaveDependsOnLoadPath) {
  SKIP_WITHOUT_CORPUS();
  size_t differ = 0, shown = 0;
  for (const CorpusDoc& d : corpus()) {
    auto a = uncompressed_document(d.ref_save);
    auto b = uncompressed_document(d.ref_changes_save);
    if (!a.ok() || !b.ok() || *a == *b) continue;
    ++differ;
    if (shown++ < 5) {
      std::cout << d.where() << ": npm save after load(.changes) vs after load(.save): "
                << document_difference(*b, *a) << "\n";
    }
  }
  std::cout << differ << " of " << corpus().size() << " documents: npm 3.5.0 saves differently after loading the "
            << "change chunks than after loading the saved document\n";
}

// ---------------------------------------------------------------- 4. change graph

TEST(Differential, ChangeGraphMatchesNpm) {
  SKIP_WITHOUT_CORPUS();
  Failures f("change graph");
  for (const CorpusDoc& d : corpus()) {
    const std::vector<ChangeHash> npm_heads = hashes_of(d.rec["heads"]);
    std::vector<ChangeHash> npm_order;
    for (const auto& m : d.rec["changes"]) npm_order.push_back(*ChangeHash::from_hex(m["hash"].get<std::string>()));
    // npm applies a batch of change chunks in its own order (breadth first from the
    // changes that are ready); its save after loading the change file records it.
    std::vector<ChangeHash> npm_reload_order;
    {
      size_t consumed = 0;
      auto chunk = parse_chunk(d.ref_changes_save, &consumed);
      auto decoded = chunk.ok() ? decode_document(chunk->body) : Result<DecodedDocument>(chunk.error());
      auto rebuilt = decoded.ok() ? expand_document(*decoded) : Result<ExpandedDocument>(decoded.error());
      if (rebuilt.ok()) {
        for (const RebuiltChange& r : *rebuilt) npm_reload_order.push_back(r.hash);
      }
    }
    for (const char* source : {"changes", "save"}) {
      ChangeGraph g;
      Status st = g.load(std::string(source) == "changes" ? ByteView(d.changes) : ByteView(d.save));
      std::string at = std::string("ChangeGraph::load(.") + source + "): ";
      if (!st.ok()) {
        f.fail(d, at + st.error().message);
        continue;
      }
      if (g.queued_count() != 0) f.fail(d, at + std::to_string(g.queued_count()) + " changes left queued");
      if (g.heads() != npm_heads) f.fail(d, at + "heads " + join_hex(g.heads()) + " != npm " + join_hex(npm_heads));
      // Application order is topological, and from the change file it is npm's.
      for (ChangeGraph::Index i = 0; i < g.size(); ++i) {
        for (ChangeGraph::Index dep : g.deps(i)) {
          if (dep >= i) f.fail(d, at + "change " + std::to_string(i) + " applied before its dependency");
        }
      }
      std::vector<ChangeHash> sorted_ours = g.hashes(), sorted_npm = npm_order;
      std::sort(sorted_ours.begin(), sorted_ours.end());
      std::sort(sorted_npm.begin(), sorted_npm.end());
      if (sorted_ours != sorted_npm) {
        f.fail(d, at + "the set of changes differs from npm getAllChanges");
      } else if (std::string(source) == "changes" && g.hashes() != npm_reload_order) {
        f.fail(d, at + "application order differs from npm's after loading the same change chunks");
      }
      // Changes since some heads, as npm getChanges(view(doc, heads), doc) lists them.
      for (const auto& since : d.rec["since"]) {
        std::vector<ChangeHash> heads = hashes_of(since["heads"]);
        std::vector<ChangeHash> want = hashes_of(since["hashes"]);
        std::vector<ChangeHash> got;
        for (ChangeGraph::Index i : g.changes_since(heads)) got.push_back(g.hash(i));
        std::vector<ChangeHash> got_sorted = got, want_sorted = want;
        std::sort(got_sorted.begin(), got_sorted.end());
        std::sort(want_sorted.begin(), want_sorted.end());
        if (got_sorted != want_sorted) {
          f.fail(d, at + "changes_since(" + join_hex(heads) + ") gives " + std::to_string(got.size()) +
                        " changes, npm getChanges " + std::to_string(want.size()));
        }
      }
    }
  }
}

// ---------------------------------------------------------------- 5. JSON view

TEST(Differential, JsonMatchesNpm) {
  SKIP_WITHOUT_CORPUS();
  Failures f("Document::to_json");
  for (const CorpusDoc& d : corpus()) {
    const json want = json::parse(d.rec["json"].get<std::string>(), nullptr, false);
    if (want.is_discarded()) {
      f.fail(d, "the recorded JSON does not parse");
      continue;
    }
    for (const char* source : {"changes", "save"}) {
      auto doc = Document::load(std::string(source) == "changes" ? ByteView(d.changes) : ByteView(d.save));
      if (!doc.ok()) {
        f.fail(d, std::string("Document::load(.") + source + "): " + doc.error().message);
        continue;
      }
      json got = doc->to_json();
      if (got != want) {
        std::string patch = json::diff(want, got).dump();
        if (patch.size() > 600) patch = patch.substr(0, 600) + "…";
        f.fail(d, std::string("to_json after load(.") + source + ") differs from npm toJS; JSON patch npm->C++: " +
                      patch);
      }
    }
  }
}

// ---------------------------------------------------------------- 6. sync

// The generator leaves the sync fixture out when npm itself fails on it.
bool has_sync_fixture(const CorpusDoc& d) {
  return d.rec.contains("sync") && d.rec["sync"].contains("messages") && d.rec["sync"].contains("a") &&
         d.rec["sync"].contains("b") && d.rec["sync"].contains("heads");
}

TEST(Differential, SyncMessagesRoundTrip) {
  SKIP_WITHOUT_CORPUS();
  Failures f("decode_sync_message/encode_sync_message");
  size_t checked = 0;
  for (const CorpusDoc& d : corpus()) {
    size_t k = 0;
    if (!has_sync_fixture(d)) continue;
    for (const auto& m : d.rec["sync"]["messages"]) {
      ++k;
      if (m["hex"].is_null()) continue;
      auto bytes = from_hex(m["hex"].get<std::string>());
      std::string at = "sync message " + std::to_string(k - 1) + " from " + m["from"].get<std::string>() + ": ";
      auto msg = decode_sync_message(*bytes);
      if (!msg.ok()) {
        f.fail(d, at + "decode_sync_message: " + msg.error().message);
        continue;
      }
      ++checked;
      if (msg->heads != hashes_of(m["heads"]) || msg->need != hashes_of(m["need"]) ||
          msg->have.size() != m["have"].get<size_t>() || msg->changes.size() != m["changes"].get<size_t>()) {
        f.fail(d, at + "decoded fields differ from npm decodeSyncMessage");
      }
      Bytes again = encode_sync_message(*msg);
      if (again != *bytes) f.fail(d, at + "re-encoding differs: " + first_difference(again, *bytes));
    }
  }
  std::cout << "checked " << checked << " npm sync messages\n";
}

// A C++ sync peer holding some of the corpus changes.
struct Peer {
  ChangeGraph graph;
  SyncState state;
};

// The change chunks a sync fixture gives a peer (by index into the corpus changes).
Result<Bytes> peer_changes(const std::vector<Chunk>& chunks, const json& indexes) {
  Bytes data;
  for (const auto& i : indexes) {
    size_t k = i.get<size_t>();
    if (k >= chunks.size()) return error("sync fixture names change " + std::to_string(k) + " out of range");
    append(data, chunks[k].bytes);
  }
  return data;
}

Result<Peer> make_peer(const std::vector<Chunk>& chunks, const json& indexes) {
  GM_ASSIGN_OR_RETURN(Bytes data, peer_changes(chunks, indexes));
  Peer p;
  GM_TRY(p.graph.load(data));
  return p;
}

TEST(Differential, SyncReceiveConverges) {
  SKIP_WITHOUT_CORPUS();
  Failures f("receive_sync_message (npm messages into C++ peers)");
  for (const CorpusDoc& d : corpus()) {
    auto chunks = npm_change_chunks(d);
    if (!chunks.ok()) continue;  // reported by ChangeChunksParseAndHash
    if (!has_sync_fixture(d)) continue;
    const json& s = d.rec["sync"];
    auto a = make_peer(*chunks, s["a"]);
    auto b = make_peer(*chunks, s["b"]);
    if (!a.ok() || !b.ok()) {
      f.fail(d, "loading the sync peers: " + (a.ok() ? b.error().message : a.error().message));
      continue;
    }
    size_t k = 0;
    bool ok = true;
    for (const auto& m : s["messages"]) {
      ++k;
      if (m["hex"].is_null()) continue;
      Peer& to = m["from"] == "a" ? *b : *a;
      Status st = receive_sync_message(to.graph, to.state, ByteView(*from_hex(m["hex"].get<std::string>())));
      if (!st.ok()) {
        f.fail(d, "receiving sync message " + std::to_string(k - 1) + ": " + st.error().message);
        ok = false;
        break;
      }
    }
    const std::vector<ChangeHash> want = hashes_of(s["heads"]);
    if (ok && (a->graph.heads() != want || b->graph.heads() != want)) {
      f.fail(d, "after the npm messages the C++ peers' heads are " + join_hex(a->graph.heads()) + " and " +
                    join_hex(b->graph.heads()) + ", npm's " + join_hex(want));
    }
  }
}

// Compares a C++-generated message with npm's: byte-exact, or else equal after
// inflating whole-document payloads (DEFLATE streams may differ) and, for 2.2.8 peers,
// with npm's legacy flags section. Returns an empty string when they agree.
// The change hashes a sync payload entry carries (a document chunk expanded), sorted.
std::vector<ChangeHash> carried_hashes(ByteView entry) {
  std::vector<ChangeHash> out;
  auto chunks = parse_chunks(entry);
  if (!chunks.ok()) return out;
  for (const Chunk& c : *chunks) {
    if (c.type != ChunkType::kDocument) {
      out.push_back(c.hash);
      continue;
    }
    auto decoded = decode_document(c.body);
    auto rebuilt = decoded.ok() ? expand_document(*decoded) : Result<ExpandedDocument>(decoded.error());
    if (rebuilt.ok()) {
      for (const RebuiltChange& r : *rebuilt) out.push_back(r.hash);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// An entry that carries the same changes as npm's in another topological order (whole
// documents listing their changes, or change lists their chunks, in another order) is
// reported through *order_only rather than as a difference; the caller decides whether
// that is a failure (it is for 3.5.0 documents, see SyncGenerateMatchesNpm).
std::string compare_sync(const SyncMessage& ours_in, ByteView npm_bytes, int version, bool* exact,
                         bool* order_only) {
  *order_only = false;
  Bytes ours_bytes = encode_sync_message(ours_in);
  *exact = std::equal(ours_bytes.begin(), ours_bytes.end(), npm_bytes.begin(), npm_bytes.end());
  if (*exact) return "";
  auto npm = decode_sync_message(npm_bytes);
  if (!npm.ok()) return "npm message does not decode: " + npm.error().message;
  auto decoded = decode_sync_message(ours_bytes);  // a copy whose views point into ours_bytes
  if (!decoded.ok()) return "our message does not decode: " + decoded.error().message;
  SyncMessage& ours = *decoded;
  if (version == 2) ours.flags = npm->flags;
  if (ours.version != npm->version) return "message type differs (V1/V2)";
  if (ours.heads != npm->heads) return "heads differ: " + join_hex(ours.heads) + " vs npm " + join_hex(npm->heads);
  if (ours.need != npm->need) return "need differs: " + join_hex(ours.need) + " vs npm " + join_hex(npm->need);
  if (ours.have != npm->have) return "have differs (lastSync or bloom filter)";
  if (ours.flags != npm->flags) return "flags differ";
  if (ours.changes.size() != npm->changes.size()) {
    return std::to_string(ours.changes.size()) + " change entries vs npm " + std::to_string(npm->changes.size());
  }
  for (size_t i = 0; i < ours.changes.size(); ++i) {
    if (std::ranges::equal(ours.changes[i], npm->changes[i])) continue;
    auto u1 = uncompressed_document(ours.changes[i]);
    auto u2 = uncompressed_document(npm->changes[i]);
    if (u1.ok() && u2.ok() && *u1 == *u2) continue;
    std::vector<ChangeHash> ours_carried = carried_hashes(ours.changes[i]);
    if (!ours_carried.empty() && ours_carried == carried_hashes(npm->changes[i])) {
      *order_only = true;
      continue;
    }
    if (u1.ok() && u2.ok()) {
      return "whole-document entry differs (compared uncompressed): " + first_difference(*u1, *u2) + "; " +
             document_difference(*u1, *u2);
    }
    auto c1 = parse_chunks(ours.changes[i]);
    auto c2 = parse_chunks(npm->changes[i]);
    if (c1.ok() && c2.ok()) {
      std::vector<ChangeHash> h1, h2;
      for (const Chunk& c : *c1) h1.push_back(c.hash);
      for (const Chunk& c : *c2) h2.push_back(c.hash);
      return "change entry " + std::to_string(i) + " differs: ours sends " + join_hex(h1) + ", npm " + join_hex(h2);
    }
    return "change entry " + std::to_string(i) + " differs: " + first_difference(ours.changes[i], npm->changes[i]);
  }
  return "";
}

bool sends_document(const SyncMessage& m) {
  return m.changes.size() == 1 && m.changes[0].size() > 8 && m.changes[0][8] == uint8_t(ChunkType::kDocument);
}
bool sends_document_bytes(ByteView bytes) {
  auto m = decode_sync_message(bytes);
  return m.ok() && sends_document(*m);
}

// A lockstep peer is a Document: its change graph is what generate_sync_message runs
// over and its save() is the whole-document payload, so a document sent after sync
// rounds lists its changes in the order the peer applied them, as npm's save() does.
// (Reloading the graph's chunks into a fresh Document would apply them as one batch,
// in npm's breadth-first batch order, which after sync rounds can differ from the
// order they were applied in.)
struct DocPeer {
  Document doc;
  SyncState state;
};

Result<DocPeer> make_doc_peer(const std::vector<Chunk>& chunks, const json& indexes) {
  GM_ASSIGN_OR_RETURN(Bytes data, peer_changes(chunks, indexes));
  DocPeer p;
  GM_ASSIGN_OR_RETURN(p.doc, Document::load(data));
  return p;
}

TEST(Differential, SyncGenerateMatchesNpm) {
  SKIP_WITHOUT_CORPUS();
  Failures f("generate_sync_message (lockstep with npm)");
  size_t compared = 0, exact_count = 0, not_comparable = 0, order_only_v2 = 0;
  for (const CorpusDoc& d : corpus()) {
    auto chunks = npm_change_chunks(d);
    if (!chunks.ok()) continue;
    if (!has_sync_fixture(d)) continue;
    const json& s = d.rec["sync"];
    auto a = make_doc_peer(*chunks, s["a"]);
    auto b = make_doc_peer(*chunks, s["b"]);
    if (!a.ok() || !b.ok()) continue;  // reported by SyncReceiveConverges
    size_t k = 0;
    for (const auto& m : s["messages"]) {
      ++k;
      const bool from_a = m["from"] == "a";
      DocPeer& self = from_a ? *a : *b;
      DocPeer& other = from_a ? *b : *a;
      SyncOptions options;
      const Document* doc = &self.doc;
      options.save_document = [doc] { return doc->save(true); };
      std::optional<SyncMessage> ours = generate_sync_message(self.doc.graph(), self.state, options);
      std::string at = "call " + std::to_string(k - 1) + " (peer " + m["from"].get<std::string>() + "): ";
      if (m["hex"].is_null()) {
        if (ours) {
          f.fail(d, at + "C++ generates a message where npm generates none");
          break;
        }
        continue;
      }
      Bytes npm_bytes = *from_hex(m["hex"].get<std::string>());
      if (!ours) {
        f.fail(d, at + "C++ generates nothing where npm sends " + hexs(npm_bytes));
        break;
      }
      if (d.version() == 2 && sends_document(*ours) && !sends_document_bytes(npm_bytes)) {
        // 2.2.8 sends change chunks where 3.x (and the C++ engine) sends the whole
        // document (§2.6); from here on the two peers' states legitimately differ.
        ++not_comparable;
        break;
      }
      bool exact = false, order_only = false;
      std::string why = compare_sync(*ours, npm_bytes, d.version(), &exact, &order_only);
      ++compared;
      if (exact) ++exact_count;
      if (!why.empty()) {
        f.fail(d, at + why);
        break;
      }
      if (order_only && d.version() == 2) {
        // Counted, not failed: 2.2.8's applyChanges puts a batch of changes in another
        // order than 3.5.0's, and the C++ engine follows 3.5.0, so a 2.2.8 peer can have
        // applied (and so save or send) the same changes in another topological order.
        ++order_only_v2;
      } else if (order_only) {
        f.fail(d, at + "carries the same changes as npm's message in another topological order");
        break;
      }
      // The other peer receives npm's bytes, so one difference does not cascade.
      Status st = other.doc.receive_sync_message(other.state, ByteView(npm_bytes));
      if (!st.ok()) {
        f.fail(d, at + "receive: " + st.error().message);
        break;
      }
    }
  }
  std::cout << "compared " << compared << " generated sync messages, " << exact_count << " byte-identical, "
            << order_only_v2 << " (2.2.8 documents) with the same changes in another topological order; "
            << not_comparable << " 2.2.8 runs stopped where 2.2.8 sends changes and 3.x a whole document\n";
}

}  // namespace
}  // namespace gm::automerge
