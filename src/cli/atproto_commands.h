// The owner's atproto commands: publish the server's host name in their PDS, take it
// down again, and check the whole discovery chain an app follows (spec/atproto.md §1.1,
// §3, §4).
//
//   groundmist-sync publish --host H (--handle HANDLE | --did DID) [--pds URL] [--plc-url URL]
//   groundmist-sync unpublish (--handle HANDLE | --did DID) [--pds URL] [--plc-url URL]
//   groundmist-sync resolve HANDLE|DID [--pds URL] [--plc-url URL] [--json]
//
// publish and unpublish log in with an app password, from ATPROTO_APP_PASSWORD
// (environment or .env) or asked on the terminal without echo; the PDS is --pds, else
// the one the DID document names. They write or delete the record
// xyz.groundmist.sync/<did> = {"$type": "xyz.groundmist.sync", "host": H}.
// The PLC directory is --plc-url, else PLC_URL, else https://plc.directory.
//
// resolve prints one step a line (DID, handle, PDS, published host, the host's /healthz,
// its /.well-known/did.json); a failed step says what failed and what to do. With --json
// it prints one object instead:
//   {"did": s|null, "handle": s|null, "pds": s|null, "host": s|null,
//    "healthz": bool, "didDocument": bool, "problems": [s, ...]}
// Exit status 0 only when every step passed.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "util/result.h"

namespace gm::cli {

struct AtprotoOptions {
  std::string handle;
  std::string did;
  std::string pds;      // empty: the PDS the DID document names
  std::string plc_url;  // empty: PLC_URL, else https://plc.directory
  std::string host;     // publish
  std::string subject;  // resolve: a handle or a DID
  bool json = false;    // resolve
  int exit_code = 0;
};

void add_atproto_commands(CLI::App& app, AtprotoOptions& opts);

// A host name as the discovery record holds it: a DNS name (or IPv4 address) with an
// optional ":port", no scheme, no path; lowercased. The error says what to type instead.
Result<std::string> validate_sync_host(std::string_view host);

}  // namespace gm::cli
