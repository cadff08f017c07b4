#include "cli/mcp_command.h"

#include <cstdlib>
#include <iostream>
#include <utility>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "atproto/http_client.h"

namespace gm::cli {
namespace {

using nlohmann::json;

// Protocol versions this server speaks (the MCP specification's dated revisions); a
// client asking for another gets the newest, and decides whether it can go on.
constexpr const char* kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};
// One message per line; a longer line is refused, not buffered without end.
constexpr size_t kMaxLineBytes = 8 << 20;

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

json string_property(const char* description) { return {{"type", "string"}, {"description", description}}; }

json heads_property(const char* description) {
  return {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", description}};
}

json tool(const char* name, const char* description, json properties, std::vector<std::string> required,
          bool read_only) {
  json schema = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) schema["required"] = required;
  return {{"name", name},
          {"description", description},
          {"inputSchema", std::move(schema)},
          {"annotations", {{"readOnlyHint", read_only}, {"openWorldHint", false}}}};
}

const json& tools() {
  static const json all = json::array({
      tool("list_groups",
           "The owner's lexicon groups this token may read (one per app, e.g. xyz.groundmist.notebook), each with "
           "its document count and bytes.",
           json::object(), {}, true),
      tool("list_documents",
           "The documents of one group: id, automerge URL, heads, size and time of the last change. Paged: pass the "
           "returned cursor to get the next page.",
           {{"group", string_property("Lexicon NSID group, e.g. xyz.groundmist.notebook")},
            {"limit", {{"type", "integer"}, {"minimum", 1}, {"description", "At most this many (the server caps it)"}}},
            {"cursor", string_property("From the previous page")}},
           {"group"}, true),
      tool("read_document",
           "A document as JSON (what the app sees), with its heads. Give heads to read it as it was then.",
           {{"id", string_property("Document id: the part of its automerge: URL after 'automerge:'")},
            {"heads", heads_property("Change hashes (hex) of an earlier version")}},
           {"id"}, true),
      tool("list_changes",
           "A document's history: hash, actor, seq, time, message and deps of each change, oldest first. Paged: "
           "pass the returned cursor (and the same since) to get the next page.",
           {{"id", string_property("Document id")},
            {"since", heads_property("Only the changes after these heads")},
            {"limit", {{"type", "integer"}, {"minimum", 1}, {"description", "At most this many (the server caps it)"}}},
            {"cursor", string_property("From the previous page")}},
           {"id"}, true),
      tool("create_document", "Creates a document in a group from a JSON object; returns its id, URL and heads.",
           {{"group", string_property("Lexicon NSID group the token may write")},
            {"content", {{"type", "object"}, {"description", "The document's initial JSON"}}}},
           {"group", "content"}, false),
      tool("patch_document",
           "Edits a document with an RFC 6902 JSON Patch, as one change that the apps syncing it receive at once. "
           "Strings edited by replace merge with concurrent edits. Pass ifMatch (the heads you read, comma-separated) "
           "to fail instead of editing a newer version.",
           {{"id", string_property("Document id")},
            {"patch", {{"type", "array"}, {"items", {{"type", "object"}}}, {"description", "RFC 6902 operations"}}},
            {"ifMatch", string_property("Heads the edit expects (from read_document)")}},
           {"id", "patch"}, false),
  });
  return all;
}

std::string heads_query(const json& args, const char* name) {
  auto it = args.find(name);
  if (it == args.end() || !it->is_array() || it->empty()) return "";
  std::string out;
  for (const json& h : *it) {
    if (!h.is_string()) throw std::invalid_argument(std::string(name) + " must be an array of strings");
    out += (out.empty() ? "" : ",") + percent_encode(h.get<std::string>());
  }
  return std::string("?") + name + "=" + out;
}

// "limit=…&cursor=…" from the arguments, after `before` (a query already begun, or "").
std::string page_query(const json& args, const std::string& before) {
  std::string query;
  if (auto l = args.find("limit"); l != args.end() && l->is_number_integer()) query += "limit=" + l->dump();
  if (auto c = args.find("cursor"); c != args.end() && c->is_string()) {
    query += (query.empty() ? "" : "&") + std::string("cursor=") + percent_encode(c->get<std::string>());
  }
  if (query.empty()) return "";
  return (before.empty() ? "?" : "&") + query;
}

std::string required_string(const json& args, const char* name) {
  auto it = args.find(name);
  if (it == args.end() || !it->is_string() || it->get<std::string>().empty()) {
    throw std::invalid_argument(std::string(name) + " (a non-empty string) is required");
  }
  return it->get<std::string>();
}

// The API call a tool makes, its answer as the tool's result.
json call_tool(const std::string& name, const json& args, const ApiCall& api) {
  std::string method = "GET", path, body, content_type, if_match;
  const std::string* with_body = nullptr;
  if (name == "list_groups") {
    path = "/api/v1/groups";
  } else if (name == "list_documents") {
    path = "/api/v1/groups/" + percent_encode(required_string(args, "group")) + "/documents";
    path += page_query(args, "");
  } else if (name == "read_document") {
    path = "/api/v1/documents/" + percent_encode(required_string(args, "id")) + heads_query(args, "heads");
  } else if (name == "list_changes") {
    const std::string since = heads_query(args, "since");
    path = "/api/v1/documents/" + percent_encode(required_string(args, "id")) + "/changes" + since + page_query(args, since);
  } else if (name == "create_document") {
    method = "POST";
    path = "/api/v1/groups/" + percent_encode(required_string(args, "group")) + "/documents";
    auto content = args.find("content");
    if (content == args.end() || !content->is_object()) throw std::invalid_argument("content (a JSON object) is required");
    body = content->dump();
    content_type = "application/json";
    with_body = &body;
  } else if (name == "patch_document") {
    method = "PATCH";
    path = "/api/v1/documents/" + percent_encode(required_string(args, "id"));
    auto patch = args.find("patch");
    if (patch == args.end() || !patch->is_array()) throw std::invalid_argument("patch (a JSON Patch array) is required");
    body = patch->dump();
    content_type = "application/json-patch+json";
    with_body = &body;
    if (auto m = args.find("ifMatch"); m != args.end() && m->is_string()) if_match = m->get<std::string>();
  } else {
    throw std::out_of_range(name);
  }
  const ApiAnswer answer = api(method, path, with_body, content_type, if_match);
  const bool ok = answer.status >= 200 && answer.status < 300;
  json result = {{"content", json::array({{{"type", "text"},
                                           {"text", ok ? answer.body
                                                       : "HTTP " + std::to_string(answer.status) + ": " + answer.body}}})},
                 {"isError", !ok}};
  if (ok) {
    json parsed = json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) result["structuredContent"] = std::move(parsed);
  }
  return result;
}

