// RFC 6902 JSON Patch applied to an Automerge document as ONE new change
// (docs/json-patch.md has the decisions and what was checked against npm).
//
// The patch is untrusted input (the HTTP API's PATCH body). It is checked whole
// first (shape, pointers, limits), then applied operation by operation in a
// Transaction; on any error nothing reaches the document and no change is made.
//
// How JSON values become Automerge values (what npm @automerge/automerge 3.5.0
// writes for the same JavaScript values, checked with decodeChange):
//   object / array     a new map / list, its members written the same way
//   string             a new TEXT object, one insert per Unicode code point (npm 3.x
//                      writes a plain JS string so; scalar strings need ImmutableString)
//   integer            int (a JSON integer literal within int64, or a number with a
//                      fraction/exponent whose value is an integer of magnitude
//                      <= 2^53: JS cannot tell 5.0 from 5 and npm writes int for both);
//                      an integer literal above int64's range -> uint
//   other numbers      f64
//   true/false/null    themselves
// Writing over a value that exists (replace, or add onto an existing object member):
//   text  <- string    the smallest splice: common prefix and suffix (by element, i.e.
//                      by code point) are kept, the middle deleted and inserted, so an
//                      edit made concurrently elsewhere in the text merges
//   counter <- integer an increment by (new - current); nothing when equal
//   scalar string <- string   stays a scalar string (a put)
//   anything else      a put of the new value (preds = every conflicting value)
// copy and move copy the Automerge value with its types (text stays text, a scalar
// string stays scalar, a counter stays a counter with its current value); move is
// remove-then-add, as RFC 6902 defines it. `test` compares the JSON view (a counter
// as its value, text as its string) with RFC 6902 equality.
// The root is a map: "" may be replaced (or added) only by a JSON object, which
// writes each member (and removes the others), and never removed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/transaction.h"

namespace gm::automerge {

// Limits on one patch. Over one -> ErrorCode::kOverLimit (the API answers 400 or 413).
inline constexpr size_t kMaxPatchOperations = 1000;    // operations in one patch
inline constexpr size_t kMaxPatchValueDepth = 64;      // nesting of a value (1 = scalar)
inline constexpr size_t kMaxPatchStringBytes = 1 << 20;  // one string value, key or pointer
inline constexpr size_t kMaxPatchChangeOps = 1 << 20;  // Automerge ops the change may hold
// Nesting of a document value a copy or move may duplicate (the JSON view's own
// rendering limit is 2000).
inline constexpr size_t kMaxCopyDepth = 2000;

// One parsed operation.
struct JsonPatchOp {
  enum class Kind { kAdd, kRemove, kReplace, kMove, kCopy, kTest };
  Kind kind;
  std::vector<std::string> path;  // JSON Pointer tokens, unescaped ("" = the root = {})
  std::vector<std::string> from;  // move, copy
  nlohmann::json value;           // add, replace, test
  std::string path_text;          // as given, for messages
};

// Parses and checks the shape of a patch: an array of objects, each with an
// "op" among add/remove/replace/move/copy/test, a "path" (and "from" for move and
// copy) that is a JSON Pointer (RFC 6901: "" or "/..." with ~0 and ~1 escapes, no
// other "~"), and a "value" where the op needs one; the limits above. Members
// other than these are ignored (RFC 6902 §4). Errors name the operation by index.
Result<std::vector<JsonPatchOp>> parse_json_patch(const nlohmann::json& patch);
// The same from the request body's bytes (must be UTF-8 JSON).
Result<std::vector<JsonPatchOp>> parse_json_patch(std::string_view body);

struct JsonPatchOptions {
  ActorId actor;          // the author of the change (non-empty)
  int64_t time = 0;       // seconds since the epoch, as npm writes
  std::string message;    // optional change message
};

// Applies the patch to `doc` as one change by options.actor. Returns the change
// (nullopt when the patch needs no op: only tests, a text replaced by its own
// string, a counter by its own value; a scalar replaced by an equal scalar is still
// written, as npm writes it). Errors, with the document unchanged:
//   kInvalid             malformed patch, a path that does not exist or cannot be
//                        written (into a string or a scalar, an index out of range, a
//                        bad array index), remove of the root, move into itself
//   kFailedPrecondition  a `test` whose value differs
//   kOverLimit           a limit above
Result<std::optional<Transaction::Committed>> apply_json_patch(Document& doc, const std::vector<JsonPatchOp>& patch,
                                                               const JsonPatchOptions& options);

// The JSON Pointer tokens of a path, or an error (exposed for tests).
Result<std::vector<std::string>> parse_json_pointer(std::string_view pointer);
// One key as a JSON Pointer token: '~' and '/' escaped (RFC 6901).
std::string json_pointer_token(std::string_view key);

}  // namespace gm::automerge
