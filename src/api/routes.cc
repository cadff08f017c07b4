#include "api/routes.h"

#include <spdlog/spdlog.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>
#include <nlohmann/json.hpp>
#include <variant>

#include "api/access.h"
#include "api/author.h"
#include "api/events.h"
#include "api/openapi.h"
#include "api/repo_await.h"
#include "automerge/change.h"
#include "automerge/chunk.h"
#include "repo/document_id.h"
#include "server/url_query.h"
#include "storage/group_registry.h"
#include "util/base64url.h"
#include "util/hex.h"

namespace gm::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using automerge::ChangeHash;
using repo::GroupRepo;
using server::HttpRequest;
using server::HttpResponse;
using server::RequestInfo;

size_t json_nesting(std::string_view json) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

namespace {

// What a route answers: made on a worker (the JSON text too), sent from the io thread.
struct Answer {
  http::status status = http::status::internal_server_error;
  std::string body;
  std::string content_type = "application/json";
  std::string etag;
  bool set = false;
};

std::string dump(const nlohmann::json& j) {
  // Invalid UTF-8 (a key a client wrote) is replaced, never thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Answer json_answer(http::status status, const nlohmann::json& body) { return {status, dump(body), "application/json", "", true}; }
Answer error_answer(http::status status, const std::string& message) {
  return json_answer(status, {{"error", message}});
}

HttpResponse to_response(Answer a) {
  HttpResponse res = server::make_response(a.status, std::move(a.body), a.content_type);
  res.set(http::field::cache_control, "no-store");
  if (!a.etag.empty()) res.set(http::field::etag, a.etag);
  return res;
}

// RFC 9110 §13.1.2: a 200 whose ETag the client already holds (If-None-Match lists it,
// or is `*`) becomes a 304 without a body. The ETag is the heads: a tool polling a
// document gets the whole JSON only when it changed.
HttpResponse not_modified_if_seen(const HttpRequest& req, HttpResponse res) {
  const std::string_view seen = req[http::field::if_none_match];
  const std::string_view etag = res[http::field::etag];
  if (seen.empty() || etag.empty() || res.result() != http::status::ok) return res;
  // Every quoted string in the header is a tag (weak ones too: W/ is outside the
  // quotes); heads hold commas, so the list is not split at them.
  bool match = seen.find_first_not_of(" \t*") == std::string_view::npos && seen.find('*') != std::string_view::npos;
  for (size_t open = seen.find('"'); !match && open != std::string_view::npos;) {
    const size_t close = seen.find('"', open + 1);
    if (close == std::string_view::npos) break;
    match = seen.substr(open, close - open + 1) == etag;
    open = seen.find('"', close + 1);
  }
  if (!match) return res;
  HttpResponse not_modified = server::make_response(http::status::not_modified, "", "");
  not_modified.set(http::field::etag, etag);
  not_modified.set(http::field::cache_control, "no-store");
  return not_modified;
}

HttpResponse error_response(http::status status, const std::string& message) {
  return to_response(error_answer(status, message));
}

// How an error from the engine or the repo is answered.
http::status status_for(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalid: return http::status::bad_request;
    case ErrorCode::kNotFound: return http::status::not_found;
    case ErrorCode::kOverLimit: return http::status::payload_too_large;
    case ErrorCode::kFailedPrecondition: return http::status::conflict;
    case ErrorCode::kIo: return http::status::service_unavailable;
    case ErrorCode::kCorrupt: return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

// The answer a DocumentCall's work made, unless what followed it failed (its change
// could not be stored, the group could not be opened): then that.
HttpResponse respond(const Status& s, Answer& answer) {
  const bool refused = answer.set && answer.status >= http::status::bad_request;
  if (answer.set && s.ok() != refused) return to_response(std::move(answer));
  if (!s.ok()) return error_response(status_for(s.error()), s.error().message);
  return error_response(http::status::internal_server_error, "the document's job gave no answer");
}

std::vector<std::string> heads_hex(std::span<const ChangeHash> heads) {
  std::vector<std::string> out;
  for (const ChangeHash& h : heads) out.push_back(h.hex());
  return out;
}

// The ETag of a document: its heads, sorted, joined by commas, quoted.
std::string etag_of(std::span<const ChangeHash> heads) {
  std::string tag = "\"";
  for (const ChangeHash& h : heads) tag += (tag.size() > 1 ? "," : "") + h.hex();
  return tag + "\"";
}

// "h1,h2" (as in ?since=, ?heads=) or an ETag ("\"h1,h2\"") -> sorted hashes.
Result<std::vector<ChangeHash>> parse_heads(std::string_view text, size_t max) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  std::vector<ChangeHash> heads;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view one = text.substr(0, comma);
    if (heads.size() == max) return error("more than " + std::to_string(max) + " change hashes");
    auto h = ChangeHash::from_hex(one);
    if (!h || one.size() != 64) return error("\"" + std::string(one.substr(0, 80)) + "\" is not a change hash (64 hex digits)");
    heads.push_back(*h);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  std::sort(heads.begin(), heads.end());
  heads.erase(std::unique(heads.begin(), heads.end()), heads.end());
  return heads;
}

using CallWork = std::function<Result<std::optional<Bytes>>(GroupRepo::DocumentAccess&)>;

// Runs `work` as a DocumentCall on document `id` of `group` (opened if need be).
asio::awaitable<Status> call_document(repo::Repo& repo, const std::string& group, const std::string& id,
                                      const CallWork& work, bool heavy = false) {
  auto start = [&repo, group, id, work, heavy](std::function<void(Status)> done) {
    repo.with_group(group, [id, work, done, heavy](Result<GroupRepo*> g) {
      if (!g) return done(g.error());
      (*g)->call(id, {work, done, heavy});
    });
  };
  co_return co_await repo_callback<Status>(start);
}

struct Api {
  repo::Repo& repo;
  ClaimsVerifier verify;
  WriterId writer;
  ApiLimits limits;
  server::RequestLimiter limiter;
  std::shared_ptr<DocumentWatchers> watchers;  // GET .../events (api/events.h)
};

// A request let in: whose it is, how to ask again (an event stream does, at every
// heartbeat), and its place among the requests under way.
struct Caller {
  auth::SessionClaims claims;
  Access access;
  std::shared_ptr<const Authenticate> who;
  server::RequestLimiter::Ticket ticket;
};

// The JSON API's own way in: `Authorization: Bearer <session token>`.
Authenticate bearer_authenticate(ClaimsVerifier verify) {
  return [verify = std::move(verify)](const HttpRequest& req) -> Result<Who> {
    std::string_view authorization = req[http::field::authorization];
    constexpr std::string_view kBearer = "bearer ";
    if (authorization.size() <= kBearer.size() ||
        !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
      return error("no Authorization: Bearer <session token> (mint one with `groundmist-sync token`)");
    }
    Result<auth::SessionClaims> claims = verify(authorization.substr(kBearer.size()));
    if (!claims) return error("session token: " + claims.error().message);
    Access access = access_for(*claims);
    return Who{std::move(*claims), std::move(access)};
  };
}

std::variant<Caller, HttpResponse> admit(Api& api, const HttpRequest& req, const std::shared_ptr<const Authenticate>& who,
                                         bool bearer) {
  Result<Who> caller = (*who)(req);
  if (!caller) {
    HttpResponse res = error_response(http::status::unauthorized, caller.error().message);
    if (bearer) res.set(http::field::www_authenticate, "Bearer realm=\"groundmist-sync\"");
    return res;
  }
  if (req.body().size() > api.limits.max_body_bytes) {
    return error_response(http::status::payload_too_large,
                          "request body over " + std::to_string(api.limits.max_body_bytes) + " bytes");
  }
  std::optional<server::RequestLimiter::Ticket> ticket =
      api.limiter.admit(caller->claims.token_id, api.limits.max_in_flight_per_token);
  if (!ticket) {
    HttpResponse busy = error_response(http::status::service_unavailable, "busy, try again in a second");
    busy.set(http::field::retry_after, "1");
    return busy;
  }
  return Caller{std::move(caller->claims), std::move(caller->access), who, std::move(*ticket)};
}

std::string param(const RequestInfo& info, std::string_view name) {
  auto it = info.params.find(name);
  return it == info.params.end() ? std::string() : it->second;
}

// A query parameter, or an error answer for a malformed query.
Result<std::optional<std::string>> query(const HttpRequest& req, std::string_view name) {
  return server::query_param(server::split_target(req.target()).query, name);
}

bool content_type_is(const HttpRequest& req, std::initializer_list<std::string_view> types) {
  std::string_view type = req[http::field::content_type];
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  for (std::string_view t : types) {
    if (type.size() == t.size() && std::equal(t.begin(), t.end(), type.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      return true;
    }
  }
  return false;
}

std::string url_of(const std::string& id) { return "automerge:" + id; }

// The time of the latest of `heads` (seconds, as the change says), or none.
// Finds document `id` and runs `work` there with the group's name; an answer, or 404.
// The groups looked in: the one `?group=` names (it must be readable), else every
// readable group, the token's own first; a write (`for_write`) looks in the writable
// ones before the others, so a copy under the same id in a group the token may only
// read never hides the one it may write. The answer names the group it came from
// (header Groundmist-Group): an id is unique within a group only.
// `at_once`, if given, may answer from a group's repo on this thread without a turn on
// a worker (GroupRepo::kept_json_text); when it does not, `work` runs.
using FoundWork = std::function<Answer(GroupRepo::DocumentAccess&, const std::string& group, std::optional<Bytes>& change)>;
using AtOnce = std::function<std::optional<Answer>(GroupRepo&)>;
asio::awaitable<HttpResponse> on_document(Api& api, const Caller& caller, const HttpRequest& req, const std::string& id,
                                          const FoundWork& work, bool for_write = false, bool heavy = false,
                                          const AtOnce* at_once = nullptr) {
  if (Status s = repo::validate_document_id(id); !s) {
    co_return error_response(http::status::bad_request, "document id \"" + id.substr(0, 140) + "\": " + s.error().message);
  }
  auto pinned = query(req, "group");
  if (!pinned) co_return error_response(http::status::bad_request, pinned.error().message);
  std::vector<std::string> groups;
  if (*pinned) {
    if (Status s = storage::validate_group_name(**pinned); !s) {
      co_return error_response(http::status::bad_request, "group: " + s.error().message);
    }
    if (!caller.access.can_read(**pinned)) {
      co_return error_response(http::status::forbidden, "this token may not read " + **pinned);
    }
    groups.push_back(**pinned);
  } else {
    groups = caller.access.readable_groups(api.repo.groups());
    if (for_write) {
      std::stable_partition(groups.begin(), groups.end(), [&](const std::string& g) { return caller.access.can_write(g); });
    }
  }
  for (const std::string& group : groups) {
    if (GroupRepo* open = at_once ? api.repo.open_group(group) : nullptr) {
      if (std::optional<Answer> now = (*at_once)(*open)) {
        HttpResponse res = to_response(std::move(*now));
        res.set("Groundmist-Group", group);
        co_return res;
      }
    }
    auto answer = std::make_shared<Answer>();
    const CallWork call = [answer, work, group](GroupRepo::DocumentAccess& doc) -> Result<std::optional<Bytes>> {
      if (!doc.exists()) return error(ErrorCode::kNotFound, "not in this group");
      std::optional<Bytes> change;
      *answer = work(doc, group, change);
      if (answer->status >= http::status::bad_request) return error(answer->body);  // nothing is added
      return change;
    };
    Status s = co_await call_document(api.repo, group, id, call, heavy);
    if (!s.ok() && s.error().code == ErrorCode::kNotFound && !answer->set) continue;
    HttpResponse res = respond(s, *answer);
    res.set("Groundmist-Group", group);
    co_return res;
  }
  co_return error_response(http::status::not_found, "no document " + id + " in the groups this token may read");
}

// ---- Routes.

asio::awaitable<HttpResponse> list_groups(Api& api, const Caller& caller) {
  nlohmann::json groups = nlohmann::json::array();
  for (const std::string& group : caller.access.readable_groups(api.repo.groups())) {
    auto counts = std::make_shared<std::pair<Result<std::vector<std::string>>, Result<uint64_t>>>(
        error("not measured"), error("not measured"));
    const std::function<void(storage::DocumentStore&)> measure = [counts](storage::DocumentStore& store) {
      counts->first = store.list_document_ids();
      counts->second = store.document_bytes();
    };
    Status s = co_await with_store(api.repo, group, measure);
    if (!s) co_return error_response(status_for(s.error()), s.error().message);
    if (!counts->first) co_return error_response(http::status::service_unavailable, counts->first.error().message);
    if (!counts->second) co_return error_response(http::status::service_unavailable, counts->second.error().message);
    groups.push_back({{"group", group},
                      {"documents", counts->first->size()},
                      {"bytes", *counts->second},
                      {"write", caller.access.can_write(group)}});
  }
  co_return to_response(json_answer(http::status::ok, {{"groups", groups}}));
}

// A whole number query parameter from `least` to `most`; nullopt when absent.
Result<std::optional<size_t>> count_param(const HttpRequest& req, std::string_view name, size_t least, size_t most,
                                          const std::string& wrong) {
  auto text = query(req, name);
  if (!text) return text.error();
  if (!*text) return std::optional<size_t>();
  const std::string& t = **text;
  size_t n = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
  if (ec != std::errc() || end != t.data() + t.size() || n < least || n > most) return error(std::string(name) + ": " + wrong);
  return std::optional<size_t>(n);
}

asio::awaitable<HttpResponse> list_documents(Api& api, const Caller& caller, const HttpRequest& req,
                                             const RequestInfo& info) {
  const std::string group = param(info, "group");
  if (Status s = storage::validate_group_name(group); !s) co_return error_response(http::status::bad_request, s.error().message);
  if (!caller.access.can_read(group)) co_return error_response(http::status::forbidden, "this token may not read " + group);
  auto limit = count_param(req, "limit", 1, api.limits.max_page,
                           "a number from 1 to " + std::to_string(api.limits.max_page));
  if (!limit) co_return error_response(http::status::bad_request, limit.error().message);
  std::string after;
  auto cursor = query(req, "cursor");
  if (!cursor) co_return error_response(http::status::bad_request, cursor.error().message);
  if (*cursor && !(*cursor)->empty()) {
    auto decoded = base64url_decode(**cursor);
    if (decoded) after.assign(decoded->begin(), decoded->end());
    if (!decoded || !repo::validate_document_id(after)) {
      co_return error_response(http::status::bad_request, "cursor: not one this server gave");
    }
  }
  auto ids = std::make_shared<Result<std::vector<std::string>>>(error("not listed"));
  const std::function<void(storage::DocumentStore&)> list = [ids](storage::DocumentStore& store) {
    *ids = store.list_document_ids();
  };
  Status listed = co_await with_store(api.repo, group, list);
  if (!listed) co_return error_response(status_for(listed.error()), listed.error().message);
  if (!*ids) co_return error_response(http::status::service_unavailable, ids->error().message);
  auto first = std::upper_bound((*ids)->begin(), (*ids)->end(), after);
  std::vector<std::string> page(first, first + std::min<size_t>(limit->value_or(api.limits.default_page), (*ids)->end() - first));
  const bool more = static_cast<size_t>((*ids)->end() - first) > page.size();

  // Each document's summary, by its own call (in parallel, on its own slot).
  auto rows = std::make_shared<std::vector<nlohmann::json>>(page.size());
  auto summarize = [&api, &page, group, rows](std::function<void(bool)> all_done) {
    auto left = std::make_shared<size_t>(page.size());
    if (page.empty()) return all_done(true);
    for (size_t i = 0; i < page.size(); ++i) {
      const std::string id = page[i];
      api.repo.with_group(group, [i, id, rows, left, all_done](Result<GroupRepo*> g) {
        auto finished = [left, all_done](Status) {
          if (--*left == 0) all_done(true);
        };
        if (!g) return finished(g.error());
        (*g)->call(id, {[i, id, rows](GroupRepo::DocumentAccess& doc) -> Result<std::optional<Bytes>> {
                          if (!doc.exists()) return std::optional<Bytes>();  // removed meanwhile
                          const std::vector<ChangeHash> heads = doc.heads();
                          nlohmann::json row = {{"id", id}, {"url", url_of(id)}, {"heads", heads_hex(heads)},
                                                {"size", doc.bytes()}, {"time", nullptr}};
                          if (auto t = doc.last_change_time(); t && *t) row["time"] = **t;
                          (*rows)[i] = std::move(row);
                          return std::optional<Bytes>();
                        },
                        finished});
      });
    }
  };
  co_await repo_callback<bool>(summarize);
  nlohmann::json documents = nlohmann::json::array();
  for (auto& row : *rows) {
    if (!row.is_null()) documents.push_back(std::move(row));
  }
  nlohmann::json body = {{"group", group}, {"documents", std::move(documents)}, {"cursor", nullptr}};
  if (more && !page.empty()) body["cursor"] = base64url_encode(ByteView(reinterpret_cast<const uint8_t*>(page.back().data()), page.back().size()));
  co_return to_response(json_answer(http::status::ok, body));
}

asio::awaitable<HttpResponse> read_document(Api& api, const Caller& caller, const HttpRequest& req,
                                            const RequestInfo& info) {
  const bool saved = req[http::field::accept].find("application/octet-stream") != std::string_view::npos;
  auto heads_text = query(req, "heads");
  if (!heads_text) co_return error_response(http::status::bad_request, heads_text.error().message);
  std::optional<std::vector<ChangeHash>> at;
  if (*heads_text) {
    auto parsed = parse_heads(**heads_text, api.limits.max_heads);
    if (!parsed) co_return error_response(http::status::bad_request, "heads: " + parsed.error().message);
    if (!authoring_available()) co_return error_response(http::status::not_implemented, std::string(kAuthoringUnavailable));
    if (saved) {
      co_return error_response(http::status::not_acceptable,
                               "the saved document is only the current one: ?heads= answers JSON");
    }
    at = std::move(*parsed);
  }
  const std::string id = param(info, "id");
  const FoundWork work =
      [saved, at](GroupRepo::DocumentAccess& doc, const std::string&, std::optional<Bytes>&) -> Answer {
        auto document = doc.document();
        if (!document) return error_answer(http::status::internal_server_error, document.error().message);
        const automerge::Document& d = **document;
        if (saved) {
          Bytes bytes = d.save();
          return {http::status::ok, std::string(bytes.begin(), bytes.end()), "application/octet-stream",
                  etag_of(d.heads()), true};
        }
        if (at) {
          auto view = view_at(d, *at);
          if (!view) return error_answer(status_for(view.error()), "heads: " + view.error().message);
          Answer a = json_answer(http::status::ok, *view);
          a.etag = etag_of(*at);
          return a;
        }
        auto text = doc.json_text();
        if (!text) return error_answer(http::status::internal_server_error, text.error().message);
        return {http::status::ok, **text, "application/json", etag_of(d.heads()), true};
      };
  const bool heavy = at.has_value();  // a view at other heads is rebuilt from the history
  // The usual read, the current JSON of a document in use and unchanged since its last
  // read, is a copy of the kept text on this thread: no turn on a worker.
  const AtOnce kept = [id](GroupRepo& group) -> std::optional<Answer> {
    auto text = group.kept_json_text(id);
    if (!text) return std::nullopt;
    return Answer{http::status::ok, std::move(text->text), "application/json", etag_of(text->heads), true};
  };
  const bool current_json = !saved && !at;
  HttpResponse res =
      co_await on_document(api, caller, req, id, work, /*for_write=*/false, heavy, current_json ? &kept : nullptr);
  co_return not_modified_if_seen(req, std::move(res));
}

asio::awaitable<HttpResponse> list_changes(Api& api, const Caller& caller, const HttpRequest& req,
                                           const RequestInfo& info) {
  auto since_text = query(req, "since");
  if (!since_text) co_return error_response(http::status::bad_request, since_text.error().message);
  std::vector<ChangeHash> since;
  if (*since_text) {
    auto parsed = parse_heads(**since_text, api.limits.max_heads);
    if (!parsed) co_return error_response(http::status::bad_request, "since: " + parsed.error().message);
    since = std::move(*parsed);
  }
  // A page: `limit` changes from the `cursor`-th on. The changes after `since` are in the
  // order they were applied, and new ones only ever come after, so a position stays
  // valid while the document grows.
  auto limit_param = count_param(req, "limit", 1, api.limits.max_changes_page,
                                 "a number from 1 to " + std::to_string(api.limits.max_changes_page));
  if (!limit_param) co_return error_response(http::status::bad_request, limit_param.error().message);
  auto cursor = count_param(req, "cursor", 0, SIZE_MAX, "not one this server gave");
  if (!cursor) co_return error_response(http::status::bad_request, cursor.error().message);
  const size_t limit = limit_param->value_or(api.limits.max_changes_page), from = cursor->value_or(0);
  const std::string id = param(info, "id");
  const FoundWork work =
      [since, limit, from](GroupRepo::DocumentAccess& doc, const std::string&, std::optional<Bytes>&) -> Answer {
        auto graph = doc.graph();
        if (!graph) return error_answer(http::status::internal_server_error, graph.error().message);
        const automerge::ChangeGraph& g = **graph;
        for (const ChangeHash& h : since) {
          if (!g.has(h)) return error_answer(http::status::bad_request, "since: the document has no change " + h.hex());
        }
        const std::vector<automerge::ChangeGraph::Index> after = g.changes_since(since);
        const size_t first = std::min(from, after.size()), last = first + std::min(limit, after.size() - first);
        nlohmann::json changes = nlohmann::json::array();
        for (size_t k = first; k < last; ++k) {
          const automerge::ChangeGraph::Index i = after[k];
          size_t consumed = 0;
          auto chunk = automerge::parse_chunk(g.chunk(i), &consumed);
          if (!chunk) return error_answer(http::status::internal_server_error, chunk.error().message);
          auto header = automerge::decode_change_header(chunk->body);
          if (!header) return error_answer(http::status::internal_server_error, header.error().message);
          changes.push_back({{"hash", g.hash(i).hex()},
                             {"actor", to_hex(header->actor)},
                             {"seq", header->seq},
                             {"startOp", header->start_op},
                             {"time", header->time},
                             {"message", header->message.empty() ? nlohmann::json(nullptr) : nlohmann::json(header->message)},
                             {"deps", heads_hex(header->deps)}});
        }
        nlohmann::json body = {{"changes", std::move(changes)}, {"heads", heads_hex(g.heads())}, {"cursor", nullptr}};
        if (last < after.size()) body["cursor"] = std::to_string(last);
        Answer a = json_answer(http::status::ok, body);
        a.etag = etag_of(g.heads());
        return a;
      };
  co_return co_await on_document(api, caller, req, id, work, /*for_write=*/false, /*heavy=*/true);
}

// The checks a JSON body passes before it is parsed.
std::optional<HttpResponse> check_json_body(const Api& api, const HttpRequest& req,
                                            std::initializer_list<std::string_view> types) {
  if (!content_type_is(req, types)) {
    return error_response(http::status::unsupported_media_type,
                          "Content-Type must be " + std::string(*types.begin()));
  }
  if (json_nesting(req.body()) > api.limits.max_json_depth) {
    return error_response(http::status::bad_request,
                          "the JSON nests deeper than " + std::to_string(api.limits.max_json_depth) + " levels");
  }
  if (!authoring_available()) return error_response(http::status::not_implemented, std::string(kAuthoringUnavailable));
  return std::nullopt;
}

asio::awaitable<HttpResponse> create_document(Api& api, const Caller& caller, const HttpRequest& req,
                                              const RequestInfo& info) {
  const std::string group = param(info, "group");
  if (Status s = storage::validate_group_name(group); !s) co_return error_response(http::status::bad_request, s.error().message);
  if (!caller.access.can_write(group)) co_return error_response(http::status::forbidden, "this token may not write " + group);
  if (auto refused = check_json_body(api, req, {"application/json"})) co_return std::move(*refused);
  // Parsed on the worker, like a PATCH's body: up to a MiB of JSON is not io-thread work.
  auto text = std::make_shared<std::string>(req.body());
  const std::string id = repo::new_document_id();
  auto answer = std::make_shared<Answer>();
  const automerge::ActorId actor = api.writer(caller.claims);
  const CallWork create = [answer, text, id, actor](GroupRepo::DocumentAccess& doc) -> Result<std::optional<Bytes>> {
        const nlohmann::json parsed = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
        const nlohmann::json* body = &parsed;
        if (parsed.is_discarded() || !parsed.is_object()) {
          *answer = error_answer(http::status::bad_request, parsed.is_discarded()
                                                                ? "the body is not JSON"
                                                                : "the body must be a JSON object (the document's root)");
          return error(answer->body);
        }
        if (doc.exists()) return error("a new document id is taken (try again)");
        GM_ASSIGN_OR_RETURN(automerge::Document * d, doc.document());
        auto change = author_create(*d, *body, actor, auth::unix_now());
        if (!change) {
          *answer = error_answer(status_for(change.error()), change.error().message);
          return change.error();
        }
        if (!*change) {
          *answer = error_answer(http::status::bad_request, "an empty object makes no change: give the document a value");
          return error(answer->body);
        }
        *answer = json_answer(http::status::created, {{"id", id}, {"url", url_of(id)}, {"heads", heads_hex(d->heads())}});
        answer->etag = etag_of(d->heads());
        return change;
      };
  Status s = co_await call_document(api.repo, group, id, create);
  HttpResponse res = respond(s, *answer);
  if (res.result() == http::status::created) res.set(http::field::location, "/api/v1/documents/" + id);
  co_return res;
}

asio::awaitable<HttpResponse> patch_document(Api& api, const Caller& caller, const HttpRequest& req,
                                             const RequestInfo& info) {
  if (auto refused = check_json_body(api, req, {"application/json-patch+json", "application/json"})) {
    co_return std::move(*refused);
  }
  std::optional<std::vector<ChangeHash>> if_match;
  if (std::string_view m = req[http::field::if_match]; !m.empty() && m != "*") {
    auto parsed = parse_heads(m, api.limits.max_heads);
    if (!parsed) co_return error_response(http::status::bad_request, "If-Match: " + parsed.error().message);
    if_match = std::move(*parsed);
  }
  const std::string id = param(info, "id");
  auto patch = std::make_shared<std::string>(req.body());
  const automerge::ActorId actor = api.writer(caller.claims);
  const Access access = caller.access;
  const FoundWork work =
      [patch, if_match, actor, access, id](GroupRepo::DocumentAccess& doc, const std::string& group,
                                           std::optional<Bytes>& change) -> Answer {
        if (!access.can_write(group)) return error_answer(http::status::forbidden, "this token may not write " + group);
        if (if_match && *if_match != doc.heads()) {
          return error_answer(http::status::precondition_failed, "the document's heads are not those of If-Match");
        }
        auto document = doc.document();
        if (!document) return error_answer(http::status::internal_server_error, document.error().message);
        auto authored = author_patch(**document, *patch, actor, auth::unix_now());
        if (!authored) return error_answer(status_for(authored.error()), authored.error().message);
        change = std::move(*authored);
        Answer a = json_answer(http::status::ok, {{"id", id}, {"url", url_of(id)}, {"heads", heads_hex((*document)->heads())}});
        a.etag = etag_of((*document)->heads());
        return a;
      };
  co_return co_await on_document(api, caller, req, id, work, /*for_write=*/true);
}

// GET /api/v1/documents/{id}/events (api/events.h): found like a read, answered with
// the snapshot event, then followed by api.watchers.
asio::awaitable<HttpResponse> watch_document(Api& api, const Caller& caller, const HttpRequest& req,
                                             const RequestInfo& info) {
  if (!info.event_stream) co_return error_response(http::status::not_implemented, "no event streams here");
  auto place = api.watchers->admit(caller.claims.token_id);
  if (auto* refused = std::get_if<std::string>(&place)) {
    if (*refused == "token") {
      co_return error_response(http::status::too_many_requests,
                               "this token has " + std::to_string(api.limits.max_event_streams_per_token) +
                                   " event streams open (the limit)");
    }
    HttpResponse busy = error_response(http::status::service_unavailable, "too many event streams open; try again later");
    busy.set(http::field::retry_after, "5");
    co_return busy;
  }
  // A reconnect that says it has seen the current heads gets no snapshot.
  const std::string last_event_id(req["Last-Event-ID"].substr(0, 64 * 65));
  struct First {
    WatchedView state;
    std::string snapshot;  // the event, unless the client has this view already
    std::string group;
  };
  auto first = std::make_shared<First>();
  const std::string id = param(info, "id");
  const FoundWork work = [first, last_event_id](GroupRepo::DocumentAccess& doc, const std::string& group,
                                                std::optional<Bytes>&) -> Answer {
    first->group = group;
    first->state.heads = doc.heads();
    auto document = doc.document();
    if (!document) return error_answer(http::status::internal_server_error, document.error().message);
    auto view = std::make_shared<const nlohmann::json>((*document)->to_json());
    if (last_event_id.empty() || last_event_id != heads_id(first->state.heads)) {
      first->snapshot = snapshot_event(first->state.heads, dump(*view));
    }
    first->state.view = std::move(view);
    return {http::status::ok, "", "text/event-stream", "", true};
  };
  HttpResponse res = co_await on_document(api, caller, req, id, work, /*for_write=*/false, /*heavy=*/false);
  if (res.result() != http::status::ok || req.method() == http::verb::head) co_return res;
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Accel-Buffering", "no");  // a proxy (nginx) passes events on as they come
  auto out = std::make_shared<server::EventStream>();
  if (caller.claims.expires_at > 0) {
    const auto left = std::chrono::seconds(std::max<int64_t>(0, caller.claims.expires_at - auth::unix_now()));
    out->set_deadline(server::EventStream::Clock::now() + left);
  }
  if (!first->snapshot.empty()) out->send(std::move(first->snapshot));
  // The token is checked again at every heartbeat: revoked, or its grant withdrawn, the
  // stream ends.
  HttpRequest credentials;  // the request's headers only: asked again at each heartbeat
  credentials.base() = req.base();
  auto still_allowed = [who = caller.who, credentials = std::move(credentials), group = first->group] {
    Result<Who> again = (*who)(credentials);
    return again.ok() && again->access.can_read(group);
  };
  api.watchers->watch(first->group, id, out, std::move(first->state),
                      std::move(std::get<server::RequestLimiter::Ticket>(place)), std::move(still_allowed));
  *info.event_stream = std::move(out);
  co_return res;
}

using Route = asio::awaitable<HttpResponse> (*)(Api&, const Caller&, const HttpRequest&, const RequestInfo&);

server::RouteHandler handler(std::shared_ptr<Api> api, Route route, std::shared_ptr<const Authenticate> who,
                             bool bearer = true) {
  return [api, route, who, bearer](const HttpRequest& req, const RequestInfo& info) -> asio::awaitable<HttpResponse> {
    auto caller = admit(*api, req, who, bearer);
    if (auto* refused = std::get_if<HttpResponse>(&caller)) co_return std::move(*refused);
    co_return co_await route(*api, std::get<Caller>(caller), req, info);
  };
}

asio::awaitable<HttpResponse> list_groups_route(Api& api, const Caller& caller, const HttpRequest&,
                                                const RequestInfo&) {
  co_return co_await list_groups(api, caller);
}

}  // namespace

std::function<void()> add_api_routes(server::HttpRouter& router, repo::Repo& repo, ClaimsVerifier verify,
                                     WriterId writer, ApiLimits limits, std::vector<ReadMount> read_mounts) {
  const size_t total = limits.max_in_flight;
  auto api = std::make_shared<Api>(Api{repo, std::move(verify), std::move(writer), limits, server::RequestLimiter(total)});
  api->watchers =
      std::make_shared<DocumentWatchers>(repo, limits.max_event_streams, limits.max_event_streams_per_token);
  repo.add_change_listener([watchers = std::weak_ptr<DocumentWatchers>(api->watchers)](
                               const std::string& group, const std::string& id) {
    if (auto w = watchers.lock()) w->changed(group, id);
  });
  // Public: the description says nothing about the owner's data.
  router.add(http::verb::get, "/api/v1/openapi.json",
             [](const HttpRequest&, const RequestInfo&) -> asio::awaitable<HttpResponse> {
               co_return server::make_response(http::status::ok, dump(openapi_description()), "application/json");
             },
             true);
  auto bearer = std::make_shared<const Authenticate>(bearer_authenticate(api->verify));
  router.add(http::verb::get, "/api/v1/groups", handler(api, list_groups_route, bearer), true);
  router.add(http::verb::get, "/api/v1/groups/{group}/documents", handler(api, list_documents, bearer), true);
  router.add(http::verb::post, "/api/v1/groups/{group}/documents", handler(api, create_document, bearer), true);
  router.add(http::verb::get, "/api/v1/documents/{id}", handler(api, read_document, bearer), true);
  router.add(http::verb::patch, "/api/v1/documents/{id}", handler(api, patch_document, bearer), true);
  router.add(http::verb::get, "/api/v1/documents/{id}/changes", handler(api, list_changes, bearer), true);
  router.add(http::verb::get, "/api/v1/documents/{id}/events", handler(api, watch_document, bearer), true);
  // Other ways in (the console): the read routes only, same-origin only.
  for (ReadMount& mount : read_mounts) {
    auto who = std::make_shared<const Authenticate>(std::move(mount.authenticate));
    router.add(http::verb::get, mount.prefix + "/groups", handler(api, list_groups_route, who, false));
    router.add(http::verb::get, mount.prefix + "/groups/{group}/documents", handler(api, list_documents, who, false));
    router.add(http::verb::get, mount.prefix + "/documents/{id}", handler(api, read_document, who, false));
    router.add(http::verb::get, mount.prefix + "/documents/{id}/changes", handler(api, list_changes, who, false));
    router.add(http::verb::get, mount.prefix + "/documents/{id}/events", handler(api, watch_document, who, false));
  }
  return [watchers = std::weak_ptr<DocumentWatchers>(api->watchers)] {
    if (auto w = watchers.lock()) w->recheck();
  };
}

}  // namespace gm::api
