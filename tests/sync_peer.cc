// A sync peer over stdin/stdout, built on ChangeGraph alone (no op set), for driving
// the C++ sync protocol from the npm interop tests (tests/interop/sync_converge.mjs).
//
// Usage: sync_peer [--no-flags] [--save-concat] [INITIAL_FILE]
//   INITIAL_FILE   chunks to load first (saved document and/or change chunks)
//   --no-flags     never append a flags section (as the server runs), so the other
//                  side only ever sends V1 messages of change chunks
//   --save-concat  whole-document (V2) sends carry every change chunk back to back
//                  (the default without an op set sends only the needed ones)
//
// Wire: each request is   command (1 byte) · payload length (4 bytes, big-endian) · payload
//       each response is  status '.' ok / '!' error · length (4 bytes BE) · payload
// Commands:
//   g  generate a sync message; payload = the message, empty when there is none
//   r  receive the sync message in the payload
//   l  load the chunks in the payload (a local edit)
//   h  heads: n × 32 bytes      c  applied change hashes in application order: n × 32
//   a  every applied change chunk, back to back
//   q  queued change count, decimal text
//   s  the persisted sync state (encode_sync_state)
//   n  new connection: sync state from the payload (decode_sync_state), or fresh if empty
//   x  exit
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "automerge/sync.h"

using namespace gm;
using namespace gm::automerge;

namespace {

bool read_exact(void* buf, size_t n) { return n == 0 || std::fread(buf, 1, n, stdin) == n; }

void respond(char status, ByteView payload) {
  uint8_t header[5] = {static_cast<uint8_t>(status), static_cast<uint8_t>(payload.size() >> 24),
                       static_cast<uint8_t>(payload.size() >> 16), static_cast<uint8_t>(payload.size() >> 8),
                       static_cast<uint8_t>(payload.size())};
  std::fwrite(header, 1, 5, stdout);
  if (!payload.empty()) std::fwrite(payload.data(), 1, payload.size(), stdout);
  std::fflush(stdout);
}

void respond_status(const Status& s) {
  if (s.ok()) {
    respond('.', {});
  } else {
    respond('!', as_bytes(s.error().message));
  }
}

Bytes hash_list(const std::vector<ChangeHash>& hashes) {
  Bytes out;
  for (const ChangeHash& h : hashes) append(out, h.bytes);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  SyncOptions options;
  ChangeGraph graph;
  bool save_concat = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--no-flags") {
      options.send_flags = false;
    } else if (arg == "--save-concat") {
      save_concat = true;
    } else {
      std::ifstream in(arg, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "sync_peer: cannot open %s\n", arg.c_str());
        return 2;
      }
      Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      Status s = graph.load(data);
      if (!s.ok()) {
        std::fprintf(stderr, "sync_peer: loading %s: %s\n", arg.c_str(), s.error().message.c_str());
        return 2;
      }
    }
  }
  if (save_concat) {
    options.save_document = [&graph] {
      Bytes out;
      for (ChangeGraph::Index i = 0; i < graph.size(); ++i) append(out, graph.chunk(i));
      return out;
    };
  }
  SyncState state;

  for (;;) {
    uint8_t header[5];
    if (!read_exact(header, 5)) return 0;
    size_t len = static_cast<size_t>(header[1]) << 24 | static_cast<size_t>(header[2]) << 16 |
                 static_cast<size_t>(header[3]) << 8 | header[4];
    Bytes payload(len);
    if (!read_exact(payload.data(), len)) return 1;
    switch (header[0]) {
      case 'g': {
        auto m = generate_sync_message(graph, state, options);
        respond('.', m ? encode_sync_message(*m) : Bytes{});
        break;
      }
      case 'r':
        respond_status(receive_sync_message(graph, state, payload));
        break;
      case 'l':
        respond_status(graph.load(payload));
        break;
      case 'h':
        respond('.', hash_list(graph.heads()));
        break;
      case 'c':
        respond('.', hash_list(graph.hashes()));
        break;
      case 'a': {
        Bytes out;
        for (ChangeGraph::Index i = 0; i < graph.size(); ++i) append(out, graph.chunk(i));
        respond('.', out);
        break;
      }
      case 'q':
        respond('.', as_bytes(std::to_string(graph.queued_count())));
        break;
      case 's':
        respond('.', encode_sync_state(state));
        break;
      case 'n': {
        if (payload.empty()) {
          state = SyncState{};
          respond('.', {});
          break;
        }
        auto decoded = decode_sync_state(payload);
        if (!decoded.ok()) {
          respond('!', as_bytes(decoded.error().message));
          break;
        }
        state = std::move(*decoded);
        respond('.', {});
        break;
      }
      case 'x':
        respond('.', {});
        return 0;
      default:
        respond('!', as_bytes("unknown command"));
    }
  }
}
