#include "cli/doc_command.h"

#include <iostream>

namespace gm::cli {

void add_doc_commands(CLI::App& app, DocOptions& opts) {
  CLI::App* doc = app.add_subcommand("doc", "Inspect Automerge files (document or change chunks)");
  doc->require_subcommand(1);
  for (const char* name : {"json", "heads", "changes"}) {
    CLI::App* sub = doc->add_subcommand(name);
    sub->add_option("FILE", opts.file)->required();
    sub->callback([&opts] {
      std::cerr << "groundmist-sync: not implemented yet\n";
      opts.exit_code = 1;
    });
  }
}

}  // namespace gm::cli
