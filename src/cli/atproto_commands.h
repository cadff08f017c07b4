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
#include <optional>
#include <string>
#include <string_view>

#include "atproto/http_client.h"
#include "server/config.h"
#include "util/result.h"

namespace gm::cli {

// The discovery record's collection; its record key is the owner's DID.
inline constexpr char kDiscoveryCollection[] = "xyz.groundmist.sync";

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

// --- pieces `setup` and `doctor` share (cli/setup_command.h, cli/doctor_command.h) ---------

// The owner's account: found from opts.handle or opts.did (exactly one), on opts.pds or
// else the PDS their DID document names (PLC directory: opts.plc_url, else PLC_URL in
// `env`, else https://plc.directory). A handle is resolved by the PDS when --pds is
// given, else by https://<handle>/.well-known/atproto-did.
struct Account {
  std::string did;
  std::string pds;
  std::string identifier;  // what createSession is given: the handle if known, else the DID
};
Result<Account> find_account(const AtprotoOptions& opts, const server::Environment& env);

// A session on the owner's PDS, opened with an app password (createSession) and ended
// with log_out (deleteSession), so that no refresh token outlives the command.
struct PdsLogin {
  std::string access_jwt;
  std::string refresh_jwt;
};
Result<PdsLogin> log_in(const Account& account, const std::string& password);
void log_out(const Account& account, const PdsLogin& session);

// Writes xyz.groundmist.sync/<did> = {"$type": "xyz.groundmist.sync", "host": host};
// returns the record's at:// URI.
Result<std::string> put_discovery_record(const Account& account, const PdsLogin& session, const std::string& host);
// The host the owner's record names, as written (not validated); nullopt when there is
// no record. Errors: ErrorCode::kInvalid for a record without a host string, kIo when
// the PDS could not be asked.
Result<std::optional<std::string>> get_discovery_record(const std::string& pds, const std::string& did);
std::string discovery_record_uri(const std::string& did);

// One line read from the terminal with echo off (a password), after `prompt` on stderr;
// echo comes back if the user interrupts. An empty line is an error.
Result<std::string> read_hidden_line(const std::string& prompt);

// localhost or 127.0.0.1 (with or without a port): a development host, reached over
// plain http and ws, as the server's own did:web document says (atproto/did.h).
bool is_development_host(std::string_view host);
// How apps reach `host`: https://host, or http://host for a development host.
std::string host_origin(const std::string& host);

// GET <origin>/.well-known/did.json and compare it with the did:web document of `host`
// (its id, and its #groundmist_sync service pointing to host_origin(host)). `options`
// gives the timeout and, for a test certificate, a CA file; the size cap is set here.
struct DidJsonCheck {
  bool ok = false;
  std::string verdict;  // what was found
  std::string fix;      // on failure: what to do
};
DidJsonCheck check_did_json(const std::string& host, const std::string& origin, atproto::HttpOptions options);

// A host name as the discovery record holds it: a DNS name (or IPv4 address) with an
// optional ":port", no scheme, no path; lowercased. The error says what to type instead.
Result<std::string> validate_sync_host(std::string_view host);

}  // namespace gm::cli
