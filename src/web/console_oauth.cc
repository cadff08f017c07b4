#include "web/console_oauth.h"

#include <spdlog/spdlog.h>

#include <boost/asio/thread_pool.hpp>
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "atproto/http_client.h"
#include "atproto/oauth_client.h"
#include "server/client_address.h"
#include "server/url_query.h"
#include "util/hex.h"
#include "util/sha256.h"
#include "util/text.h"
#include "web/console_session.h"

namespace gm::web {

namespace http = boost::beast::http;
namespace oauth = atproto::oauth;
using nlohmann::json;
using server::HttpRequest;
using server::HttpResponse;
using server::RequestInfo;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kStartPath = "/console/oauth/start";
constexpr std::string_view kCallbackPath = "/console/oauth/callback";
constexpr std::string_view kMetadataPath = "/console/oauth/client-metadata.json";
// Ties a sign-in to the browser that started it. SameSite=Lax, not Strict: the callback
// is a navigation from the authorization server's site, which carries Lax cookies only.
constexpr std::string_view kBrowserCookie = "gm_oauth";

// Never kept by a cache. The console's security headers reach every answer under
// /console, these included, through the router (Console::add_routes, HttpRouter::decorate).
void no_store(HttpResponse& res) { res.set(http::field::cache_control, "no-store"); }

HttpResponse see_other(const std::string& location) {
  HttpResponse res = server::make_response(http::status::see_other, "", "text/plain; charset=utf-8");
  res.set(http::field::location, location);
  no_store(res);
  return res;
}

// A failed sign-in: back to the login page, which shows the message.
HttpResponse failed(const std::string& message) {
  return see_other("/console/login#error=" + atproto::percent_encode(message));
}

std::string browser_cookie(std::string_view value, int64_t max_age, bool secure_cookie) {
  return std::string(kBrowserCookie) + "=" + std::string(value) + "; Path=/console/oauth; Max-Age=" +
         std::to_string(max_age) + "; HttpOnly; SameSite=Lax" + (secure_cookie ? "; Secure" : "");
}

std::string hash_hex(std::string_view s) {
  const Sha256Digest d = sha256(as_bytes(s));
  return to_hex(ByteView(d.data(), d.size()));
}

// The port of a loopback Host header ("127.0.0.1:3031", "localhost:3031", "[::1]:3031";
// 80 when none), or nullopt for any other host.
std::optional<std::string> loopback_port(std::string_view host) {
  std::string_view name = host, port = "80";
  if (host.starts_with("[")) {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    name = host.substr(0, close + 1);
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') return std::nullopt;
      port = host.substr(close + 2);
    }
  } else if (const size_t colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string lower = ascii_lower(name);
  if (lower != "127.0.0.1" && lower != "localhost" && lower != "[::1]") return std::nullopt;
  return std::string(port);
}

struct Pending {
  std::string client_key;    // the address that started it
  std::string browser_hash;  // SHA-256 of the gm_oauth cookie's value
  std::string verifier;      // PKCE
  oauth::SigningKey key;     // DPoP
  oauth::AuthServerMetadata server;
  oauth::ClientIdentity client;
  std::string dpop_nonce;
  Clock::time_point created;
};

}  // namespace

json console_client_metadata(std::string_view public_host) {
  const std::string origin = "https://" + std::string(public_host);
  return {{"client_id", origin + std::string(kMetadataPath)},
          {"client_name", "Groundmist Sync console"},
          {"client_uri", origin + "/console/"},
          {"application_type", "web"},
          {"grant_types", {"authorization_code"}},
          {"response_types", {"code"}},
          {"redirect_uris", {origin + std::string(kCallbackPath)}},
          {"scope", "atproto"},
          {"token_endpoint_auth_method", "none"},
          {"dpop_bound_access_tokens", true}};
}

struct ConsoleOAuth::State {
  State(ConsoleOAuthOptions o, Console& c, atproto::DidResolver& r) : options(std::move(o)), console(c), resolver(r) {}

  const ConsoleOAuthOptions options;
  Console& console;
  atproto::DidResolver& resolver;
  boost::asio::thread_pool workers{1};
  std::mutex mu;  // guards pending
  std::map<std::string, Pending, std::less<>> pending;  // by state

  std::string client_key(const HttpRequest& req, const RequestInfo& info) const {
    return server::client_address(req, info, options.trust_proxy);
  }

  void expire_locked(Clock::time_point now) {
    std::erase_if(pending, [&](const auto& p) { return now - p.second.created >= options.pending_for; });
  }

  HttpResponse start(const HttpRequest& req, const RequestInfo& info);
  HttpResponse callback(const HttpRequest& req, const RequestInfo& info);
};

