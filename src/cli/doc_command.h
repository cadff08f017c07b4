// `groundmist-sync doc ...`: inspect and rewrite Automerge files offline.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace gm::cli {

struct DocOptions {
  std::string file;
  std::string out;
  int exit_code = 0;
};

void add_doc_commands(CLI::App& app, DocOptions& opts);

}  // namespace gm::cli
