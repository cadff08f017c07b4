// The C++ side of `make bench` for the Automerge engine; mirrors
// tests/interop/bench/automerge_bench.mjs:
//   automerge_bench run OP FILE ITERS   OP: load | save | json | all | graph
// and prints {"op": OP, "ms": mean milliseconds per iteration}. `graph` is what the
// sync server does with a document chunk (ChangeGraph::load: expand it into its
// changes and hash them, no op set); it has no JS counterpart.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "automerge/change_graph.h"
#include "automerge/document.h"

using gm::automerge::Document;

static gm::Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return gm::Bytes(std::istreambuf_iterator<char>(in), {});
}

static Document load_or_die(gm::ByteView bytes) {
  auto doc = Document::load(bytes, /*trusted=*/true);  // a local file, as `doc` reads it
  if (!doc) {
    std::cerr << "load failed: " << doc.error().message << "\n";
    std::exit(1);
  }
  return std::move(*doc);
}

int main(int argc, char** argv) {
  if (argc < 5 || std::string(argv[1]) != "run") {
    std::cerr << "usage: automerge_bench run load|save|json|all|graph FILE ITERS\n";
    return 2;
  }
  std::string op = argv[2];
  gm::Bytes bytes = read_file(argv[3]);
  int iters = std::stoi(argv[4]);
  std::optional<Document> doc;
  if (op == "save" || op == "json") doc.emplace(load_or_die(bytes));
  size_t sink = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) {
    if (op == "load") {
      sink += load_or_die(bytes).heads().size();
    } else if (op == "save") {
      sink += doc->save().size();
    } else if (op == "json") {
      sink += doc->to_json().dump().size();
    } else if (op == "graph") {
      gm::automerge::ChangeGraph graph;
      if (gm::Status s = graph.load(bytes); !s) {
        std::cerr << "graph load failed: " << s.error().message << "\n";
        return 1;
      }
      sink += graph.size();
    } else if (op == "all") {
      Document a = load_or_die(bytes);
      Document b = load_or_die(a.save());
      sink += b.to_json().dump().size();
    } else {
      std::cerr << "unknown op " << op << "\n";
      return 2;
    }
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / iters;
  std::printf("{\"op\":\"%s\",\"ms\":%.3f,\"sink\":%zu}\n", op.c_str(), ms, sink);
  return 0;
}
