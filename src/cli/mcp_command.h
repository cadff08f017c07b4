// `groundmist-sync mcp --url URL [--token T]`: a Model Context Protocol server on stdio
// for AI assistants on the owner's machine (issue 14, docs/api.md "Agents"). It speaks
// JSON-RPC 2.0, one message per line (the MCP stdio transport), and turns each tool call
// into one request to the server's JSON API (`/api/v1`) with the token, so an agent gets
// exactly what the token's grants allow and its edits go through the same checks,
// durability and fan-out as any app's.
//
// Tools: list_groups, list_documents, read_document, list_changes, create_document,
// patch_document. A failed API call is a tool result with isError (the agent reads the
// API's error); malformed JSON-RPC gets the protocol's errors. The token comes from
// --token or GROUNDMIST_SYNC_TOKEN (better: not shown by `ps`).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

namespace gm::cli {

struct McpOptions {
  std::string url;    // the server's base URL, e.g. http://127.0.0.1:3031
  std::string token;  // a session token (`groundmist-sync token --scope …`)
  int exit_code = 0;
};

void add_mcp_command(CLI::App& app, McpOptions& opts);

// One HTTP call of the API: method, path with query (from /api/v1/…), body and its type;
// gives the status and the body. The command's is libcurl's; tests may pass their own.
struct ApiAnswer {
  long status = 0;
  std::string body;
};
using ApiCall = std::function<ApiAnswer(const std::string& method, const std::string& path, const std::string* body,
                                        const std::string& content_type, const std::string& if_match)>;

// The answer to one JSON-RPC message (nullopt for a notification), and the loop over a
// stream of them.
std::optional<nlohmann::json> mcp_answer(const nlohmann::json& message, const ApiCall& api);
void serve_mcp(std::istream& in, std::ostream& out, const ApiCall& api);

}  // namespace gm::cli