json rpc_error(const json& id, int code, std::string message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", std::move(message)}}}};
}

}  // namespace

std::optional<json> mcp_answer(const json& message, const ApiCall& api) {
  const bool v2 = message.is_object() && message.contains("jsonrpc") && message["jsonrpc"] == "2.0";
  if (!v2 || !message.contains("method") || !message["method"].is_string()) {
    // A response from the client (we never ask anything) or junk.
    if (message.is_object() && !message.contains("method") && message.contains("id")) return std::nullopt;
    return rpc_error(message.is_object() && message.contains("id") ? message["id"] : json(), -32600,
                     "not a JSON-RPC 2.0 request");
  }
  const std::string method = message["method"];
  if (!message.contains("id")) return std::nullopt;  // notifications: initialized, cancelled, …
  const json& id = message["id"];
  const json params = message.value("params", json::object());
  auto reply = [&](json result) { return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}}; };
  if (method == "initialize") {
    std::string version = kProtocolVersions[0];
    if (params.is_object() && params.contains("protocolVersion") && params["protocolVersion"].is_string()) {
      for (const char* v : kProtocolVersions) version = params["protocolVersion"] == v ? v : version;
    }
    return reply({{"protocolVersion", version},
                  {"capabilities", {{"tools", {{"listChanged", false}}}}},
                  {"serverInfo", {{"name", "groundmist-sync"}, {"version", GM_VERSION}}},
                  {"instructions",
                   "The owner's Automerge documents, grouped by app (lexicon NSID group). Read with list_groups, "
                   "list_documents and read_document; edit with patch_document (JSON Patch) and create_document. "
                   "Edits reach the owner's apps live."}});
  }
  if (method == "ping") return reply(json::object());
  if (method == "tools/list") return reply({{"tools", tools()}});
  if (method == "tools/call") {
    if (!params.is_object() || !params.contains("name") || !params["name"].is_string()) {
      return rpc_error(id, -32602, "tools/call needs a tool name");
    }
    const json args = params.value("arguments", json::object());
    try {
      return reply(call_tool(params["name"], args.is_object() ? args : json::object(), api));
    } catch (const std::out_of_range&) {
      return rpc_error(id, -32602, "no tool " + params["name"].get<std::string>());
    } catch (const std::invalid_argument& e) {
      return reply({{"content", json::array({{{"type", "text"}, {"text", e.what()}}})}, {"isError", true}});
    }
  }
  return rpc_error(id, -32601, "no method " + method);
}

