#include "api/author.h"

#if __has_include("automerge/json_patch.h")
#include "automerge/json_patch.h"
#define GM_API_AUTHORING 1
#else
#define GM_API_AUTHORING 0
#endif

namespace gm::api {

bool authoring_available() { return GM_API_AUTHORING != 0; }

#if GM_API_AUTHORING

namespace {

Result<std::optional<Bytes>> apply(automerge::Document& doc, const std::vector<automerge::JsonPatchOp>& ops,
                                   const automerge::ActorId& actor, int64_t time) {
  automerge::JsonPatchOptions options;
  options.actor = actor;
  options.time = time;
  GM_ASSIGN_OR_RETURN(auto committed, automerge::apply_json_patch(doc, ops, options));
  if (!committed) return std::optional<Bytes>();
  return std::optional<Bytes>(std::move(committed->chunk));
}

}  // namespace

Result<std::optional<Bytes>> author_patch(automerge::Document& doc, std::string_view patch_json,
                                          const automerge::ActorId& actor, int64_t time) {
  GM_ASSIGN_OR_RETURN(auto ops, automerge::parse_json_patch(patch_json));
  return apply(doc, ops, actor, time);
}

Result<std::optional<Bytes>> author_create(automerge::Document& doc, const nlohmann::json& object,
                                           const automerge::ActorId& actor, int64_t time) {
  // Replacing the root by an object writes each of its members.
  GM_ASSIGN_OR_RETURN(auto ops, automerge::parse_json_patch(nlohmann::json::array(
                                    {{{"op", "replace"}, {"path", ""}, {"value", object}}})));
  return apply(doc, ops, actor, time);
}

Result<nlohmann::json> view_at(const automerge::Document& doc, std::span<const automerge::ChangeHash> heads) {
  return doc.to_json_at(heads);
}

#else

Result<std::optional<Bytes>> author_patch(automerge::Document&, std::string_view, const automerge::ActorId&, int64_t) {
  return error(std::string(kAuthoringUnavailable));
}
Result<std::optional<Bytes>> author_create(automerge::Document&, const nlohmann::json&, const automerge::ActorId&,
                                           int64_t) {
  return error(std::string(kAuthoringUnavailable));
}
Result<nlohmann::json> view_at(const automerge::Document&, std::span<const automerge::ChangeHash>) {
  return error(std::string(kAuthoringUnavailable));
}

#endif

}  // namespace gm::api
