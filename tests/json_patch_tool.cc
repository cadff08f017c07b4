// The engine's change authoring, driven by tests/interop/json_patch_diff.mjs against
// npm @automerge/automerge 3.5.0 and fast-json-patch.
//
//   json_patch_tool patch <doc-file> <patch-file> <actor-hex> <time> <out-file>
//       loads the document (any chunks), applies the JSON Patch (a JSON file) as one
//       change, writes the change chunk to <out-file> (empty when the patch makes
//       none). Exit 0; on a refused patch: 2 invalid, 3 failed test, 4 over a limit
//       (the message on stderr, <out-file> not written); 1 on anything else.
//   json_patch_tool view <doc-file> [head-hex,...]
//       prints Document::to_json_at(heads) (no heads argument: the empty heads list).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "automerge/json_patch.h"

using namespace gm;
using namespace gm::automerge;

namespace {

bool read_file(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

int fail(const std::string& message, int code = 1) {
  std::cerr << message << "\n";
  return code;
}

int exit_code(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalid:
      return 2;
    case ErrorCode::kFailedPrecondition:
      return 3;
    case ErrorCode::kOverLimit:
      return 4;
    default:
      return 1;
  }
}

Result<Document> load(const char* path) {
  std::string bytes;
  if (!read_file(path, &bytes)) return error(std::string("cannot read ") + path);
  return Document::load(ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

int patch(char** argv) {
  Result<Document> doc = load(argv[2]);
  if (!doc) return fail("load: " + doc.error().message);
  std::string body;
  if (!read_file(argv[3], &body)) return fail(std::string("cannot read ") + argv[3]);
  Result<std::vector<JsonPatchOp>> ops = parse_json_patch(std::string_view(body));
  if (!ops) return fail(ops.error().message, exit_code(ops.error().code));
  Result<Bytes> actor = from_hex(argv[4]);
  if (!actor || actor->empty()) return fail("bad actor");
  JsonPatchOptions options;
  options.actor = *actor;
  options.time = std::stoll(argv[5]);
  const nlohmann::json before = doc->to_json();
  Result<std::optional<Transaction::Committed>> change = apply_json_patch(*doc, *ops, options);
  if (!change) {
    // Atomicity: a refused patch leaves the document as it was.
    if (doc->to_json() != before) return fail("refused patch changed the document");
    return fail(change.error().message, exit_code(change.error().code));
  }
  std::ofstream out(argv[6], std::ios::binary);
  if (change->has_value()) {
    const Bytes& chunk = (*change)->chunk;
    out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(chunk.size()));
  }
  return out ? 0 : fail("cannot write the change");
}

int view(int argc, char** argv) {
  Result<Document> doc = load(argv[2]);
  if (!doc) return fail("load: " + doc.error().message);
  std::vector<ChangeHash> heads;
  if (argc > 3) {
    std::stringstream list(argv[3]);
    std::string hex;
    while (std::getline(list, hex, ',')) {
      if (hex.empty()) continue;
      Result<ChangeHash> h = ChangeHash::from_hex(hex);
      if (!h) return fail("bad head " + hex);
      heads.push_back(*h);
    }
  }
  Result<nlohmann::json> json = doc->to_json_at(heads);
  if (!json) return fail(json.error().message, exit_code(json.error().code));
  std::cout << json->dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "patch" && argc == 7) return patch(argv);
  if (mode == "view" && (argc == 3 || argc == 4)) return view(argc, argv);
  return fail("usage: json_patch_tool patch <doc> <patch.json> <actor-hex> <time> <out> | view <doc> [heads]");
}
