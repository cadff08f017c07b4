// Counters and gauges served at GET /metrics in the Prometheus text exposition format
// (version 0.0.4): `# HELP`, `# TYPE`, then `name{group="..."} value` lines.
//
// Most numbers are kept per lexicon group. The server counts connections, frames and
// bytes; the repo layer's figures (`documents_loaded`, `sync_errors`, …) are copied in
// by the refresh hook before each render (RepoHandler::refresh_metrics). A
// GroupMetrics reference from MetricsRegistry::group() stays valid for the registry's
// lifetime, so callers may keep it. Counters are atomics: any thread may update them.
#pragma once

#include <atomic>
#include <functional>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace gm::server {

struct GroupMetrics {
  std::atomic<int64_t> connections{0};       // open WebSockets (gauge)
  std::atomic<int64_t> documents_loaded{0};  // documents in memory (gauge; set by the repo layer)
  std::atomic<uint64_t> messages_in{0};      // binary frames received
  std::atomic<uint64_t> messages_out{0};     // binary frames sent
  std::atomic<uint64_t> bytes_in{0};         // payload bytes received
  std::atomic<uint64_t> bytes_out{0};        // payload bytes sent
  std::atomic<uint64_t> sync_errors{0};      // messages the repo layer could not apply
  std::atomic<uint64_t> ephemeral_dropped{0};  // ephemeral messages not relayed to a full socket
  std::atomic<int64_t> disk_bytes{0};          // of the group's document files (gauge)
};

class MetricsRegistry {
 public:
  MetricsRegistry();

  // The metrics of one group, created on first use.
  GroupMetrics& group(std::string_view name);
  // Every group that has been named so far, sorted.
  std::vector<std::string> groups() const;

  // Server-wide counters (not per group).
  std::atomic<uint64_t> upgrades_rejected{0};    // WebSocket upgrades answered 401
  std::atomic<uint64_t> frames_rejected_text{0};  // sockets closed for a text frame
  std::atomic<uint64_t> frames_rejected_size{0};  // sockets closed for an oversized message
  std::atomic<uint64_t> slow_readers_closed{0};   // sockets closed for a full outgoing queue
  std::atomic<uint64_t> http_requests{0};         // plain HTTP requests answered
  std::atomic<uint64_t> tls_handshakes_failed{0};  // TLS connections that never completed a handshake
  std::atomic<int64_t> tls_certificate_expiry{0};  // unix time the served certificate expires (0: no TLS)

  double uptime_seconds() const;
  // Calls the refresh hook, then writes every metric in the Prometheus text format.
  std::string render_prometheus() const;
  // Run before each render, on the rendering thread: for figures kept elsewhere and
  // copied in only when someone asks (the repo layer's per-group counts).
  void set_refresh(std::function<void()> refresh) { refresh_ = std::move(refresh); }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<GroupMetrics>, std::less<>> groups_;
  std::chrono::steady_clock::time_point started_;
  std::function<void()> refresh_;
};

// Escapes a label value for the text format: backslash, double quote and newline.
std::string escape_label_value(std::string_view v);

}  // namespace gm::server
