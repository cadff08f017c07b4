// `groundmist-sync backup OUT [--data DIR] [--verify]`: writes a consistent copy of the
// data folder (its groups' documents, the state database, the secret key, set-aside files)
// to the new folder OUT, while the server runs; with --verify, checks it as restore would.
// `groundmist-sync restore BACKUP
// --data DIR`: puts a backup back into DIR, which must be absent or empty. `groundmist-sync
// backup-check BACKUP`: checks a backup without restoring it. The formats and the
// guarantees: cli/backup.h. A summary goes to stdout (JSON with --json); errors to stderr,
// exit status 1.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "cli/serve_command.h"

namespace gm::cli {

struct BackupCommandOptions {
  CommonServerFlags common;
  std::string path;  // OUT for backup, BACKUP for restore and backup-check
  bool verify = false;
  bool json = false;
  int exit_code = 0;
};

void add_backup_commands(CLI::App &app, BackupCommandOptions &opts);

}  // namespace gm::cli
