// SEAM (issue 14): the Automerge engine's authoring, written on branch `author`
// (automerge/json_patch.h: apply_json_patch; automerge/document.h: to_json_at). Until
// that branch is merged, authoring_available() is false and the API answers 501 Not
// Implemented to what needs it (POST and PATCH of documents, GET ?heads=); once
// automerge/json_patch.h exists, author.cc calls it, with nothing else to change.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string_view>

#include "automerge/document.h"
#include "util/result.h"

namespace gm::api {

// Whether the functions below do their work (false: each returns an error).
bool authoring_available();

// The outcome of authoring: the change chunk to add (none: the patch changed nothing),
// or an error whose code says how the API answers: kInvalid 400 (or 422 for a path
// that does not exist), kOverLimit 413, kFailedPrecondition 409 (a failed `test`).
// The document is changed only on success (the change is applied to it).
Result<std::optional<Bytes>> author_patch(automerge::Document& doc, std::string_view patch_json,
                                          const automerge::ActorId& actor, int64_t time);
// A first change that makes the (empty) document's root `object`.
Result<std::optional<Bytes>> author_create(automerge::Document& doc, const nlohmann::json& object,
                                           const automerge::ActorId& actor, int64_t time);
// The JSON view as of `heads` (Automerge.view(doc, heads), then toJS).
Result<nlohmann::json> view_at(const automerge::Document& doc, std::span<const automerge::ChangeHash> heads);

// The error code the functions above use when authoring is not available.
inline constexpr std::string_view kAuthoringUnavailable = "not implemented yet: the engine's authoring (branch `author`) is not in this build";

}  // namespace gm::api
