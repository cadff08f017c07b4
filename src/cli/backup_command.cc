#include "cli/backup_command.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/backup.h"

namespace gm::cli {
namespace {

std::string human_bytes(uint64_t n) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

nlohmann::json problems_json(const std::vector<DocumentProblem> &problems) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto &p : problems) out.push_back({{"document", p.document}, {"reason", p.reason}});
  return out;
}

void print_problems(const std::vector<DocumentProblem> &problems, const char *consequence) {
  for (const auto &p : problems) std::cerr << "document " << p.document << " does not load: " << p.reason << "\n";
  if (!problems.empty()) std::cerr << problems.size() << " document(s) do not load; " << consequence << "\n";
}

int fail(const char *command, const std::string &message) {
  std::cerr << "groundmist-sync " << command << ": " << message << "\n";
  return 1;
}

int run_backup(const BackupCommandOptions &opts) {
  auto config = load_server_config(opts.common, ".env", /*read_port=*/false);
  if (!config.ok()) return fail("backup", config.error().message);
  BackupOptions options;
  options.data_dir = config->data_dir;
  options.out = opts.path;
  options.verify = opts.verify;
  options.server_version = GM_VERSION;
  auto summary = write_backup(options);
  if (!summary.ok()) return fail("backup", summary.error().message);
  const BackupSummary &s = *summary;
  if (opts.json) {
    std::cout << nlohmann::json{{"out", s.out.string()},
                                {"groups", s.groups},
                                {"documents", s.documents},
                                {"files", s.files},
                                {"bytes", s.bytes},
                                {"database", s.database},
                                {"secretKey", s.secret_key},
                                {"repeatedPasses", s.repeated_passes},
                                {"skipped", s.skipped},
                                {"verified", opts.verify},
                                {"problems", problems_json(s.problems)}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "backup written to " << s.out.string() << ": " << s.groups.size() << " group(s), " << s.documents
              << " document(s), " << s.files << " file(s), " << human_bytes(s.bytes) << "\n";
    for (const auto &g : s.groups) std::cout << "  group " << g << "\n";
    std::cout << "  server state: " << (s.database ? "server.db" : "no server.db")
              << (s.secret_key ? ", secret.key" : "") << "\n";
  }
  if (!s.secret_key && config->secret_key.empty() == false) {
    std::cerr << "note: the session-token secret comes from "
                 "GROUNDMIST_SYNC_SECRET_KEY, not a file: it is not in the "
                 "backup; keep it elsewhere, or tokens issued so far stop "
                 "working after a restore\n";
  }
  for (const auto &k : s.skipped) std::cerr << "note: skipped " << k << " (not a regular file or folder)\n";
  if (opts.verify) {
    print_problems(s.problems,
                   "they were so in the data folder too (the "
                   "server sets such files aside)");
    if (!s.problems.empty()) return 1;
    if (!opts.json)
      std::cout << "  verified: every file matches the manifest, every "
                   "document loads\n";
  }
  return 0;
}

void print_restore(const RestoreSummary &s, bool json, const char *verb) {
  if (json) {
    std::cout << nlohmann::json{{"dataDir", s.data_dir.string()},
                                {"createdAt", s.created_at},
                                {"serverVersion", s.server_version},
                                {"groups", s.groups},
                                {"documents", s.documents},
                                {"files", s.files},
                                {"bytes", s.bytes},
                                {"problems", problems_json(s.problems)}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << verb << " backup of " << (s.created_at.empty() ? "unknown date" : s.created_at) << " (groundmist-sync "
            << (s.server_version.empty() ? "?" : s.server_version) << "): " << s.groups.size() << " group(s), "
            << s.documents << " document(s), " << s.files << " file(s), " << human_bytes(s.bytes) << "\n";
}

int run_restore(const BackupCommandOptions &opts) {
  if (!opts.common.data_dir) return fail("restore", "--data DIR is required: the new data folder (absent or empty)");
  auto summary = restore_backup({.backup = opts.path, .data_dir = *opts.common.data_dir});
  if (!summary.ok()) return fail("restore", summary.error().message);
  print_restore(*summary, opts.json, "restored");
  if (!opts.json)
    std::cout << "  into " << summary->data_dir.string() << "; start it with: groundmist-sync serve --data "
              << summary->data_dir.string() << "\n";
  print_problems(summary->problems,
                 "restored as they were backed up; the server sets them aside "
                 "when it reads them");
  return 0;
}

int run_check(const BackupCommandOptions &opts) {
  auto summary = check_backup(opts.path);
  if (!summary.ok()) return fail("backup-check", summary.error().message);
  print_restore(*summary, opts.json, "intact");
  print_problems(summary->problems, "they were so in the data folder the backup was made from");
  return summary->problems.empty() ? 0 : 1;
}

}  // namespace

void add_backup_commands(CLI::App &app, BackupCommandOptions &opts) {
  CLI::App *backup = app.add_subcommand("backup", "Copy the data folder to a new folder while the server runs");
  backup
      ->add_option("out", opts.path,
                   "New folder for the backup (absent or empty, outside the "
                   "data folder)")
      ->required();
  backup->add_option("--data", opts.common.data_dir, "Data folder (env DATA_DIR, default .data)");
  backup->add_flag("--verify", opts.verify, "Check the backup afterwards as restore would");
  backup->add_flag("--json", opts.json, "Print the summary as JSON");
  backup->callback([&opts] { opts.exit_code = run_backup(opts); });

  CLI::App *restore = app.add_subcommand("restore", "Put a backup back into a new, empty data folder");
  restore->add_option("backup", opts.path, "Folder written by `groundmist-sync backup`")->required();
  restore->add_option("--data", opts.common.data_dir, "The data folder to create (absent or empty)");
  restore->add_flag("--json", opts.json, "Print the summary as JSON");
  restore->callback([&opts] { opts.exit_code = run_restore(opts); });

  CLI::App *check = app.add_subcommand("backup-check", "Check a backup against its manifest without restoring it");
  check->add_option("backup", opts.path, "Folder written by `groundmist-sync backup`")->required();
  check->add_flag("--json", opts.json, "Print the summary as JSON");
  check->callback([&opts] { opts.exit_code = run_check(opts); });
}

}  // namespace gm::cli