HttpResponse ConsoleOAuth::State::start(const HttpRequest& req, const RequestInfo& info) {
  if (options.owner_did.empty()) {
    return failed("Sign in with atproto needs the owner's DID (ATPROTO_DID or --owner), and this server has none: "
                  "log in with a link from `groundmist-sync console-link` instead");
  }
  // Which client this is depends on where the browser reached the server (see the header).
  const std::string host = ascii_lower(req[http::field::host]);
  oauth::ClientIdentity client;
  // A public host that is itself a loopback name (local development) has no https
  // deployment to name: it gets the loopback form below.
  if (!options.public_host.empty() && host == ascii_lower(options.public_host) && !loopback_port(host)) {
    const std::string origin = "https://" + options.public_host;
    client.client_id = origin + std::string(kMetadataPath);
    client.redirect_uri = origin + std::string(kCallbackPath);
  } else if (std::optional<std::string> port = loopback_port(host); port && !info.tls) {
    const std::string here = "127.0.0.1:" + *port;
    if (host != here) return see_other("http://" + here + std::string(kStartPath));
    client = oauth::loopback_client("http://" + here + std::string(kCallbackPath));
  } else {
    return failed("Sign in with atproto works only at the server's public host (" +
                  (options.public_host.empty() ? std::string("none configured: GROUNDMIST_SYNC_HOST")
                                               : "https://" + options.public_host + "/console/") +
                  ") or on its own machine at http://127.0.0.1:<port>/console/, not at \"" + printable(host, 100) +
                  "\"");
  }
  const std::string who = client_key(req, info);
  {
    std::lock_guard lock(mu);
    expire_locked(Clock::now());
    const size_t mine = static_cast<size_t>(std::count_if(
        pending.begin(), pending.end(), [&](const auto& p) { return p.second.client_key == who; }));
    if (mine >= options.max_pending_per_client) {
      return failed("Too many sign-ins started from your address and not finished: finish one, or wait " +
                    std::to_string(options.pending_for.count() / 60) + " minutes");
    }
  }

  auto discovered = oauth::discover(resolver, options.owner_did);
  if (!discovered.ok()) {
    spdlog::warn("console sign-in: discovery for {} failed: {}", options.owner_did, discovered.error().message);
    return failed("Could not find the owner's authorization server: " + discovered.error().message);
  }
  auto key = oauth::SigningKey::generate();
  auto verifier = oauth::new_pkce_verifier();
  auto state_value = oauth::random_token(32);
  auto browser = oauth::random_token(32);
  if (!key.ok() || !verifier.ok() || !state_value.ok() || !browser.ok()) return failed("No randomness for a sign-in");
  auto pushed = oauth::push_authorization_request(discovered->server, client, *key, *state_value,
                                                  oauth::pkce_s256_challenge(*verifier), options.owner_did, "");
  if (!pushed.ok()) {
    spdlog::warn("console sign-in: {}", pushed.error().message);
    return failed("The owner's authorization server refused to start the sign-in: " + pushed.error().message);
  }
  {
    std::lock_guard lock(mu);
    expire_locked(Clock::now());
    // Full: refused, never making room by dropping someone's sign-in under way (the
    // owner's could be pushed out by others starting sign-ins). They expire on their own.
    if (pending.size() >= options.max_pending) {
      return failed("Too many sign-ins are under way; try again in a few minutes, or log in with a console link");
    }
    pending.emplace(*state_value, Pending{who, hash_hex(*browser), *verifier, *key, discovered->server, client,
                                          pushed->dpop_nonce, Clock::now()});
  }
  HttpResponse res = see_other(oauth::authorization_url(discovered->server, client, pushed->request_uri));
  res.set(http::field::set_cookie, browser_cookie(*browser, options.pending_for.count(),
                                                  request_is_secure(req, info, options.trust_proxy)));
  return res;
}

