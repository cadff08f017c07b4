// `groundmist-sync doctor [--config FILE] [--data DIR] [--timeout SECONDS] [--json]`:
// checks that the server is set up so that apps can find it and sync with it, one line
// a check (cli/doctor_report.h), a fix for each that is not ok; exit status 1 if any
// failed. Run it on the server's machine, as the user the server runs as (the .deb's:
// `sudo -u groundmist-sync groundmist-sync doctor`; as root it expects the data folder
// to be that user's): it reads the settings file and the data folder.
//
// The settings are those of the file `setup` writes (cli/config_file.h): --config FILE,
// else /etc/groundmist-sync/groundmist-sync.conf, else .env and the environment. --data
// overrides DATA_DIR. The checks, in order (a check that cannot run because an earlier
// one failed is `skip`, and the earlier one says what to fix):
//
//   config      the file parses; ATPROTO_DID is set and a did:plc/did:web DID;
//               GROUNDMIST_SYNC_HOST is set and a bare host name (a port only for
//               localhost/127.0.0.1); PLC_URL is a URL the client allows; the TLS files
//               both or neither; a file holding the secret key is not readable by others.
//   data folder exists, a folder, owned by the user the server runs as, nobody else's
//               to open (no group/other bits), its owner may write it, not on a
//               read-only file system; under 1% or 256 MiB free warns. secret.key (unless
//               GROUNDMIST_SYNC_SECRET_KEY is set) 32 bytes, 0600, the same owner; not
//               there yet warns (the server creates it at its first start).
//   DNS         the host name resolves (getaddrinfo, as apps' systems would); a name
//               under .invalid fails without asking (RFC 6761: it never resolves); a
//               public host that resolves only to loopback/private addresses warns.
//   TLS         with TLS files: they load and match (server/tls.h), and the certificate
//               (doctor_report.h certificate_verdict) is not expired (under 14 days
//               warns), names the host, and verifies against the system's authorities
//               (a development host's own certificate may not); with no TLS files and a
//               public host: the certificate https://<host> presents (a proxy's), the
//               same verdict; with neither, on a development host: nothing to check.
//   did.json    GET <origin>/.well-known/did.json is did:web:<host>'s document with its
//               #groundmist_sync service at <origin> (cli/atproto_commands.h).
//   record      the owner's DID document (PLC_URL) names a PDS, whose
//               com.atproto.repo.getRecord of xyz.groundmist.sync/<DID> names this host.
//   WebSocket   a session token for the group xyz.groundmist.doctor, valid 60 s, minted
//               with the data folder's key (or GROUNDMIST_SYNC_SECRET_KEY), opens
//               <ws origin>/?token=… and the automerge-repo join is answered by `peer`
//               (doctor_probe.h). The token is not recorded in server.db (doctor writes
//               nothing in the data folder), so `sessions list` does not show it; the
//               server opens that group's store at the upgrade, so the data folder gains
//               an empty xyz/groundmist/doctor/ the first time.
//
// How the host is reached: https and wss when the settings name TLS files (the server
// then speaks TLS only) or the host is public (a proxy in front); http and ws for a
// development host (localhost, 127.0.0.1, with a port) without TLS files, as the
// server's own did:web document says. A development host's own certificate (a test's,
// self-signed) is trusted for these requests; a public host's must verify against the
// system's authorities, as apps' would.
//
// Every network step has --timeout (default 10 s): each lookup, connection, TLS
// handshake, request and WebSocket step; the PLC and PDS calls have their own bounds
// (atproto/resolver.h: 4 s for a DID document, 15 s for an XRPC call). Nothing is retried.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace gm::cli {

struct DoctorOptions {
  std::optional<std::string> config;
  std::optional<std::string> data_dir;
  double timeout_seconds = 10;
  bool json = false;
  int exit_code = 0;
};

void add_doctor_command(CLI::App& app, DoctorOptions& opts);

// The group the WebSocket check's token opens.
inline constexpr char kDoctorGroup[] = "xyz.groundmist.doctor";

}  // namespace gm::cli
