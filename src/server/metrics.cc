#include "server/metrics.h"

#include <cstdio>

namespace gm::server {

MetricsRegistry::MetricsRegistry() : started_(std::chrono::steady_clock::now()) {}

GroupMetrics& MetricsRegistry::group(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) it = groups_.emplace(std::string(name), std::make_unique<GroupMetrics>()).first;
  return *it->second;
}

std::vector<std::string> MetricsRegistry::groups() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  out.reserve(groups_.size());
  for (const auto& [name, m] : groups_) out.push_back(name);
  return out;
}

double MetricsRegistry::uptime_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, std::string_view labels, int64_t value) {
  out += name;
  out += labels;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

std::string MetricsRegistry::render_prometheus() const {
  if (refresh_) refresh_();
  std::string out;
  out.reserve(2048);

  char uptime[64];
  std::snprintf(uptime, sizeof uptime, "%.3f", uptime_seconds());
  header(out, "groundmist_sync_uptime_seconds", "gauge", "Seconds since the server started.");
  out += "groundmist_sync_uptime_seconds ";
  out += uptime;
  out += '\n';

  struct Global {
    const char* name;
    const char* help;
    const std::atomic<uint64_t>* value;
  };
  const Global globals[] = {
      {"groundmist_sync_http_requests_total", "Plain HTTP requests answered.", &http_requests},
      {"groundmist_sync_upgrades_rejected_total", "WebSocket upgrades refused with 401.", &upgrades_rejected},
      {"groundmist_sync_text_frames_rejected_total", "Sockets closed for sending a text frame.",
       &frames_rejected_text},
      {"groundmist_sync_oversized_frames_rejected_total", "Sockets closed for a message over the size limit.",
       &frames_rejected_size},
      {"groundmist_sync_slow_readers_closed_total", "Sockets closed because their outgoing queue was full.",
       &slow_readers_closed},
      {"groundmist_sync_tls_handshakes_failed_total",
       "TLS connections closed without a completed handshake (timeout, plain HTTP, no shared cipher, ...).",
       &tls_handshakes_failed},
  };
  for (const Global& g : globals) {
    header(out, g.name, "counter", g.help);
    sample(out, g.name, "", static_cast<int64_t>(g.value->load(std::memory_order_relaxed)));
  }

  if (const int64_t expiry = tls_certificate_expiry.load(std::memory_order_relaxed); expiry != 0) {
    header(out, "groundmist_sync_tls_certificate_expiry_timestamp_seconds", "gauge",
           "Unix time at which the served TLS certificate expires (alert well before it).");
    sample(out, "groundmist_sync_tls_certificate_expiry_timestamp_seconds", "", expiry);
  }

  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, const GroupMetrics*>> rows;
  rows.reserve(groups_.size());
  for (const auto& [name, m] : groups_) rows.emplace_back("{group=\"" + escape_label_value(name) + "\"}", m.get());

  struct PerGroup {
    const char* name;
    const char* type;
    const char* help;
    int64_t (*read)(const GroupMetrics&);
  };
  const PerGroup per_group[] = {
      {"groundmist_sync_connections", "gauge", "Open WebSocket connections.",
       [](const GroupMetrics& m) { return m.connections.load(std::memory_order_relaxed); }},
      {"groundmist_sync_documents_loaded", "gauge", "Documents held in memory.",
       [](const GroupMetrics& m) {
         return m.documents_loaded.load(std::memory_order_relaxed);
       }},
      {"groundmist_sync_messages_received_total", "counter", "WebSocket messages received.",
       [](const GroupMetrics& m) { return static_cast<int64_t>(m.messages_in.load(std::memory_order_relaxed)); }},
      {"groundmist_sync_messages_sent_total", "counter", "WebSocket messages sent.",
       [](const GroupMetrics& m) { return static_cast<int64_t>(m.messages_out.load(std::memory_order_relaxed)); }},
      {"groundmist_sync_bytes_received_total", "counter", "WebSocket payload bytes received.",
       [](const GroupMetrics& m) { return static_cast<int64_t>(m.bytes_in.load(std::memory_order_relaxed)); }},
      {"groundmist_sync_bytes_sent_total", "counter", "WebSocket payload bytes sent.",
       [](const GroupMetrics& m) { return static_cast<int64_t>(m.bytes_out.load(std::memory_order_relaxed)); }},
      {"groundmist_sync_sync_errors_total", "counter", "Messages the repo layer could not apply.",
       [](const GroupMetrics& m) { return static_cast<int64_t>(m.sync_errors.load(std::memory_order_relaxed)); }},
      {"groundmist_sync_disk_bytes", "gauge", "Bytes of the group's document files (as counted since start).",
       [](const GroupMetrics& m) { return m.disk_bytes.load(std::memory_order_relaxed); }},
      {"groundmist_sync_ephemeral_dropped_total", "counter",
       "Ephemeral messages not relayed because the receiving socket's queue was filling up.",
       [](const GroupMetrics& m) { return static_cast<int64_t>(m.ephemeral_dropped.load(std::memory_order_relaxed)); }},
  };
  for (const PerGroup& p : per_group) {
    header(out, p.name, p.type, p.help);
    for (const auto& [labels, m] : rows) sample(out, p.name, labels, p.read(*m));
  }
  return out;
}

}  // namespace gm::server
