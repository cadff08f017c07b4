// `groundmist-sync doc ...`: inspect and rewrite Automerge files offline.
//   doc json FILE        the JSON view
//   doc heads FILE       head hashes, one a line
//   doc changes FILE     one change a line: hash actor seq deps (comma-separated)
//   doc save FILE OUT    write a compacted document (one document chunk)
// FILE is any concatenation of Automerge chunks (a saved document, change chunks, or
// an automerge-repo storage blob). A bad file gets a one-line error and exit 1.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace gm::cli {

struct DocOptions {
  std::string file;
  std::string out;
  bool uncompressed = false;
  int exit_code = 0;
};

void add_doc_commands(CLI::App& app, DocOptions& opts);

}  // namespace gm::cli
