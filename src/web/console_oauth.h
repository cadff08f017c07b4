// "Sign in with atproto" for the owner's console (docs/console.md): the server as an
// atproto OAuth client (atproto/oauth_client.h) that opens a console session for the
// owner's DID and nobody else.
//
//   GET /console/oauth/start       discovery from the owner's DID, a pushed authorization
//                                  request (PAR, PKCE S256, DPoP), then 303 to the owner's
//                                  authorization server with a short-lived cookie that ties
//                                  the sign-in to this browser
//   GET /console/oauth/callback    the authorization server's answer: state (single use,
//                                  the same browser), iss = the issuer found from the
//                                  owner's DID, the code exchanged (DPoP) and the token
//                                  answer's sub = the owner's DID; then the console session
//                                  (Console::open_session) and 303 to /console/
//   GET /console/oauth/client-metadata.json
//                                  the client metadata document of the deployed form
//
// Which client: a request to the public host (GROUNDMIST_SYNC_HOST, unless it is a
// loopback name such as localhost:3031 in development) uses the deployed
// form, client_id https://<host>/console/oauth/client-metadata.json, redirect URI
// https://<host>/console/oauth/callback; a plain-http request to a loopback address uses
// atproto's loopback form, client_id http://localhost?redirect_uri=…&scope=atproto with
// redirect URI http://127.0.0.1:<port>/console/oauth/callback (a start on localhost or
// [::1] is first sent to 127.0.0.1, so that the browser's cookies are where the callback
// lands). Any other host is refused: the authorization server would send the browser to a
// redirect URI this server did not name.
//
// Every failure ends in 303 to /console/login#error=<percent-encoded message> (the login
// page shows it); the fragment keeps the message out of logs and Referers.
//
// Kept, in memory only: the sign-ins under way (state, PKCE verifier, DPoP key,
// authorization server, client form, DPoP nonce, a hash of the browser cookie, the
// client's address), at most max_pending (the oldest goes first), max_pending_per_client
// per address, each for pending_for. Nothing of a finished sign-in is kept: the access
// and refresh tokens are dropped unread beyond their `sub` and `scope`.
//
// Threads: the network calls and open_session (SQLite) run on this part's own worker
// thread, so that a slow PDS never holds up apps' /authenticate; the routes' admission
// runs on the io thread.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "atproto/resolver.h"
#include "server/http_router.h"
#include "web/console_routes.h"

namespace gm::web {

struct ConsoleOAuthOptions {
  std::string owner_did;    // "" → /console/oauth/start refuses, with what to do instead
  std::string public_host;  // "" → only the loopback form
  bool trust_proxy = false;  // X-Forwarded-For / -Proto as for the console
  size_t max_pending = 32;
  size_t max_pending_per_client = 4;
  std::chrono::seconds pending_for{600};
  size_t max_queued = 8;  // requests waiting for the worker
};

// Owns the worker thread. Destroy it after the server has stopped running and before the
// server itself (declare it after the Server and the Console).
class ConsoleOAuth {
 public:
  ConsoleOAuth(ConsoleOAuthOptions options, Console& console, atproto::DidResolver& resolver);
  ~ConsoleOAuth();
  ConsoleOAuth(const ConsoleOAuth&) = delete;
  ConsoleOAuth& operator=(const ConsoleOAuth&) = delete;

  void add_routes(server::HttpRouter& router);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// The three routes above, on a ConsoleOAuth that the caller keeps (see its lifetime).
std::unique_ptr<ConsoleOAuth> add_console_oauth_routes(server::HttpRouter& router, Console& console,
                                                       atproto::DidResolver& resolver, ConsoleOAuthOptions options);

// The client metadata document of the deployed form, for `public_host` (no I/O).
nlohmann::json console_client_metadata(std::string_view public_host);

}  // namespace gm::web
