// groundmist-sync: the server and the owner's tools in one program.
//   serve   run the sync server            (cli/serve_command.h)
//   token   mint a session token           (cli/token_command.h)
//   doc     inspect Automerge files        (cli/doc_command.h)
//   sessions, devices, root               the owner's control of logins (cli/owner_commands.h)
//   publish, unpublish, resolve            the discovery record in the owner's PDS (cli/atproto_commands.h)
//   backup, restore, backup-check          copies of the data folder (cli/backup_command.h)
//   setup, doctor                          write the settings and publish; check it all (cli/setup_command.h,
//                                          cli/doctor_command.h)
// Logs go to stderr so that stdout carries only a command's result.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "atproto/http_client.h"
#include "cli/atproto_commands.h"
#include "cli/backup_command.h"
#include "cli/doc_command.h"
#include "cli/doctor_command.h"
#include "cli/mcp_command.h"
#include "cli/owner_commands.h"
#include "cli/serve_command.h"
#include "cli/setup_command.h"
#include "cli/token_command.h"

namespace {

// The message with control characters escaped (a newline as \x0a): log lines quote
// what clients send (close reasons, paths, error texts), and a client must not be able
// to write a line of its own into the log.
class EscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u != 0x7f) {
        dest.push_back(c);
      } else {
        const char escaped[4] = {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
        dest.append(escaped, escaped + 4);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<EscapedMessage>(); }
};

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("groundmist-sync"));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<EscapedMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %*");
  spdlog::set_formatter(std::move(formatter));
  gm::atproto::init_http();  // once, before any thread starts (libcurl asks for that)

  CLI::App app{"Groundmist Sync: a personal sync server for local-first apps"};
  app.require_subcommand(1);
  app.set_version_flag("--version", GM_VERSION);

  gm::cli::ServeOptions serve;
  gm::cli::add_serve_command(app, serve);
  gm::cli::TokenOptions token;
  gm::cli::add_token_command(app, token);
  gm::cli::DocOptions doc;
  gm::cli::add_doc_commands(app, doc);
  gm::cli::OwnerOptions owner;
  gm::cli::add_owner_commands(app, owner);
  gm::cli::AtprotoOptions atproto;
  gm::cli::add_atproto_commands(app, atproto);
  gm::cli::McpOptions mcp;
  gm::cli::add_mcp_command(app, mcp);
  gm::cli::BackupCommandOptions backup;
  gm::cli::add_backup_commands(app, backup);
  gm::cli::SetupOptions setup;
  gm::cli::add_setup_command(app, setup);
  gm::cli::DoctorOptions doctor;
  gm::cli::add_doctor_command(app, doctor);

  CLI11_PARSE(app, argc, argv);
  for (int code : {serve.exit_code, token.exit_code, doc.exit_code, owner.exit_code, atproto.exit_code, mcp.exit_code,
                   backup.exit_code, setup.exit_code, doctor.exit_code}) {
    if (code != 0) return code;
  }
  return 0;
}
