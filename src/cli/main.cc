// groundmist-sync: the server and the owner's tools in one program.
//   serve   run the sync server            (cli/serve_command.h)
//   token   mint a session token           (cli/token_command.h)
//   doc     inspect Automerge files        (cli/doc_command.h)
// Logs go to stderr so that stdout carries only a command's result.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "cli/doc_command.h"
#include "cli/serve_command.h"
#include "cli/token_command.h"

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("groundmist-sync"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  CLI::App app{"Groundmist Sync: a personal sync server for local-first apps"};
  app.require_subcommand(1);
  app.set_version_flag("--version", GM_VERSION);

  gm::cli::ServeOptions serve;
  gm::cli::add_serve_command(app, serve);
  gm::cli::TokenOptions token;
  gm::cli::add_token_command(app, token);
  gm::cli::DocOptions doc;
  gm::cli::add_doc_commands(app, doc);

  CLI11_PARSE(app, argc, argv);
  return serve.exit_code != 0 ? serve.exit_code : token.exit_code != 0 ? token.exit_code : doc.exit_code;
}
