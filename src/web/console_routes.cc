#include "web/console_routes.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "api/repo_await.h"
#include "auth/authenticator.h"
#include "server/client_address.h"
#include "server/event_stream.h"
#include "server/url_query.h"
#include "storage/group_registry.h"
#include "util/hex.h"
#include "util/sha256.h"
#include "web/assets.h"
#include "web/console_session.h"

namespace gm::web {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using nlohmann::json;
using server::HttpRequest;
using server::HttpResponse;
using server::RequestInfo;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
constexpr size_t kMaxActivity = 100;
constexpr size_t kMaxBody = 64 << 10;
constexpr auto kTick = std::chrono::seconds(1);
constexpr auto kFiguresEvery = std::chrono::seconds(5);    // a changing group's counts, at most
constexpr auto kChangeCoalesce = std::chrono::seconds(10);  // one activity line per document
constexpr size_t kMaxCoalesced = 10'000;
constexpr size_t kMaxLastSeen = 10'000;
constexpr auto kWatchedFor = std::chrono::seconds(60);  // after an overview, without a stream

// Every answer under /console (HttpRouter::decorate): no script, style or frame from
// anywhere but here, nothing sniffed, no Referer leaving the console.
void secure(HttpResponse& res) {
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  res.set("Cross-Origin-Opener-Policy", "same-origin");
  res.set("Cross-Origin-Resource-Policy", "same-origin");
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse json_response(http::status status, const json& body) {
  HttpResponse res = server::make_response(status, dump(body) + "\n", "application/json");
  res.set(http::field::cache_control, "no-store");
  return res;
}
HttpResponse error_json(http::status status, const std::string& message) {
  return json_response(status, {{"error", message}});
}
HttpResponse ok_json() { return json_response(http::status::ok, {{"ok", true}}); }

json iso_or_null(std::optional<int64_t> t) { return t ? json(auth::iso8601_utc(*t)) : json(nullptr); }
json text_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

std::string param(const RequestInfo& info, std::string_view name) {
  auto it = info.params.find(name);
  return it == info.params.end() ? std::string() : it->second;
}

std::string_view content_type_of(std::string_view name) {
  const std::string_view ext = name.substr(std::min(name.size(), name.rfind('.')));
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".json" || ext == ".webmanifest") return "application/json";
  if (ext == ".woff2") return "font/woff2";
  return "application/octet-stream";
}

bool plausible_asset_name(std::string_view name) {
  if (name.empty() || name.size() > 100 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

struct Activity {
  int64_t at = 0;
  std::string kind;   // connect, disconnect, change, session, console, device, grant
  std::string group;  // or ""
  std::string text;
};

// A group's document count and bytes, from a walk of its folder on the slow lane.
struct Figures {
  std::optional<size_t> documents;
  std::optional<uint64_t> bytes;
  bool dirty = true;  // changed since the last walk
  bool walking = false;
  Clock::time_point walked{};
  Clock::duration took{};  // the last walk's time: a large group is walked less often
};

// What the database says, as a worker read it.
struct Snapshot {
  size_t pending_devices = 0, pending_grants = 0;
  std::map<std::string, std::string> roots;
  std::vector<Activity> news;  // sessions, devices, grant requests new since the last look
};

struct Stream {
  std::weak_ptr<server::EventStream> stream;
  std::string session_id;
  int64_t issued_at = 0;
};

}  // namespace

struct Console::State : std::enable_shared_from_this<State> {
  State(ConsoleOptions o, server::Server& srv, repo::Repo& r, auth::StateStore& s, auth::RevocationWatcher& rv,
        asio::thread_pool& w, const auth::TokenKey& app_key)
      : options(std::move(o)),
        server(srv),
        repo(r),
        store(s),
        revocations(rv),
        workers(w),
        key(app_key.derive(kConsoleKeyPurpose)),
        started_at(auth::unix_now()),
        limiter(options.max_requests),
        login_limiter(8) {}

  const ConsoleOptions options;
  server::Server& server;
  repo::Repo& repo;
  auth::StateStore& store;
  auth::RevocationWatcher& revocations;
  asio::thread_pool& workers;
  const auth::TokenKey key;
  const int64_t started_at;
  server::RequestLimiter limiter;
  server::RequestLimiter login_limiter;
  server::HttpRouter* router = nullptr;

  // ---- The live state, on the io thread.
  std::deque<Activity> activity;  // newest first
  std::map<std::string, Figures> figures;
  Snapshot database;
  uint64_t overview_version = 1, sent_overview = 0;
  uint64_t access_version = 1, sent_access = 0;
  std::map<std::pair<std::string, std::string>, size_t> sockets;  // (session, group) → open WebSockets
  std::map<std::string, int64_t> last_seen;                        // session → when it last had a socket
  std::map<std::string, Clock::time_point> coalesced;             // "group/id" → its last activity line
  std::vector<Stream> streams;
  Clock::time_point wanted{};  // the last overview asked for
  std::map<std::string, std::string> etags;  // of the compiled-in assets, made once
  bool looking = false;   // a worker is reading the database
  bool look_again = false;

  // ---- The worker's, one look at a time (handed over through posts).
  std::optional<auth::StateStore::Fingerprint> fingerprint;
  std::set<std::string> known_sessions, known_devices, known_grants;
  bool first_look = true;

  void add_activity(std::string kind, std::string group, std::string text) {
    activity.push_front({auth::unix_now(), std::move(kind), std::move(group), std::move(text)});
    if (activity.size() > kMaxActivity) activity.pop_back();
    ++overview_version;
  }

  // A new console session for the browser of `req`: recorded, and its Set-Cookie value.
  // Blocks on the state database (a worker).
  Result<std::string> open_session(const HttpRequest& req, const RequestInfo& info) const;
  std::vector<std::string> origins(const HttpRequest& req, const RequestInfo& info) const {
    return console_origins(req, info, options.public_host, options.trust_proxy);
  }
  // Whether anyone is looking: the folder walks behind the figures run only then.
  bool watched() const { return !streams.empty() || Clock::now() - wanted < kWatchedFor; }

  void tick();
  void diff_sockets();
  void walk(const std::string& group);
  void look();
  Snapshot read_database(bool* changed);
  void publish();
  json overview() const;
  std::string access_event() const { return "event: access\ndata: " + dump({{"version", access_version}}) + "\n\n"; }
};

Result<std::string> Console::State::open_session(const HttpRequest& req, const RequestInfo& info) const {
  const int64_t now = auth::unix_now();
  auth::SessionClaims claims = auth::new_session_claims(std::string(kConsoleGroupClaim), kConsoleSessionSeconds, now);
  if (!options.owner_did.empty()) claims.owner_did = options.owner_did;
  const std::string token = auth::mint_session_token(key, claims);
  GM_ASSIGN_OR_RETURN(auth::SessionClaims minted, auth::verify_session_token(key, token, now));
  auth::SessionRecord record;
  record.id = minted.token_id;
  record.subject = options.owner_did;
  record.kind = std::string(kConsoleSessionKind);
  record.created_at = minted.issued_at;
  record.expires_at = minted.expires_at;
  record.origin = std::string(req[http::field::origin].substr(0, 200));
  record.user_agent = std::string(req[http::field::user_agent].substr(0, 300));
  record.address = server::client_address(req, info, options.trust_proxy);
  GM_TRY(store.add_session(record));
  // Known to the revocation state at once (its allow-list of console sessions), not
  // at the watcher's next look: the page's next request carries the cookie.
  GM_TRY(revocations.load());
  return session_cookie(token, kConsoleSessionSeconds, request_is_secure(req, info, options.trust_proxy));
}

// ---- The live state.

void Console::State::tick() {
  diff_sockets();
  const auto now = Clock::now();
  // A change only marks its group; the walk waits until someone looks (and a closed
  // group is opened for it only then).
  if (watched()) {
    for (const std::string& group : repo.groups()) {
      Figures& f = figures[group];
      if (f.dirty && !f.walking && now - f.walked >= std::max<Clock::duration>(kFiguresEvery, 20 * f.took)) walk(group);
    }
  }
  std::erase_if(coalesced, [now](const auto& entry) { return now - entry.second > kChangeCoalesce; });
  look();
  publish();
  // The wait owns its timer, so nothing outlives the io_context that it needs.
  auto timer = std::make_shared<asio::steady_timer>(server.executor(), kTick);
  timer->async_wait([weak = weak_from_this(), timer](boost::system::error_code ec) {
    if (auto self = weak.lock(); self && !ec) self->tick();
  });
}

void Console::State::diff_sockets() {
  std::map<std::pair<std::string, std::string>, size_t> open;
  for (const server::PeerIdentity& peer : server.open_websockets()) ++open[{peer.session_id, peer.group}];
  const int64_t now = auth::unix_now();
  for (const auto& [key, count] : open) {
    last_seen[key.first] = now;
    auto before = sockets.find(key);
    const size_t was = before == sockets.end() ? 0 : before->second;
    if (count > was) add_activity("connect", key.second, "an app connected (session " + key.first.substr(0, 8) + ")");
  }
  for (const auto& [key, count] : sockets) {
    auto after = open.find(key);
    const size_t is = after == open.end() ? 0 : after->second;
    if (is < count) add_activity("disconnect", key.second, "an app disconnected (session " + key.first.substr(0, 8) + ")");
  }
  if (open.size() != sockets.size() || !std::equal(open.begin(), open.end(), sockets.begin())) ++overview_version;
  sockets = std::move(open);
  while (last_seen.size() > kMaxLastSeen) {
    auto oldest = std::min_element(last_seen.begin(), last_seen.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    last_seen.erase(oldest);
  }
}

void Console::State::walk(const std::string& group) {
  Figures& f = figures[group];
  f.walking = true;
  f.dirty = false;  // a change during the walk marks it again
  auto counted = std::make_shared<std::pair<std::optional<size_t>, std::optional<uint64_t>>>();
  const auto began = Clock::now();
  repo.with_group(group, [self = shared_from_this(), group, counted, began](Result<repo::GroupRepo*> g) {
    auto done = [self, group, counted, began] {
      Figures& f = self->figures[group];
      f.walking = false;
      f.walked = Clock::now();
      f.took = f.walked - began;
      if (counted->first && (f.documents != counted->first || f.bytes != counted->second)) {
        f.documents = counted->first;
        f.bytes = counted->second;
        ++self->overview_version;
      }
    };
    if (!g) return done();
    (*g)->with_store(
        [counted](storage::DocumentStore& store) {
          auto ids = store.list_document_ids();
          auto bytes = store.document_bytes();
          if (ids && bytes) *counted = {ids->size(), *bytes};
        },
        done);
  });
}

// Asks a worker whether the database moved, and what is new in it if so.
void Console::State::look() {
  if (looking) {
    look_again = true;
    return;
  }
  looking = true;
  look_again = false;
  asio::post(workers, [self = shared_from_this()] {
    bool changed = false;
    Snapshot fresh = self->read_database(&changed);
    asio::post(self->server.executor(), [self, changed, fresh = std::move(fresh)]() mutable {
      self->looking = false;
      if (changed) {
        for (Activity& a : fresh.news) self->add_activity(std::move(a.kind), std::move(a.group), std::move(a.text));
        fresh.news.clear();
        self->database = std::move(fresh);
        ++self->access_version;
        ++self->overview_version;
      }
      if (self->look_again) self->look();
    });
  });
}

// On a worker.
Snapshot Console::State::read_database(bool* changed) {
  Snapshot s;
  auto print = store.fingerprint();
  if (!print || (fingerprint && *fingerprint == *print)) return s;
  const int64_t now = auth::unix_now();
  auto sessions = store.list_sessions(now, false);
  auto devices = store.list_devices();
  auto grants = store.list_grants();
  auto roots = store.root_docs();
  if (!sessions || !devices || !grants || !roots) {
    spdlog::warn("console: cannot read the state database: {}",
                 !sessions ? sessions.error().message
                 : !devices ? devices.error().message
                 : !grants  ? grants.error().message
                            : roots.error().message);
    return s;
  }
  fingerprint = *print;
  *changed = true;
  s.roots = std::move(*roots);
  std::set<std::string> session_ids, device_codes, grant_ids;
  for (const auth::SessionRecord& r : *sessions) {
    session_ids.insert(r.id);
    if (first_look || known_sessions.count(r.id)) continue;
    if (r.kind == kConsoleSessionKind) {
      s.news.push_back({r.created_at, "console", "", "console log-in from " + r.address});
    } else {
      s.news.push_back({r.created_at, "session", r.group,
                        "session " + r.id.substr(0, 8) + " (" + r.kind + ") for " +
                            (r.origin.empty() ? std::string("a local token") : r.origin)});
    }
  }
  for (const auth::DeviceRecord& d : *devices) {
    if (d.status != auth::DeviceStatus::pending) continue;
    ++s.pending_devices;
    device_codes.insert(d.code);
    if (!first_look && !known_devices.count(d.code)) {
      s.news.push_back({d.created_at, "device", d.group,
                        "device " + d.code + " asks to sync" + (d.origin.empty() ? "" : " from " + d.origin)});
    }
  }
  for (const auth::GrantRecord& g : *grants) {
    if (g.status != auth::GrantStatus::pending) continue;
    ++s.pending_grants;
    grant_ids.insert(g.id);
    if (!first_look && !known_grants.count(g.id)) {
      std::string scopes;
      for (const auth::Scope& scope : g.scopes) scopes += (scopes.empty() ? "" : " ") + auth::to_string(scope);
      s.news.push_back({g.created_at, "grant", "", g.subject + " asks for " + scopes});
    }
  }
  known_sessions = std::move(session_ids);
  known_devices = std::move(device_codes);
  known_grants = std::move(grant_ids);
  first_look = false;
  return s;
}

json Console::State::overview() const {
  std::map<std::string, size_t> per_group;
  size_t connections = 0;
  for (const auto& [key, count] : sockets) {
    per_group[key.second] += count;
    connections += count;
  }
  json groups = json::array();
  for (const std::string& group : repo.groups()) {
    auto f = figures.find(group);
    auto root = database.roots.find(group);
    auto open = per_group.find(group);
    groups.push_back({{"group", group},
                      {"documents", f != figures.end() && f->second.documents ? json(*f->second.documents) : json(nullptr)},
                      {"bytes", f != figures.end() && f->second.bytes ? json(*f->second.bytes) : json(nullptr)},
                      {"connections", open == per_group.end() ? 0 : open->second},
                      {"rootDocUrl", root == database.roots.end() ? json(nullptr) : json(root->second)}});
  }
  json recent = json::array();
  for (const Activity& a : activity) {
    recent.push_back({{"at", auth::iso8601_utc(a.at)}, {"kind", a.kind}, {"group", text_or_null(a.group)}, {"text", a.text}});
  }
  return {{"version", options.version},
          {"startedAt", auth::iso8601_utc(started_at)},
          {"uptimeSeconds", auth::unix_now() - started_at},
          {"owner", text_or_null(options.owner_did)},
          {"publicHost", text_or_null(options.public_host)},
          {"connections", connections},
          {"groups", std::move(groups)},
          {"pending", {{"devices", database.pending_devices}, {"grants", database.pending_grants}}},
          {"activity", std::move(recent)}};
}

// Sends what changed to every open event stream.
void Console::State::publish() {
  std::erase_if(streams, [](const Stream& s) {
    auto stream = s.stream.lock();
    return !stream || stream->ended();
  });
  if (streams.empty()) {
    sent_overview = overview_version;
    sent_access = access_version;
    return;
  }
  std::string events;
  if (sent_overview != overview_version) events += "event: overview\ndata: " + dump(overview()) + "\n\n";
  if (sent_access != access_version) events += access_event();
  sent_overview = overview_version;
  sent_access = access_version;
  if (events.empty()) return;
  for (const Stream& s : streams) {
    if (auto stream = s.stream.lock()) stream->send(events);
  }
}

// ---- Routes.

namespace {

using State = Console::State;

// A console request let in: its session and its place among the requests under way.
struct Session {
  auth::SessionClaims claims;
  server::RequestLimiter::Ticket ticket;
};
using Route = asio::awaitable<HttpResponse> (*)(State&, const Session&, const HttpRequest&, const RequestInfo&);

bool csrf_matches(const HttpRequest& req, const std::string& expected) {
  const std::string_view sent = req[kCsrfHeader];
  return sent.size() == expected.size() && CRYPTO_memcmp(sent.data(), expected.data(), sent.size()) == 0;
}

// A route for a logged-in console; `changes`: it changes something (CSRF checks).
server::RouteHandler console_route(std::shared_ptr<State> st, Route route, bool changes) {
  return [st, route, changes](const HttpRequest& req, const RequestInfo& info) -> asio::awaitable<HttpResponse> {
    Result<auth::SessionClaims> claims = console_claims(req, st->key, *st->revocations.current());
    if (!claims) co_return error_json(http::status::unauthorized, claims.error().message);
    if (changes) {
      if (auto why = cross_site_refusal(req, st->origins(req, info))) {
        co_return error_json(http::status::forbidden, "refused: " + *why);
      }
      if (!csrf_matches(req, csrf_token(st->key, claims->token_id))) {
        co_return error_json(http::status::forbidden, "refused: no or a wrong X-CSRF-Token (reload the page)");
      }
    }
    if (req.body().size() > kMaxBody) co_return error_json(http::status::payload_too_large, "body too large");
    std::optional<server::RequestLimiter::Ticket> ticket =
        st->limiter.admit(claims->token_id, st->options.max_requests_per_session);
    if (!ticket) {
      HttpResponse busy = error_json(http::status::service_unavailable, "busy, try again in a second");
      busy.set(http::field::retry_after, "1");
      co_return busy;
    }
    const Session session{std::move(*claims), std::move(*ticket)};
    co_return co_await route(*st, session, req, info);
  };
}

// Runs `work` (returning T) on a worker, and resumes on the io thread with its value.
template <class T>
asio::awaitable<T> on_worker(State& st, const std::function<T()>& work) {
  auto start = [&st, work](std::function<void(T)> done) { asio::post(st.workers, [work, done] { done(work()); }); };
  co_return co_await api::repo_callback<T>(start);
}

// The state database answered; after a change, sockets and streams are checked again at
// once, and the pages told.
HttpResponse after_change(State& st, const Result<bool>& done, const std::string& what) {
  if (!done) return error_json(http::status::conflict, done.error().message);
  if (!*done) return error_json(http::status::not_found, "no " + what);
  st.revocations.poke();
  st.look();
  return ok_json();
}

// ---- Pages.

// A page or asset: the compiled-in copy, or the one in pages_dir.
std::optional<std::string> asset_bytes(const State& st, std::string_view name) {
  if (st.options.pages_dir) {
    std::ifstream in(*st.options.pages_dir / std::string(name), std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }
  for (const Asset& a : console_assets()) {
    if (a.name == name) return std::string(a.bytes);
  }
  return std::nullopt;
}

HttpResponse asset_response(State& st, const HttpRequest& req, std::string_view name) {
  std::optional<std::string> bytes = plausible_asset_name(name) ? asset_bytes(st, name) : std::nullopt;
  if (!bytes) {
    HttpResponse missing = server::make_response(
        http::status::not_found,
        name == "index.html" ? "the console's pages are not in this build\n" : "no such console file\n",
        "text/plain; charset=utf-8");
    return missing;
  }
  // Revalidated on each load (a new server version brings new pages), sent again only
  // when they changed.
  std::string etag;
  if (auto known = st.etags.find(std::string(name)); known != st.etags.end() && !st.options.pages_dir) {
    etag = known->second;
  } else {
    etag = "\"" + to_hex(sha256(as_bytes(*bytes))).substr(0, 32) + "\"";
    if (!st.options.pages_dir) st.etags[std::string(name)] = etag;  // the compiled-in ones never change
  }
  HttpResponse res = req[http::field::if_none_match] == etag
                         ? server::make_response(http::status::not_modified, "", "")
                         : server::make_response(http::status::ok, std::move(*bytes), content_type_of(name));
  res.set(http::field::etag, etag);
  res.set(http::field::cache_control, "no-cache");
  return res;
}

// ---- Log-in and the session.

asio::awaitable<HttpResponse> login(State& state, const HttpRequest& req, const RequestInfo& info) {
  State* st = &state;
  if (auto why = cross_site_refusal(req, st->origins(req, info))) {
    co_return error_json(http::status::forbidden, "refused: " + *why);
  }
  if (req.body().size() > 1024) co_return error_json(http::status::payload_too_large, "body too large");
  json body = json::parse(req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("code") || !body["code"].is_string()) {
    co_return error_json(http::status::bad_request, "expected {\"code\": \"<the code from console-link>\"}");
  }
  const std::string code = body["code"];
  if (!plausible_link_code(code)) {
    co_return error_json(http::status::unauthorized, "this is not a console link's code: run `groundmist-sync console-link`");
  }
  std::optional<server::RequestLimiter::Ticket> ticket =
      st->login_limiter.admit(server::client_address(req, info, st->options.trust_proxy), 2);
  if (!ticket) {
    HttpResponse busy = error_json(http::status::service_unavailable, "busy, try again in a second");
    busy.set(http::field::retry_after, "1");
    co_return busy;
  }
  const std::function<Result<std::string>()> work = [&st = *st, code, req_headers = server::HttpRequest(req.base()),
                                                     info]() -> Result<std::string> {
    GM_ASSIGN_OR_RETURN(bool taken, st.store.take_console_link(link_code_hash(code), auth::unix_now()));
    if (!taken) {
      return error("this console link is unknown, already used or expired: run `groundmist-sync console-link` for a new one");
    }
    return st.open_session(req_headers, info);
  };
  Result<std::string> cookie = co_await on_worker<Result<std::string>>(*st, work);
  if (!cookie) co_return error_json(http::status::unauthorized, cookie.error().message);
  spdlog::info("console: logged in by a link from {}", server::client_address(req, info, st->options.trust_proxy));
  st->look();
  HttpResponse res = ok_json();
  res.set(http::field::set_cookie, *cookie);
  co_return res;
}

asio::awaitable<HttpResponse> logout(State& st, const Session& s, const HttpRequest& req, const RequestInfo& info) {
  const std::function<Result<bool>()> work = [&st, id = s.claims.token_id] {
    return st.store.revoke_session(id, auth::unix_now());
  };
  Result<bool> done = co_await on_worker<Result<bool>>(st, work);
  HttpResponse res = after_change(st, done, "such session");
  res.set(http::field::set_cookie, session_cookie("", 0, request_is_secure(req, info, st.options.trust_proxy)));
  co_return res;
}

asio::awaitable<HttpResponse> session_info(State& st, const Session& s, const HttpRequest&, const RequestInfo&) {
  co_return json_response(http::status::ok, {{"sessionId", s.claims.token_id},
                                             {"owner", text_or_null(st.options.owner_did)},
                                             {"expiresAt", auth::iso8601_utc(s.claims.expires_at)},
                                             {"csrf", csrf_token(st.key, s.claims.token_id)},
                                             {"version", st.options.version},
                                             {"publicHost", text_or_null(st.options.public_host)}});
}

// ---- The overview.

// Never waits for a walk: a group not yet counted (just after start) has null figures,
// and the event stream brings them when the walk ends. So the page paints at once
// whatever the groups hold.
asio::awaitable<HttpResponse> overview(State& st, const Session&, const HttpRequest&, const RequestInfo&) {
  st.wanted = Clock::now();
  co_return json_response(http::status::ok, st.overview());
}

asio::awaitable<HttpResponse> events(State& st, const Session& s, const HttpRequest& req, const RequestInfo& info) {
  if (info.event_stream == nullptr) co_return error_json(http::status::not_implemented, "no event streams here");
  std::erase_if(st.streams, [](const Stream& x) {
    auto stream = x.stream.lock();
    return !stream || stream->ended();
  });
  const auto mine = std::count_if(st.streams.begin(), st.streams.end(),
                                    [&](const Stream& x) { return x.session_id == s.claims.token_id; });
  if (static_cast<size_t>(mine) >= st.options.max_streams_per_session) {
    co_return error_json(http::status::too_many_requests, "this console session has as many live pages as allowed");
  }
  if (st.streams.size() >= st.options.max_streams) {
    HttpResponse busy = error_json(http::status::service_unavailable, "too many live consoles; try again later");
    busy.set(http::field::retry_after, "5");
    co_return busy;
  }
  HttpResponse res = server::make_response(http::status::ok, "", "text/event-stream");
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Accel-Buffering", "no");
  auto out = std::make_shared<server::EventStream>();
  out->set_deadline(server::EventStream::Clock::now() +
                    std::chrono::seconds(std::max<int64_t>(0, s.claims.expires_at - auth::unix_now())));
  out->send("event: overview\ndata: " + dump(st.overview()) + "\n\n");
  out->send(st.access_event());
  HttpRequest credentials;  // the headers only: the cookie is checked again at each heartbeat
  credentials.base() = req.base();
  out->check = [weak = st.weak_from_this(), credentials = std::move(credentials)] {
    auto self = weak.lock();
    return self && console_claims(credentials, self->key, *self->revocations.current()).ok();
  };
  st.streams.push_back({out, s.claims.token_id, s.claims.issued_at});
  *info.event_stream = std::move(out);
  co_return res;
}

// ---- A group's documents.

Result<size_t> number_param(const HttpRequest& req, std::string_view name, size_t fallback, size_t least,
                            size_t most) {
  GM_ASSIGN_OR_RETURN(auto text, server::query_param(server::split_target(req.target()).query, name));
  if (!text || text->empty()) return fallback;
  size_t n = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc() || end != text->data() + text->size() || n < least || n > most) {
    return error(std::string(name) + ": a number from " + std::to_string(least) + " to " + std::to_string(most));
  }
  return n;
}

asio::awaitable<HttpResponse> documents(State& st, const Session&, const HttpRequest& req, const RequestInfo& info) {
  const std::string group = param(info, "group");
  const std::vector<std::string> known = st.repo.groups();
  if (std::find(known.begin(), known.end(), group) == known.end()) {
    co_return error_json(http::status::not_found, "no group " + group.substr(0, 200));
  }
  auto offset = number_param(req, "offset", 0, 0, 1'000'000'000);
  auto limit = number_param(req, "limit", 100, 1, 500);
  auto q = server::query_param(server::split_target(req.target()).query, "q");
  auto sort = server::query_param(server::split_target(req.target()).query, "sort");
  if (!offset || !limit || !q || !sort) {
    co_return error_json(http::status::bad_request, !offset ? offset.error().message
                                                    : !limit ? limit.error().message
                                                    : !q     ? q.error().message
                                                             : sort.error().message);
  }
  const std::string needle = q->value_or("").substr(0, 100);
  const bool by_id = sort->value_or("written") == "id";
  if (!by_id && sort->value_or("written") != "written") co_return error_json(http::status::bad_request, "sort: written or id");
  // Listed, filtered, sorted and cut on the slow lane: 10,000 documents never reach the io thread.
  auto answer = std::make_shared<json>();
  const std::function<void(storage::DocumentStore&)> list = [answer, group, needle, by_id, offset = *offset,
                                                             limit = *limit](storage::DocumentStore& store) {
    auto all = store.list_documents();
    if (!all) {
      *answer = {{"error", all.error().message}};
      return;
    }
    const size_t total = all->size();
    std::erase_if(*all, [&](const storage::DocumentSummary& d) { return d.id.find(needle) == std::string::npos; });
    if (!by_id) {
      std::stable_sort(all->begin(), all->end(),
                       [](const storage::DocumentSummary& a, const storage::DocumentSummary& b) { return a.written > b.written; });
    }
    json rows = json::array();
    for (size_t i = offset; i < all->size() && i < offset + limit; ++i) {
      const storage::DocumentSummary& d = (*all)[i];
      rows.push_back({{"id", d.id}, {"url", "automerge:" + d.id}, {"bytes", d.bytes}, {"written", auth::iso8601_utc(d.written)}});
    }
    *answer = {{"group", group}, {"total", total}, {"matched", all->size()}, {"offset", offset}, {"documents", std::move(rows)}};
  };
  Status listed = co_await api::with_store(st.repo, group, list);
  if (!listed) co_return error_json(http::status::service_unavailable, listed.error().message);
  if (answer->contains("error")) co_return json_response(http::status::service_unavailable, *answer);
  co_return json_response(http::status::ok, *answer);
}

// ---- Sessions, devices, grants, roots.

asio::awaitable<HttpResponse> sessions(State& st, const Session& s, const HttpRequest& req, const RequestInfo&) {
  auto expired = server::query_param(server::split_target(req.target()).query, "expired");
  const bool with_expired = expired && *expired && **expired == "1";
  const std::function<Result<std::vector<auth::SessionRecord>>()> work = [&st, with_expired] {
    return st.store.list_sessions(auth::unix_now(), with_expired);
  };
  auto listed = co_await on_worker<Result<std::vector<auth::SessionRecord>>>(st, work);
  if (!listed) co_return error_json(http::status::service_unavailable, listed.error().message);
  std::map<std::string, size_t> open;
  for (const auto& [key, count] : st.sockets) open[key.first] += count;
  json rows = json::array();
  for (const auth::SessionRecord& r : *listed) {
    auto seen = st.last_seen.find(r.id);
    auto sockets = open.find(r.id);
    rows.push_back({{"id", r.id},
                    {"group", text_or_null(r.group)},
                    {"subject", text_or_null(r.subject)},
                    {"kind", r.kind},
                    {"createdAt", auth::iso8601_utc(r.created_at)},
                    {"expiresAt", auth::iso8601_utc(r.expires_at)},
                    {"revokedAt", iso_or_null(r.revoked_at)},
                    {"origin", text_or_null(r.origin)},
                    {"userAgent", text_or_null(r.user_agent)},
                    {"address", text_or_null(r.address)},
                    {"device", text_or_null(r.device)},
                    {"connections", sockets == open.end() ? 0 : sockets->second},
                    {"lastSeen", seen == st.last_seen.end() ? json(nullptr) : json(auth::iso8601_utc(seen->second))},
                    {"current", r.id == s.claims.token_id}});
  }
  co_return json_response(http::status::ok, {{"sessions", std::move(rows)}});
}

asio::awaitable<HttpResponse> revoke_session(State& st, const Session&, const HttpRequest&, const RequestInfo& info) {
  const std::function<Result<bool>()> work = [&st, id = param(info, "id")] {
    return st.store.revoke_session(id, auth::unix_now());
  };
  Result<bool> done = co_await on_worker<Result<bool>>(st, work);
  co_return after_change(st, done, "such session");
}

asio::awaitable<HttpResponse> devices(State& st, const Session&, const HttpRequest&, const RequestInfo&) {
  const std::function<Result<std::vector<auth::DeviceRecord>>()> work = [&st] { return st.store.list_devices(); };
  auto listed = co_await on_worker<Result<std::vector<auth::DeviceRecord>>>(st, work);
  if (!listed) co_return error_json(http::status::service_unavailable, listed.error().message);
  json rows = json::array();
  for (const auth::DeviceRecord& d : *listed) {
    rows.push_back({{"code", d.code},
                    {"group", d.group},
                    {"status", auth::to_string(d.status)},
                    {"origin", text_or_null(d.origin)},
                    {"userAgent", text_or_null(d.user_agent)},
                    {"address", text_or_null(d.address)},
                    {"createdAt", auth::iso8601_utc(d.created_at)},
                    {"decidedAt", iso_or_null(d.decided_at)}});
  }
  co_return json_response(http::status::ok, {{"devices", std::move(rows)}});
}

asio::awaitable<HttpResponse> decide_device(State& st, const Session&, const HttpRequest&, const RequestInfo& info) {
  const std::string action = param(info, "action");
  if (action != "approve" && action != "revoke") co_return error_json(http::status::not_found, "no such action");
  const auth::DeviceStatus status = action == "approve" ? auth::DeviceStatus::approved : auth::DeviceStatus::revoked;
  const std::function<Result<bool>()> work = [&st, code = param(info, "code"), status] {
    return st.store.set_device_status(code, status, auth::unix_now());
  };
  Result<bool> done = co_await on_worker<Result<bool>>(st, work);
  co_return after_change(st, done, "such device");
}

asio::awaitable<HttpResponse> grants(State& st, const Session&, const HttpRequest&, const RequestInfo&) {
  const std::function<Result<std::vector<auth::GrantRecord>>()> work = [&st] { return st.store.list_grants(); };
  auto listed = co_await on_worker<Result<std::vector<auth::GrantRecord>>>(st, work);
  if (!listed) co_return error_json(http::status::service_unavailable, listed.error().message);
  json rows = json::array();
  for (const auth::GrantRecord& g : *listed) {
    json scopes = json::array();
    for (const auth::Scope& scope : g.scopes) scopes.push_back(auth::to_string(scope));
    rows.push_back({{"id", g.id},
                    {"subject", g.subject},
                    {"scopes", std::move(scopes)},
                    {"status", auth::to_string(g.status)},
                    {"createdAt", auth::iso8601_utc(g.created_at)},
                    {"expiresAt", iso_or_null(g.expires_at)},
                    {"decidedAt", iso_or_null(g.decided_at)},
                    {"origin", text_or_null(g.origin)},
                    {"note", text_or_null(g.note)}});
  }
  co_return json_response(http::status::ok, {{"grants", std::move(rows)}});
}

asio::awaitable<HttpResponse> decide_grant(State& st, const Session&, const HttpRequest&, const RequestInfo& info) {
  const std::string action = param(info, "action");
  std::optional<auth::GrantStatus> status;
  if (action == "approve") status = auth::GrantStatus::approved;
  if (action == "refuse") status = auth::GrantStatus::refused;
  if (action == "revoke") status = auth::GrantStatus::revoked;
  if (!status) co_return error_json(http::status::not_found, "no such action");
  const std::function<Result<bool>()> work = [&st, id = param(info, "id"), status = *status] {
    return st.store.set_grant_status(id, status, auth::unix_now());
  };
  Result<bool> done = co_await on_worker<Result<bool>>(st, work);
  co_return after_change(st, done, "such grant");
}

asio::awaitable<HttpResponse> roots(State& st, const Session&, const HttpRequest&, const RequestInfo&) {
  const std::function<Result<std::map<std::string, std::string>>()> work = [&st] { return st.store.root_docs(); };
  auto listed = co_await on_worker<Result<std::map<std::string, std::string>>>(st, work);
  if (!listed) co_return error_json(http::status::service_unavailable, listed.error().message);
  std::set<std::string> groups;
  for (const std::string& g : st.repo.groups()) groups.insert(g);
  for (const auto& [g, url] : *listed) groups.insert(g);
  json rows = json::array();
  for (const std::string& g : groups) {
    auto root = listed->find(g);
    rows.push_back({{"group", g}, {"rootDocUrl", root == listed->end() ? json(nullptr) : json(root->second)}});
  }
  co_return json_response(http::status::ok, {{"roots", std::move(rows)}});
}

asio::awaitable<HttpResponse> set_root(State& st, const Session&, const HttpRequest& req, const RequestInfo& info) {
  const std::string group = param(info, "group");
  if (Status v = storage::validate_group_name(group); !v) co_return error_json(http::status::bad_request, v.error().message);
  json body = json::parse(req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("rootDocUrl") || !body["rootDocUrl"].is_string()) {
    co_return error_json(http::status::bad_request, "expected {\"rootDocUrl\": \"automerge:<document id>\"}");
  }
  const std::string url = body["rootDocUrl"];
  if (Status v = auth::validate_automerge_url(url); !v) co_return error_json(http::status::bad_request, v.error().message);
  const std::function<Result<bool>()> work = [&st, group, url]() -> Result<bool> {
    GM_TRY(st.store.set_root_doc(group, url, auth::unix_now()));
    return true;
  };
  Result<bool> done = co_await on_worker<Result<bool>>(st, work);
  co_return after_change(st, done, "such group");
}

// The saved document, as a file to keep: the read route of the mounted API, asked for
// the saved bytes.
asio::awaitable<HttpResponse> download(State& st, const HttpRequest& req, const RequestInfo& info) {
  const std::string id = param(info, "id");
  HttpRequest inner = req;
  const std::string_view query = server::split_target(req.target()).query;
  inner.target("/console/api/v1/documents/" + id + (query.empty() ? "" : "?" + std::string(query)));
  inner.set(http::field::accept, "application/octet-stream");
  RequestInfo inner_info;
  inner_info.remote_address = info.remote_address;
  inner_info.tls = info.tls;
  HttpResponse res = co_await st.router->route(inner, inner_info);
  if (res.result() == http::status::ok) {
    res.set(http::field::content_disposition, "attachment; filename=\"" + id + ".automerge\"");
  }
  co_return res;
}

}  // namespace

// ---- Console.

Console::Console(ConsoleOptions options, server::Server& server, repo::Repo& repo, auth::StateStore& store,
                 auth::RevocationWatcher& revocations, asio::thread_pool& workers, const auth::TokenKey& app_key)
    : state_(std::make_shared<State>(std::move(options), server, repo, store, revocations, workers, app_key)) {
  repo.add_change_listener([weak = std::weak_ptr<State>(state_)](const std::string& group, const std::string& id) {
    auto self = weak.lock();
    if (!self) return;
    self->figures[group].dirty = true;
    const std::string key = group + "/" + id;
    if (self->coalesced.count(key) || self->coalesced.size() >= kMaxCoalesced) return;
    self->coalesced[key] = Clock::now();
    self->add_activity("change", group, "document " + id + " changed");
  });
}

Console::~Console() = default;

api::ReadMount Console::read_mount() const {
  api::ReadMount mount;
  mount.prefix = "/console/api/v1";
  mount.authenticate = [weak = std::weak_ptr<State>(state_)](const HttpRequest& req) -> Result<api::Who> {
    auto self = weak.lock();
    if (!self) return error("the console is gone");
    GM_ASSIGN_OR_RETURN(auth::SessionClaims claims, console_claims(req, self->key, *self->revocations.current()));
    api::Access access;
    access.reach.reads_every_group = true;  // the owner sees everything, and writes nothing here
    return api::Who{std::move(claims), std::move(access)};
  };
  return mount;
}

void Console::add_routes(server::HttpRouter& router) {
  std::shared_ptr<State> st = state_;
  st->router = &router;
  router.decorate("/console", secure);  // every answer under /console, 404s included
  // The router's own answers under /console/api speak JSON too.
  router.decorate("/console/api", [](HttpResponse& res) {
    if (res.result() != http::status::not_found && res.result() != http::status::method_not_allowed) return;
    if (res[http::field::content_type].starts_with("application/json")) return;
    res.body() = dump({{"error", res.result() == http::status::not_found ? "no such console route"
                                                                          : "this route does not take that method"}}) + "\n";
    res.set(http::field::content_type, "application/json");
    res.prepare_payload();
  });
  auto page = [st](std::string name) {
    return [st, name](const HttpRequest& req, const RequestInfo&) -> asio::awaitable<HttpResponse> {
      co_return asset_response(*st, req, name);
    };
  };
  for (const char* path : {"/console", "/console/", "/console/access", "/console/grants", "/console/roots",
                           "/console/login", "/console/groups/{group}", "/console/documents/{id}"}) {
    router.add(http::verb::get, path, page("index.html"));
  }
  router.add(http::verb::get, "/console/assets/{name}",
             [st](const HttpRequest& req, const RequestInfo& info) -> asio::awaitable<HttpResponse> {
               co_return asset_response(*st, req, param(info, "name"));
             });
  router.add(http::verb::post, "/console/api/login",
             [st](const HttpRequest& req, const RequestInfo& info) -> asio::awaitable<HttpResponse> {
               co_return co_await login(*st, req, info);
             });
  router.add(http::verb::get, "/console/api/documents/{id}/download",
             [st](const HttpRequest& req, const RequestInfo& info) -> asio::awaitable<HttpResponse> {
               co_return co_await download(*st, req, info);
             });
  router.add(http::verb::post, "/console/api/logout", console_route(st, logout, true));
  router.add(http::verb::get, "/console/api/session", console_route(st, session_info, false));
  router.add(http::verb::get, "/console/api/overview", console_route(st, overview, false));
  router.add(http::verb::get, "/console/api/events", console_route(st, events, false));
  router.add(http::verb::get, "/console/api/groups/{group}/documents", console_route(st, documents, false));
  router.add(http::verb::get, "/console/api/sessions", console_route(st, sessions, false));
  router.add(http::verb::post, "/console/api/sessions/{id}/revoke", console_route(st, revoke_session, true));
  router.add(http::verb::get, "/console/api/devices", console_route(st, devices, false));
  router.add(http::verb::post, "/console/api/devices/{code}/{action}", console_route(st, decide_device, true));
  router.add(http::verb::get, "/console/api/grants", console_route(st, grants, false));
  router.add(http::verb::post, "/console/api/grants/{id}/{action}", console_route(st, decide_grant, true));
  router.add(http::verb::get, "/console/api/roots", console_route(st, roots, false));
  router.add(http::verb::put, "/console/api/roots/{group}", console_route(st, set_root, true));
}

Result<std::string> Console::open_session(const HttpRequest& req, const RequestInfo& info) {
  GM_ASSIGN_OR_RETURN(std::string cookie, state_->open_session(req, info));
  asio::post(state_->server.executor(), [state = state_] { state->look(); });
  return cookie;
}

void Console::start() {
  asio::post(state_->server.executor(), [state = state_] { state->tick(); });
}

void Console::recheck() {
  asio::post(state_->server.executor(), [state = state_] {
    auto revoked = state->revocations.current();
    for (const Stream& s : state->streams) {
      auto stream = s.stream.lock();
      if (stream && revoked->revoked(s.session_id, s.issued_at)) stream->cut("session revoked");
    }
    state->look();
  });
}

}  // namespace gm::web
