// The JSON API, /api/v1 (docs/api.md): the owner's documents as JSON over HTTP, for
// tools, scripts and agents. Every request carries `Authorization: Bearer <session
// token>`; access.h decides which groups it reads and writes.
//
//   GET   /api/v1/groups                          readable groups, documents and bytes
//   GET   /api/v1/groups/{group}/documents        ?limit=&cursor= a page of documents
//   POST  /api/v1/groups/{group}/documents        JSON object -> a new document
//   GET   /api/v1/documents/{id}                  JSON view (ETag: heads), ?heads=, or
//                                                 the saved document (Accept: octet-stream)
//   PATCH /api/v1/documents/{id}                  RFC 6902 JSON Patch, If-Match: heads
//   GET   /api/v1/documents/{id}/changes          ?since=h1,h2 the changes' metadata
//   GET   /api/v1/documents/{id}/events           Server-Sent Events: a snapshot, then
//                                                 each change as a JSON Patch (events.h)
//   GET   /api/v1/openapi.json                    this API's description
//
// Threads: handlers run on the io thread and never do work that grows with a document
// or a group there. What reads or changes a document is a DocumentCall on the
// document's slot in its GroupRepo (repo/group_repo.h): run on the repo's workers, in
// order with the clients' sync messages, seeing the document as the acknowledged
// changes left it, and a change goes the clients' way (persisted, committed durably,
// then sent to every client of the document, then answered). Listings walk the group's
// store on the repo's slow lane. The JSON text is made on the worker too.
//
// Bounds: requests under way (waiting for a worker or running), server-wide and per
// token (RequestLimiter; past them 503 + Retry-After), the body size, a JSON body's
// nesting, the page size and the `since` list.
//
// Cross-origin: every route answers any Origin (CORS without credentials), because
// the credential is a bearer token a page must hold and send itself; a browser's
// cookies earn nothing here, so allowing other origins lets no page read what it could
// not read already.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "api/access.h"
#include "auth/session_token.h"
#include "automerge/types.h"
#include "repo/repo.h"
#include "server/http_router.h"
#include "util/result.h"

namespace gm::api {

// Checks a bearer token (signature, expiry, revocation, owner) and gives its claims.
// Called on the io thread: must be quick.
using ClaimsVerifier = std::function<Result<auth::SessionClaims>(std::string_view token)>;
// The Automerge actor id the API writes as for these claims (stable per grant/token).
using WriterId = std::function<automerge::ActorId(const auth::SessionClaims& claims)>;

struct ApiLimits {
  size_t max_in_flight = 64;           // requests under way, server-wide
  size_t max_in_flight_per_token = 8;  // of one token
  size_t max_body_bytes = 1 << 20;     // POST and PATCH bodies; more is 413
  // Nesting of a body's JSON, checked on the text before it is parsed (more is 400):
  // a patch's values may nest 64 deep (automerge::kMaxPatchValueDepth), inside the
  // patch's array and operation object.
  size_t max_json_depth = 66;
  size_t default_page = 50;
  size_t max_page = 200;               // ?limit= above it is 400
  size_t max_heads = 64;               // hashes in ?since=, ?heads=, If-Match
  size_t max_changes_page = 1000;      // changes in one answer of .../changes (?limit= caps lower)
  size_t max_event_streams = 64;       // GET .../events streams open, server-wide (then 503)
  size_t max_event_streams_per_token = 8;  // of one token (then 429)
};

// Who a request comes from, when it is let in: its claims and what they reach.
struct Who {
  auth::SessionClaims claims;
  Access access;
};
// Decides that from the request's headers (quick: on the io thread), or says why not
// (answered 401).
using Authenticate = std::function<Result<Who>(const server::HttpRequest&)>;

// Another way in than a bearer token: the owner's console (docs/console.md) serves the
// read routes (groups, a group's documents, a document, its changes, its events) under
// its own prefix ("/console/api/v1"), authenticated by its cookie, without CORS.
struct ReadMount {
  std::string prefix;
  Authenticate authenticate;
};

// Adds the routes above to `router`, and the read routes under each of `read_mounts`. `repo` is used on the io thread only, and must
// outlive the router's server. The function returned checks every open event stream's
// token again, ending those revoked: call it on the io thread after a revocation.
std::function<void()> add_api_routes(server::HttpRouter& router, repo::Repo& repo, ClaimsVerifier verify,
                                     WriterId writer, ApiLimits limits = {},
                                     std::vector<ReadMount> read_mounts = {});

// The deepest nesting of arrays and objects in `json` (strings skipped), without
// parsing it: a check before a parser or a copy that recurses. Exposed for tests.
size_t json_nesting(std::string_view json);

}  // namespace gm::api
