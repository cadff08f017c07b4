// The owner's console on the server's side (docs/console.md): its pages, its log-in,
// its JSON routes under /console/api, and the live overview.
//
// Usage (cli/serve_command.cc):
//   web::Console console(options, srv, repo, store, revocations, workers, app_key);
//   api::add_api_routes(srv.router(), repo, …, {console.read_mount()});
//   console.add_routes(srv.router());
//   console.start();                       // once the server listens
//   … revocations' callback: console.recheck();
//
// Threads: routes and the live state run on the io thread. What touches the state
// database (the sessions, devices, grants and roots, the log-in) runs on `workers`;
// what walks a group's folder, on the repo's slow lane. A tick each second on the io
// thread diffs the open WebSockets (connections, activity), refreshes the groups'
// document counts and bytes when they changed (at most every 5 s per group), asks a
// worker whether the database moved (new sessions, pending devices and grants), and
// sends the overview to the open event streams when it changed.
//
// Bounds: console requests under way (32, 8 per session), event streams (16, 4 per
// session), the activity log (the newest 100), the per-document change coalescing map.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "api/routes.h"
#include "auth/revocation_watcher.h"
#include "auth/session_token.h"
#include "auth/state_store.h"
#include "repo/repo.h"
#include "server/http_router.h"
#include "server/server.h"

namespace gm::web {

struct ConsoleOptions {
  std::string owner_did;    // shown, and the subject of console sessions ("" without an owner)
  std::string public_host;  // shown
  std::string version;
  bool trust_proxy = false;  // X-Forwarded-Proto decides the cookie's Secure
  // Pages read from this folder on each request instead of the compiled-in copies
  // (GROUNDMIST_SYNC_CONSOLE_DIR: for working on the pages without rebuilding).
  std::optional<std::filesystem::path> pages_dir;
  size_t max_requests = 32;
  size_t max_requests_per_session = 8;
  size_t max_streams = 16;
  size_t max_streams_per_session = 4;
};

class Console {
 public:
  // Everything passed must outlive the Console; `workers` must be joined after it.
  Console(ConsoleOptions options, server::Server& server, repo::Repo& repo, auth::StateStore& store,
          auth::RevocationWatcher& revocations, boost::asio::thread_pool& workers, const auth::TokenKey& app_key);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // The JSON API's read routes under /console/api/v1, by the console's cookie.
  api::ReadMount read_mount() const;
  void add_routes(server::HttpRouter& router);
  // For other ways to log in (e.g. OAuth): records a console session for the browser
  // that sent `req` (its Origin, User-Agent and address are kept) and gives the
  // Set-Cookie value that carries it. Blocks on the state database: call it on a
  // worker, never on the io thread. Any thread.
  Result<std::string> open_session(const server::HttpRequest& req, const server::RequestInfo& info);
  // Starts the tick (any thread).
  void start();
  // Ends the console's event streams whose session was revoked (any thread).
  void recheck();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace gm::web
