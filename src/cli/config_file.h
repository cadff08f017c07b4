// The settings file `setup` writes and `doctor` reads: which file, how it is edited, and
// the settings a server started from it would run with.
//
// Which file (choose_config_file):
//   --config FILE                               that file, read as a service reads its
//                                               EnvironmentFile: its values alone
//   else /etc/groundmist-sync/groundmist-sync.conf, if it exists (the .deb's; the same,
//                                               and DATA_DIR defaults to
//                                               /var/lib/groundmist-sync, as the unit sets)
//   else .env in the working folder             what `serve` reads: the environment first,
//                                               then .env (server/config.h)
// In the two file modes the flags the unit passes from GROUNDMIST_SYNC_ARGS that stand for
// a setting (--data, --port, --owner, --public-host, --plc-url, --tls-cert, --tls-key)
// override it, as they do for the service; a relative path (DATA_DIR, the TLS files) is
// taken from the file's folder (the .deb's: /var/lib/groundmist-sync, the unit's
// WorkingDirectory), where a server started beside its .env would take it.
//
// Editing (set_config_values): the text keeps every line; for each key set, the last line
// that assigns it (the one that wins, for dotenv and systemd alike) becomes KEY=VALUE,
// keeping a leading "export "; a key not assigned yet goes after its commented-out
// example ("#KEY=...", as the .deb's file has), else at the end. Values are written
// unquoted (the .deb's file says why: `docker --env-file` would keep the quotes), so only
// characters that need no quoting are accepted: letters, digits and . _ : % / @ + -.
//
// Writing (write_config_file): a temp file beside it, flushed and renamed over it, the
// folder flushed (storage/durable_file.h), so a crash leaves the old file or the new one.
// An existing file keeps its owner, group and mode (the .deb's is root:groundmist-sync
// 0640), except that when it holds a secret (GROUNDMIST_SYNC_SECRET_KEY, anything named
// *PASSWORD* or *SECRET*) nobody else may read it: the bits for others are dropped. A new
// file is 0600.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/config.h"
#include "util/result.h"

namespace gm::cli {

inline constexpr char kSystemConfigFile[] = "/etc/groundmist-sync/groundmist-sync.conf";
inline constexpr char kSystemDataDir[] = "/var/lib/groundmist-sync";

struct ConfigFile {
  std::string path;
  // Read as a service's EnvironmentFile (--config, the .deb's file): the file alone, and
  // GROUNDMIST_SYNC_ARGS; otherwise as `serve` reads .env: the environment first.
  bool service_file = false;
  bool system = false;  // the .deb's file
};

// `flag` is --config; `system_file` is kSystemConfigFile but in tests.
ConfigFile choose_config_file(const std::optional<std::string>& flag,
                              const std::string& system_file = kSystemConfigFile);

// A value set_config_values may write unquoted, or an error naming the key and what to do.
Status check_config_value(std::string_view key, std::string_view value);

// `text` with each (key, value) set as described above.
Result<std::string> set_config_values(std::string_view text,
                                      const std::vector<std::pair<std::string, std::string>>& values);

// True when `values` holds a non-empty secret (GROUNDMIST_SYNC_SECRET_KEY, *PASSWORD*,
// *SECRET*): such a file must not be readable by others.
bool holds_secret(const server::EnvMap& values);

// Reads `path` (absent: an empty text and `exists` false).
struct ConfigText {
  std::string text;
  bool exists = false;
};
Result<ConfigText> read_config_text(const std::string& path);

// Writes `text` to `path` atomically, with the owner and mode rules above. `secret` is
// holds_secret of the new text.
Status write_config_file(const std::string& path, const std::string& text, bool secret);
// Whether write_config_file could replace `path` and give it back to its owner, asked
// before anything else is done (setup asks before it logs in): the folder must be
// writable, and a file of another user's only root may rewrite.
Status check_config_writable(const std::string& path);

// The flags of GROUNDMIST_SYNC_ARGS that stand for settings, as (flag, value) in order:
// "--host 127.0.0.1 --public-host=a.example --trust-proxy" gives {"--public-host",
// "a.example"} (and --host, which is no setting here, is left out). Split at blanks, as
// systemd splits $VAR; a setting flag without its value is an error.
Result<std::vector<std::pair<std::string, std::string>>> setting_flags(std::string_view args);

// The settings a server started from `file` would run with (PORT, DATA_DIR, owner,
// public host, PLC, TLS files, secret), and what the file itself holds.
struct LoadedSettings {
  server::ServerConfig config;
  server::EnvMap file_values;  // the file's own KEY=VALUE lines (empty if it does not exist)
  bool file_exists = false;
  std::vector<std::string> overridden;  // "--public-host from GROUNDMIST_SYNC_ARGS", for the report
};
// `getenv` replaces the process environment in tests (.env mode only). With `new_text`,
// what the server would run with were the file to hold that text (setup, before it
// writes).
Result<LoadedSettings> load_settings(const ConfigFile& file, server::Environment::Getenv getenv = nullptr,
                                     const std::optional<std::string>& new_text = std::nullopt);

}  // namespace gm::cli
