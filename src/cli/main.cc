// groundmist-sync: the server and the owner's tools in one program.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/doc_command.h"

int main(int argc, char** argv) {
  CLI::App app{"Groundmist Sync: a personal sync server for local-first apps"};
  app.require_subcommand(1);
  app.set_version_flag("--version", GM_VERSION);

  gm::cli::DocOptions doc;
  gm::cli::add_doc_commands(app, doc);

  CLI11_PARSE(app, argc, argv);
  return doc.exit_code;
}
