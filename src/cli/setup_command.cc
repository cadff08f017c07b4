#include "cli/setup_command.h"

#include <openssl/crypto.h>
#include <sys/prctl.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <vector>

#include "atproto/did.h"
#include "cli/atproto_commands.h"
#include "cli/config_file.h"
#include "server/config.h"

namespace gm::cli {
namespace {

namespace fs = std::filesystem;

// A line typed on the terminal (with echo); end of input is an error.
Result<std::string> read_line() {
  std::string line;
  if (!std::getline(std::cin, line)) return error("no answer (end of input)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const size_t start = line.find_first_not_of(" \t");
  if (start == std::string::npos) return std::string();
  return line.substr(start, line.find_last_not_of(" \t") - start + 1);
}

// Asks on stderr; Enter keeps `current` (shown in brackets) when there is one.
Result<std::string> ask(const std::string& question, const std::string& current) {
  for (;;) {
    std::cerr << question << (current.empty() ? "" : " [" + current + "]") << ": " << std::flush;
    GM_ASSIGN_OR_RETURN(std::string answer, read_line());
    if (!answer.empty()) return answer;
    if (!current.empty()) return current;
  }
}

Result<bool> confirm(const std::string& question, bool default_yes) {
  for (;;) {
    std::cerr << question << (default_yes ? " [Y/n] " : " [y/N] ") << std::flush;
    GM_ASSIGN_OR_RETURN(std::string answer, read_line());
    if (answer.empty()) return default_yes;
    if (answer == "y" || answer == "Y" || answer == "yes") return true;
    if (answer == "n" || answer == "N" || answer == "no") return false;
  }
}

std::optional<std::string> process_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// The host as apps reach it: valid, and with a port only on a development host (what
// `serve` accepts for --public-host).
Result<std::string> check_host(const std::string& input) {
  auto host = validate_sync_host(input);
  if (!host.ok()) return host.error();
  if (host->find(':') != std::string::npos && !is_development_host(*host)) {
    return error("\"" + *host +
                 "\": atproto names a did:web server by its host name alone (a port only for localhost), so give "
                 "the name alone and serve it on port 443 (behind TLS)");
  }
  return host;
}

int run_setup(const SetupOptions& opts) {
  auto fail = [](const std::string& message) {
    std::cerr << "groundmist-sync setup: " << message << "\n";
    return 1;
  };
  const bool interactive = ::isatty(STDIN_FILENO) == 1;
  const ConfigFile file = choose_config_file(opts.config);
  std::error_code ec;
  const fs::path absolute = fs::absolute(file.path, ec);
  const std::string file_path = ec ? file.path : absolute.lexically_normal().string();
  auto text = read_config_text(file.path);
  if (!text.ok()) return fail(text.error().message);
  // Before any question: a file setup could not rewrite (or give back to its owner) is
  // said now, not after the password and the log-in.
  if (Status s = check_config_writable(file.path); !s.ok()) return fail(s.error().message + "; nothing was changed");
  // The app password will be in this process's memory: no core dump or ptrace by others.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // What the settings hold now: the file's values (and, for .env, the shell's first, as
  // `serve` reads them).
  server::Environment::Getenv getenv;
  if (file.service_file) getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  const server::Environment settings(server::parse_dotenv(text->text), getenv);
  // The owner the server runs with now: the file's, or a flag's in GROUNDMIST_SYNC_ARGS.
  auto running = load_settings(file);
  const std::string current_owner =
      running.ok() ? running->config.owner_did : settings.get("ATPROTO_DID").value_or("");
  std::cerr << "settings: " << file_path << (text->exists ? "" : " (new)") << "\n";

  // 1. The public host.
  std::string host_input;
  if (opts.host) {
    host_input = *opts.host;
  } else if (interactive) {
    auto answer = ask("Public host name of this server, as apps reach it (e.g. sync.example.com)",
                      settings.get("GROUNDMIST_SYNC_HOST").value_or(""));
    if (!answer.ok()) return fail(answer.error().message);
    host_input = *answer;
  } else {
    return fail("give --host HOST: the server's public host name, e.g. sync.example.com");
  }
  auto host = check_host(host_input);
  if (!host.ok()) return fail("host: " + host.error().message);

  // 2. The owner's account.
  AtprotoOptions account_query;
  account_query.pds = opts.pds.value_or("");
  account_query.plc_url = opts.plc_url.value_or("");
  if (opts.did) {
    account_query.did = *opts.did;
  } else if (opts.handle) {
    account_query.handle = *opts.handle;
  } else if (interactive) {
    auto answer = ask("Your atproto handle (e.g. alice.bsky.social)", "");
    if (!answer.ok()) return fail(answer.error().message);
    (answer->starts_with("did:") ? account_query.did : account_query.handle) = *answer;
  } else {
    return fail("give --handle HANDLE (or --did DID): the atproto account that owns this server");
  }
  auto account = find_account(account_query, settings);
  if (!account.ok()) return fail(account.error().message);
  std::cerr << "owner: " << account->did << " (PDS " << account->pds << ")\n";

  // 3. The app password: never echoed, printed, logged or written.
  std::string password;
  if (opts.app_password) {
    password = *opts.app_password;
  } else if (auto v = process_env("GROUNDMIST_SYNC_APP_PASSWORD")) {
    password = *v;
  } else if (auto v = process_env("ATPROTO_APP_PASSWORD")) {
    password = *v;
  } else if (interactive) {
    auto typed = read_hidden_line("App password for " + account->identifier +
                                  " (Bluesky: Settings > Privacy and security > App passwords): ");
    if (!typed.ok()) return fail("no app password given");
    password = std::move(typed).value();
  } else {
    return fail("give an app password of " + account->identifier +
                " in GROUNDMIST_SYNC_APP_PASSWORD (or --app-password): standard input is not a terminal to ask "
                "for it");
  }

  // 4. What will be done.
  std::vector<std::pair<std::string, std::string>> values = {{"ATPROTO_DID", account->did},
                                                             {"GROUNDMIST_SYNC_HOST", *host}};
  if (opts.plc_url) values.emplace_back("PLC_URL", *opts.plc_url);
  auto new_text = set_config_values(text->text, values);
  if (!new_text.ok()) return fail(new_text.error().message);
  // What the server would run with once the file says so: a flag in GROUNDMIST_SYNC_ARGS
  // or (for .env) the shell's environment wins over the file's line, and setup would
  // publish a host the server does not use (review). Said before anything is changed.
  if (auto after = load_settings(file, nullptr, *new_text); after.ok()) {
    std::string overrides;
    for (const std::string& o : after->overridden) overrides += (overrides.empty() ? "" : ", ") + o;
    if (after->config.owner_did != account->did || after->config.public_host != *host) {
      return fail("the server would still run with owner " + after->config.owner_did + " and host " +
                  after->config.public_host + ", not " + account->did + " and " + *host + ": " +
                  (overrides.empty() ? std::string("the environment (ATPROTO_DID, GROUNDMIST_SYNC_HOST) says so")
                                     : overrides) +
                  "; change that first. Nothing was changed");
    }
  }
  std::cerr << "will write to " << file_path << ":\n";
  for (const auto& [key, value] : values) std::cerr << "  " << key << "=" << value << "\n";
  std::cerr << "and publish " << *host << " at " << discovery_record_uri(account->did) << "\n";
  if (!current_owner.empty() && current_owner != account->did) {
    const std::string replacing =
        "the settings name another owner, " + current_owner + " (the server's sessions and grants are theirs)";
    if (!opts.yes) {
      if (!interactive) return fail(replacing + ": give --yes to replace it by " + account->did);
      auto yes = confirm("Note: " + replacing + ". Replace it by " + account->did + "?", false);
      if (!yes.ok()) return fail(yes.error().message);
      if (!*yes) return fail("nothing changed");
    }
  } else if (interactive && !opts.yes) {
    auto yes = confirm("Go ahead?", true);
    if (!yes.ok()) return fail(yes.error().message);
    if (!*yes) return fail("nothing changed");
  }

  // 5. Log in first: a wrong password changes nothing. Then the settings, then the record.
  auto session = log_in(*account, password);
  OPENSSL_cleanse(password.data(), password.size());
  if (!session.ok()) return fail(session.error().message + "; nothing was changed");
  if (Status s = write_config_file(file.path, *new_text, holds_secret(server::parse_dotenv(*new_text))); !s.ok()) {
    log_out(*account, *session);
    return fail(s.error().message + "; the record was not published");
  }
  auto uri = put_discovery_record(*account, *session, *host);
  log_out(*account, *session);
  std::cout << "wrote ATPROTO_DID=" << account->did << " and GROUNDMIST_SYNC_HOST=" << *host
            << (opts.plc_url ? " and PLC_URL=" + *opts.plc_url : "") << " to " << file_path << "\n";
  if (!uri.ok()) {
    return fail(uri.error().message + "; the settings are written: publish with `groundmist-sync publish --host " +
                *host + " --did " + account->did + " --pds " + account->pds + "`");
  }
  std::cout << "published " << *host << " at " << *uri << "\n";

  // 6. What next.
  const std::string doctor = file.system   ? "sudo -u groundmist-sync groundmist-sync doctor"
                             : opts.config ? "groundmist-sync doctor --config " + file_path
                                           : "groundmist-sync doctor   (in " + absolute.parent_path().string() + ")";
  std::cout << "next:\n";
  if (file.system) {
    std::cout << "  1. sudo systemctl restart groundmist-sync   (it reads the settings when it starts)\n";
  } else {
    std::cout << "  1. start the server, or restart it to read the settings: groundmist-sync serve"
              << (opts.config ? " (with these settings in its environment, or as its .env)" : "   (in this folder)")
              << "\n";
  }
  if (!is_development_host(*host)) {
    std::cout << "  2. " << host->substr(0, host->find(':'))
              << " must resolve to this machine (a DNS A/AAAA record) and port 443 serve TLS: Caddy in front, or "
                 "GROUNDMIST_SYNC_TLS_CERT/_KEY (docs/deploy.md)\n";
  }
  std::cout << "  " << (is_development_host(*host) ? "2" : "3") << ". check it all: " << doctor << "\n";
  return 0;
}

}  // namespace

void add_setup_command(CLI::App& app, SetupOptions& opts) {
  CLI::App* cmd = app.add_subcommand(
      "setup", "Write the server's settings (owner, public host) and publish its host in your PDS; asks what it needs");
  cmd->add_option("--host", opts.host, "The server's public host name, e.g. sync.example.com");
  CLI::Option* handle = cmd->add_option("--handle", opts.handle, "Your atproto handle, e.g. alice.bsky.social");
  CLI::Option* did = cmd->add_option("--did", opts.did, "Your DID instead of a handle, e.g. did:plc:...");
  handle->excludes(did);
  cmd->add_option("--app-password", opts.app_password,
                  "An app password of your account (better: env GROUNDMIST_SYNC_APP_PASSWORD, or the prompt; "
                  "never written anywhere)");
  cmd->add_option("--config", opts.config,
                  "The settings file to write (default: /etc/groundmist-sync/groundmist-sync.conf if it exists, else "
                  ".env here)");
  cmd->add_option("--pds", opts.pds, "Your PDS, e.g. https://bsky.social (default: from your DID document)");
  cmd->add_option("--plc-url", opts.plc_url,
                  "PLC directory (default: PLC_URL from the settings, else https://plc.directory); also written as "
                  "PLC_URL");
  cmd->add_flag("--yes,-y", opts.yes, "Do not ask for confirmation (needed to replace another owner's DID)");
  cmd->callback([&opts] { opts.exit_code = run_setup(opts); });
}

}  // namespace gm::cli
