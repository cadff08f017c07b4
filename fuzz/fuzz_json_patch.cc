// Fuzzes the JSON Patch path of the HTTP API (src/automerge/json_patch.h): the input
// is a PATCH body. It is parsed and applied to a small document holding text, a
// scalar string, a counter, a list and a nested map. Parsing or applying may refuse
// it, but must never crash; a refused patch must leave the document exactly as it was
// (no change, same JSON), and an accepted one must produce a change that a fresh
// document built from the saved bytes applies to the same JSON.
#include <cstdint>
#include <cstdlib>

#include "automerge/json_patch.h"

namespace {

using namespace gm;
using namespace gm::automerge;

const Document& base_document() {
  static const Document doc = [] {
    Document d;
    auto ops = parse_json_patch(std::string_view(
        R"([{"op":"add","path":"/t","value":"héllo 😀"},{"op":"add","path":"/l","value":[1,2.5,{"k":[true,null]}]},
            {"op":"add","path":"/m","value":{"a/b":{"~":"x"}}}])"));
    if (!ops.ok() || !apply_json_patch(d, *ops, {Bytes{1}, 0, ""}).ok()) std::abort();
    Transaction tx(d, Bytes{2}, 0);
    Value s;
    s.type = static_cast<uint8_t>(ValueType::kString);
    s.bytes = "scalar";
    Value c;
    c.type = static_cast<uint8_t>(ValueType::kCounter);
    c.int_value = 5;
    if (!tx.put(Transaction::root(), "s", s).ok() || !tx.put(Transaction::root(), "c", c).ok() ||
        !tx.commit(d).ok())
      std::abort();
    return d;
  }();
  return doc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto ops = parse_json_patch(body);
  if (!ops.ok()) return 0;
  Document doc = base_document();
  const nlohmann::json before = doc.to_json();
  const std::vector<ChangeHash> heads = doc.heads();
  auto change = apply_json_patch(doc, *ops, {Bytes{3}, 0, ""});
  if (!change.ok()) {
    if (doc.heads() != heads || doc.to_json() != before) std::abort();
    return 0;
  }
  if (!change->has_value()) {
    if (doc.heads() != heads) std::abort();
    return 0;
  }
  // The change, applied by the ordinary path to a copy loaded from bytes, gives the same view.
  Bytes saved = base_document().save();
  auto other = Document::load(saved);
  if (!other.ok() || !other->apply((*change)->chunk).ok()) std::abort();
  if (other->to_json() != doc.to_json()) std::abort();
  return 0;
}
