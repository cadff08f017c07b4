#include "api/openapi.h"

namespace gm::api {

namespace {

constexpr const char* kDescription = R"json({
  "openapi": "3.1.0",
  "info": {
    "title": "Groundmist Sync JSON API",
    "version": "1",
    "description": "The owner's Automerge documents as JSON (docs/api.md). Every route but this description needs Authorization: Bearer <session token>. Errors are {\"error\": \"...\"}."
  },
  "components": {
    "securitySchemes": {"session": {"type": "http", "scheme": "bearer", "description": "a session token (/authenticate or `groundmist-sync token`)"}},
    "parameters": {
      "group": {"name": "group", "in": "path", "required": true, "schema": {"type": "string"}, "description": "lexicon NSID group, e.g. xyz.groundmist.library"},
      "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "document id: the automerge URL without automerge:"}
    },
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
      "Heads": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
      "Created": {"type": "object", "properties": {"id": {"type": "string"}, "url": {"type": "string"}, "heads": {"$ref": "#/components/schemas/Heads"}}}
    },
    "responses": {
      "Error": {"description": "400, 401, 403, 404, 405, 409, 412, 413, 415, 501 or 503", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  },
  "security": [{"session": []}],
  "paths": {
    "/api/v1/openapi.json": {
      "get": {"summary": "This description", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}
    },
    "/api/v1/groups": {
      "get": {"summary": "Groups the token may read, with document count and bytes",
              "responses": {"200": {"description": "{groups: [{group, documents, bytes, write}]}"}, "default": {"$ref": "#/components/responses/Error"}}}
    },
    "/api/v1/groups/{group}/documents": {
      "parameters": [{"$ref": "#/components/parameters/group"}],
      "get": {"summary": "A page of the group's documents, in id order",
              "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
                             {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "from the previous page"}],
              "responses": {"200": {"description": "{group, documents: [{id, url, heads, size, time}], cursor}"}, "default": {"$ref": "#/components/responses/Error"}}},
      "post": {"summary": "Creates a document whose root is the body",
               "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
               "responses": {"201": {"description": "created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Created"}}}}, "default": {"$ref": "#/components/responses/Error"}}}
    },
    "/api/v1/documents/{id}": {
      "parameters": [{"$ref": "#/components/parameters/id"},
                     {"name": "group", "in": "query", "schema": {"type": "string"}, "description": "look only in this group (an id is unique within a group only; answers name theirs in Groundmist-Group)"}],
      "get": {"summary": "The JSON view (npm toJS); ETag = the heads",
              "parameters": [{"name": "heads", "in": "query", "schema": {"type": "string"}, "description": "h1,h2: the view as of these heads"}],
              "responses": {"200": {"description": "the JSON view, or with Accept: application/octet-stream the saved document",
                                    "content": {"application/json": {}, "application/octet-stream": {}}},
                            "304": {"description": "If-None-Match named the current ETag (heads): not modified"},
                            "default": {"$ref": "#/components/responses/Error"}}},
      "patch": {"summary": "Applies an RFC 6902 JSON Patch as one change",
                "parameters": [{"name": "If-Match", "in": "header", "schema": {"type": "string"}, "description": "the ETag the patch was made against"}],
                "requestBody": {"required": true, "content": {"application/json-patch+json": {"schema": {"type": "array", "items": {"type": "object"}}}}},
                "responses": {"200": {"description": "durable and sent to the document's clients", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Created"}}}}, "default": {"$ref": "#/components/responses/Error"}}}
    },
    "/api/v1/documents/{id}/changes": {
      "parameters": [{"$ref": "#/components/parameters/id"},
                     {"name": "group", "in": "query", "schema": {"type": "string"}, "description": "look only in this group"}],
      "get": {"summary": "The changes' metadata",
              "parameters": [{"name": "since", "in": "query", "schema": {"type": "string"}, "description": "h1,h2: only changes not reachable from these"},
                             {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}, "description": "at most this many (default and most: 1000)"},
                             {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "the previous page's cursor (with the same since)"}],
              "responses": {"200": {"description": "{changes: [{hash, actor, seq, startOp, time, message, deps}], heads, cursor}: cursor is null on the last page"}, "default": {"$ref": "#/components/responses/Error"}}}
    },
    "/api/v1/documents/{id}/events": {
      "parameters": [{"$ref": "#/components/parameters/id"},
                     {"name": "group", "in": "query", "schema": {"type": "string"}, "description": "look only in this group"}],
      "get": {"summary": "Server-Sent Events: a snapshot of the JSON view, then each change as a JSON Patch",
              "parameters": [{"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}, "description": "the id of the last event seen (its heads): equal to the current heads, no snapshot is sent"}],
              "responses": {"200": {"description": "text/event-stream: `event: snapshot` data {heads, doc}, then `event: change` data {heads, patch} (RFC 6902, from the previous view); id = the heads, comma-joined; a `: heartbeat` comment every 15 s",
                                    "content": {"text/event-stream": {}}},
                            "429": {"description": "this token has as many event streams open as allowed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                            "default": {"$ref": "#/components/responses/Error"}}}
    }
  }
})json";

}  // namespace

const nlohmann::json& openapi_description() {
  static const nlohmann::json description = nlohmann::json::parse(kDescription);
  return description;
}

}  // namespace gm::api
