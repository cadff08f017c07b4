// The owner's commands over the server's state database (auth/state_store.h). They work
// while the server runs: it notices revocations within a second and closes the sockets.
//
//   groundmist-sync sessions list [--json] [--expired]   sessions handed out, newest first
//   groundmist-sync sessions revoke ID | --all           refuse a session (or every one) from now on
//   groundmist-sync devices list [--json]                DPoP keys: pending, approved, revoked
//   groundmist-sync devices approve CODE                 let a pending device log in
//   groundmist-sync devices revoke CODE                  refuse it again, and close its sessions
//   groundmist-sync grants list [--json]                 scope grants: pending, approved, refused, revoked
//   groundmist-sync grants approve|refuse ID             answer a pending scope request
//   groundmist-sync grants revoke ID                     withdraw a grant: its tokens lose its scopes at once
//   groundmist-sync grants add --subject S --scope NSID:read|write … [--ttl D]
//                                                        grant scopes to a subject without a request
//   groundmist-sync root GROUP [URL]                     show or set a group's root document
//   groundmist-sync console-link [--url ORIGIN]          a one-time log-in link to the console (docs/console.md)
//
// Every one takes --data DIR (env DATA_DIR, default .data).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli/serve_command.h"

namespace gm::cli {

struct OwnerOptions {
  CommonServerFlags common;
  bool json = false;
  bool expired = false;
  bool all = false;
  std::string id;     // session id, device code or grant id
  std::string subject;
  std::vector<std::string> scopes;
  std::string ttl;
  std::string group;
  std::string url;
  int exit_code = 0;
};

void add_owner_commands(CLI::App& app, OwnerOptions& opts);

}  // namespace gm::cli