void serve_mcp(std::istream& in, std::ostream& out, const ApiCall& api) {
  auto send = [&out](const json& m) {
    out << m.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    out.flush();
  };
  std::string line;
  bool too_long = false;
  for (int c; (c = in.get()) != std::char_traits<char>::eof();) {
    if (c != '\n') {
      // Past the limit the rest of the line is read and dropped, never kept.
      if (line.size() < kMaxLineBytes) {
        line += static_cast<char>(c);
      } else {
        too_long = true;
      }
      continue;
    }
    if (std::exchange(too_long, false)) {
      send(rpc_error(json(), -32600, "message longer than " + std::to_string(kMaxLineBytes) + " bytes"));
    } else if (line.find_first_not_of(" \t\r") != std::string::npos) {
      json message = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (message.is_discarded()) {
        send(rpc_error(json(), -32700, "not JSON"));
      } else {
        try {
          if (auto answer = mcp_answer(message, api)) send(*answer);
        } catch (const std::exception& e) {
          send(rpc_error(message.is_object() && message.contains("id") ? message["id"] : json(), -32603, e.what()));
        }
      }
    }
    line.clear();
  }
}

void add_mcp_command(CLI::App& app, McpOptions& opts) {
  CLI::App* cmd = app.add_subcommand("mcp", "Serve the JSON API to an AI assistant as MCP tools, on stdio");
  cmd->add_option("--url", opts.url, "The server, e.g. http://127.0.0.1:3031 (env GROUNDMIST_SYNC_URL)");
  cmd->add_option("--token", opts.token, "Session token (env GROUNDMIST_SYNC_TOKEN; `groundmist-sync token --scope …`)");
  cmd->callback([&opts] {
    // stdout carries the protocol: log lines, if any, go to stderr.
    spdlog::set_default_logger(spdlog::stderr_color_st("mcp"));
    auto from_env = [](std::string& value, const char* name) {
      if (const char* v = std::getenv(name); value.empty() && v) value = v;
    };
    from_env(opts.url, "GROUNDMIST_SYNC_URL");
    from_env(opts.token, "GROUNDMIST_SYNC_TOKEN");
    while (!opts.url.empty() && opts.url.back() == '/') opts.url.pop_back();
    if (opts.url.empty() || opts.token.empty()) {
      std::cerr << "groundmist-sync mcp: give --url and --token (or GROUNDMIST_SYNC_URL and GROUNDMIST_SYNC_TOKEN)\n";
      opts.exit_code = 2;
      return;
    }
    if (Status s = atproto::check_url(opts.url); !s.ok()) {
      std::cerr << "groundmist-sync mcp: --url: " << s.error().message << "\n";
      opts.exit_code = 2;
      return;
    }
    const ApiCall api = [&opts](const std::string& method, const std::string& path, const std::string* body,
                                const std::string& content_type, const std::string& if_match) {
      atproto::HttpOptions options;
      options.timeout = std::chrono::seconds(30);
      options.max_response_bytes = 64 << 20;
      options.headers = {"Authorization: Bearer " + opts.token, "Accept: application/json"};
      if (!if_match.empty()) options.headers.push_back("If-Match: " + if_match);
      auto r = atproto::http_request(method, opts.url + path, body, content_type, options);
      if (!r.ok()) return ApiAnswer{502, json{{"error", r.error().message}}.dump()};
      return ApiAnswer{r->status, r->body};
    };
    serve_mcp(std::cin, std::cout, api);
  });
}

}  // namespace gm::cli
