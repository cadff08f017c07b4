#include "cli/doc_command.h"

#include <fstream>
#include <iostream>
#include <iterator>

#include "automerge/document.h"

namespace gm::cli {

using automerge::Document;

namespace {

Result<Bytes> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error("cannot open " + path);
  Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return error("cannot read " + path);
  return data;
}

Result<Document> load(const std::string& path) {
  GM_ASSIGN_OR_RETURN(Bytes data, read_file(path));
  if (data.empty()) return error(path + " is empty, not an Automerge file");
  // The owner's own files (e.g. from the data folder): loaded as the server reads them.
  auto doc = Document::load(data, /*trusted=*/true);
  if (!doc) return context(path, doc.error());
  return doc;
}

Status print_json(const DocOptions& o) {
  GM_ASSIGN_OR_RETURN(Document doc, load(o.file));
  std::cout << doc.to_json().dump() << "\n";
  return Status::Ok();
}

Status print_heads(const DocOptions& o) {
  GM_ASSIGN_OR_RETURN(Document doc, load(o.file));
  for (const auto& h : doc.heads()) std::cout << h.hex() << "\n";
  return Status::Ok();
}

Status print_changes(const DocOptions& o) {
  GM_ASSIGN_OR_RETURN(Document doc, load(o.file));
  for (ByteView chunk : doc.changes()) {
    size_t consumed = 0;
    GM_ASSIGN_OR_RETURN(automerge::Chunk c, automerge::parse_chunk(chunk, &consumed));
    GM_ASSIGN_OR_RETURN(automerge::ChangeHeader h, automerge::decode_change_header(c.body));
    std::cout << c.hash.hex() << " " << to_hex(h.actor) << " " << h.seq << " ";
    for (size_t i = 0; i < h.deps.size(); ++i) std::cout << (i ? "," : "") << h.deps[i].hex();
    if (h.deps.empty()) std::cout << "-";
    std::cout << "\n";
  }
  return Status::Ok();
}

Status save(const DocOptions& o) {
  GM_ASSIGN_OR_RETURN(Document doc, load(o.file));
  Bytes out = doc.save(!o.uncompressed);
  std::string tmp = o.out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return error("cannot write " + tmp);
    f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    if (!f) return error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), o.out.c_str()) != 0) return error("cannot rename " + tmp + " to " + o.out);
  return Status::Ok();
}

void add(CLI::App* parent, const char* name, const char* help, DocOptions& opts, Status (*run)(const DocOptions&)) {
  CLI::App* sub = parent->add_subcommand(name, help);
  sub->add_option("FILE", opts.file, "Automerge file")->required();
  if (run == save) {
    sub->add_option("OUT", opts.out, "where to write the document")->required();
    sub->add_flag("--uncompressed", opts.uncompressed, "do not DEFLATE large columns");
  }
  sub->callback([&opts, run] {
    Status s = run(opts);
    if (!s) {
      std::cerr << "groundmist-sync: " << s.error().message << "\n";
      opts.exit_code = 1;
    }
  });
}

}  // namespace

void add_doc_commands(CLI::App& app, DocOptions& opts) {
  CLI::App* doc = app.add_subcommand("doc", "Inspect and rewrite Automerge files");
  doc->require_subcommand(1);
  add(doc, "json", "print the document as JSON", opts, print_json);
  add(doc, "heads", "print the head hashes", opts, print_heads);
  add(doc, "changes", "print one line per change: hash actor seq deps", opts, print_changes);
  add(doc, "save", "write a compacted copy of the document", opts, save);
}

}  // namespace gm::cli