HttpResponse ConsoleOAuth::State::callback(const HttpRequest& req, const RequestInfo& info) {
  const bool secure_cookie = request_is_secure(req, info, options.trust_proxy);
  const std::string who = client_key(req, info);
  auto refuse = [&](const std::string& message) {
    spdlog::warn("console sign-in from {} refused: {}", who, message);
    HttpResponse res = failed(message);
    res.set(http::field::set_cookie, browser_cookie("", 0, secure_cookie));
    return res;
  };
  const std::string_view query = server::split_target(req.target()).query;
  auto param = [&](std::string_view name) -> std::string {
    auto v = server::query_param(query, name);
    return v.ok() && v->has_value() ? **v : std::string();
  };
  const std::string state_value = param("state");
  if (state_value.empty()) return refuse("The sign-in answer has no state: start again");

  std::optional<Pending> p;
  {
    std::lock_guard lock(mu);
    expire_locked(Clock::now());
    if (auto it = pending.find(state_value); it != pending.end()) {
      p = std::move(it->second);
      pending.erase(it);  // single use, whatever happens next
    }
  }
  if (!p) return refuse("This sign-in is unknown, already used or expired: start again");
  // Every gm_oauth value is tried: a page of the same site can plant one that the
  // browser sends first (console_session.h).
  const auto cookies = cookie_values(req[http::field::cookie], kBrowserCookie);
  if (std::none_of(cookies.begin(), cookies.end(), [&](std::string_view c) { return hash_hex(c) == p->browser_hash; })) {
    return refuse("This sign-in was started in another browser (or its cookie is gone): start again here");
  }
  if (const std::string e = param("error"); !e.empty()) {
    const std::string description = param("error_description");
    return refuse("The owner's authorization server ended the sign-in: " + printable(e, 100) +
                  (description.empty() ? std::string() : ": " + printable(description, 300)));
  }
  // The answer must come from the server this sign-in was sent to (RFC 9207).
  const std::string iss = param("iss");
  if (iss != p->server.issuer) {
    return refuse("The sign-in answer names issuer \"" + printable(iss, 200) + "\", not the owner's authorization server " +
                  p->server.issuer);
  }
  const std::string code = param("code");
  if (code.empty() || code.size() > 2048) return refuse("The sign-in answer has no usable code");

  auto signed_in = oauth::exchange_code(p->server, p->client, p->key, code, p->verifier, p->dpop_nonce);
  if (!signed_in.ok()) return refuse("The code could not be exchanged: " + signed_in.error().message);
  if (signed_in->sub != options.owner_did) {
    return refuse(signed_in->sub + " signed in, but this server belongs to " + options.owner_did +
                  ": only its owner may use the console");
  }
  // The owner's DID document must still lead to this issuer (it may have moved PDS since
  // the sign-in started; the token answer's sub alone does not say where it is hosted).
  auto now_at = oauth::discover(resolver, options.owner_did, /*refresh=*/true);
  if (!now_at.ok()) return refuse("Could not check the owner's authorization server: " + now_at.error().message);
  if (now_at->server.issuer != p->server.issuer) {
    return refuse("The owner's DID document now leads to " + now_at->server.issuer + ", not " + p->server.issuer +
                  ": start again");
  }
  auto session_cookie_value = console.open_session(req, info);
  if (!session_cookie_value.ok()) {
    spdlog::error("console sign-in: could not open a session: {}", session_cookie_value.error().message);
    return refuse("Could not open a console session: " + session_cookie_value.error().message);
  }
  spdlog::info("console sign-in: {} signed in with atproto from {}", options.owner_did, who);
  HttpResponse res = see_other("/console/");
  res.set(http::field::set_cookie, *session_cookie_value);
  res.insert(http::field::set_cookie, browser_cookie("", 0, secure_cookie));
  return res;
}

ConsoleOAuth::ConsoleOAuth(ConsoleOAuthOptions options, Console& console, atproto::DidResolver& resolver)
    : state_(std::make_shared<State>(std::move(options), console, resolver)) {}

ConsoleOAuth::~ConsoleOAuth() {
  state_->workers.stop();
  state_->workers.join();
}

void ConsoleOAuth::add_routes(server::HttpRouter& router) {
  server::BlockingLimits limits;
  limits.max_queued = state_->options.max_queued;
  limits.max_body = 0;
  limits.client_key = [st = state_](const HttpRequest& req, const RequestInfo& info) { return st->client_key(req, info); };
  limits.max_per_client = [](const std::string&) -> size_t { return 2; };
  // The routes hold the state, not `this`: they live as long as the router.
  router.add(http::verb::get, std::string(kStartPath),
             server::blocking_route(
                 state_->workers,
                 [st = state_](const HttpRequest& req, const RequestInfo& info) { return st->start(req, info); },
                 limits));
  router.add(http::verb::get, std::string(kCallbackPath),
             server::blocking_route(
                 state_->workers,
                 [st = state_](const HttpRequest& req, const RequestInfo& info) { return st->callback(req, info); },
                 limits));
  router.add(http::verb::get, std::string(kMetadataPath),
             [host = state_->options.public_host](const HttpRequest&,
                                                  const RequestInfo&) -> boost::asio::awaitable<HttpResponse> {
               HttpResponse res =
                   host.empty()
                       ? server::make_response(http::status::not_found,
                                               json{{"error", "no public host configured (GROUNDMIST_SYNC_HOST): "
                                                              "the console signs in with the loopback client form"}}
                                                       .dump() +
                                                   "\n",
                                               "application/json")
                       : server::make_response(http::status::ok, console_client_metadata(host).dump() + "\n",
                                               "application/json");
               no_store(res);
               if (!host.empty()) res.set(http::field::cache_control, "public, max-age=300");
               co_return res;
             });
}

std::unique_ptr<ConsoleOAuth> add_console_oauth_routes(server::HttpRouter& router, Console& console,
                                                       atproto::DidResolver& resolver, ConsoleOAuthOptions options) {
  auto oauth = std::make_unique<ConsoleOAuth>(std::move(options), console, resolver);
  oauth->add_routes(router);
  return oauth;
}

}  // namespace gm::web
