// `groundmist-sync setup [--host HOST] [--handle HANDLE | --did DID] [--app-password PW]
//                        [--config FILE] [--pds URL] [--plc-url URL] [--yes]`:
// the owner's first step on a new server. It asks for (or takes from the flags) the
// public host, the owner's handle and an app password; finds the owner's DID and PDS;
// logs in to the PDS; writes ATPROTO_DID and GROUNDMIST_SYNC_HOST (and PLC_URL when
// --plc-url is given) into the settings file; publishes the discovery record
// xyz.groundmist.sync/<DID> = {"host": HOST} (cli/atproto_commands.h, as `publish`);
// logs out; and prints what to do next (start or restart the server, then
// `groundmist-sync doctor`).
//
// Decisions:
// - The settings file is cli/config_file.h's: --config FILE, else the .deb's
//   /etc/groundmist-sync/groundmist-sync.conf when it exists (run setup with sudo then),
//   else .env in the working folder (what `serve` reads). Every other line is kept, the
//   file is replaced atomically, an existing file keeps its owner and mode, a new one is
//   0600.
// - Prompts only when standard input is a terminal; then each question shows the value
//   the settings already hold, and Enter keeps it. Without a terminal every answer comes
//   from the flags (or the password's variable), and a missing one is an error naming
//   the flag: setup never waits on a pipe.
// - The app password: --app-password, else GROUNDMIST_SYNC_APP_PASSWORD, else
//   ATPROTO_APP_PASSWORD (what `publish` reads), else asked on the terminal with echo
//   off. It is sent to the PDS's createSession and nowhere else: never printed, logged
//   or written to the settings. (--app-password is visible to other users in `ps`;
//   prefer the variable or the prompt.) An app password, not the account's password:
//   it cannot change the account, and can be revoked alone.
// - Nothing is written until the PDS has accepted the password: a wrong password
//   changes nothing. Then the settings are written before the record, so that a record
//   never names a host whose settings were not saved; if publishing fails after that,
//   the error says so and `groundmist-sync publish` finishes the job.
// - Replacing another owner's DID in the settings asks first on a terminal, and needs
//   --yes without one (the server's sessions and grants belong to that owner). On a
//   terminal, --yes skips the final "Go ahead?".
// - The host must be a bare host name apps reach (a port only for localhost and
//   127.0.0.1, development); setup does not check DNS or TLS: `doctor` does.
// Exit status 0 when the settings were written and the record published, else 1.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace gm::cli {

struct SetupOptions {
  std::optional<std::string> host;
  std::optional<std::string> handle;
  std::optional<std::string> did;
  std::optional<std::string> app_password;
  std::optional<std::string> config;
  std::optional<std::string> pds;
  std::optional<std::string> plc_url;
  bool yes = false;
  int exit_code = 0;
};

void add_setup_command(CLI::App& app, SetupOptions& opts);

}  // namespace gm::cli
