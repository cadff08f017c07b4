#include "server/metrics.h"

#include <gtest/gtest.h>

namespace gm::server {
namespace {

TEST(Metrics, RendersPerGroupSamples) {
  MetricsRegistry m;
  GroupMetrics& lib = m.group("xyz.groundmist.library");
  lib.connections = 2;
  lib.bytes_in += 100;
  m.group("we\"ird").sync_errors += 3;
  EXPECT_EQ(&lib, &m.group("xyz.groundmist.library"));  // stable reference

  const std::string text = m.render_prometheus();
  EXPECT_NE(text.find("# TYPE groundmist_sync_connections gauge\n"), std::string::npos);
  EXPECT_NE(text.find("groundmist_sync_connections{group=\"xyz.groundmist.library\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("groundmist_sync_bytes_received_total{group=\"xyz.groundmist.library\"} 100\n"),
            std::string::npos);
  EXPECT_NE(text.find("groundmist_sync_sync_errors_total{group=\"we\\\"ird\"} 3\n"), std::string::npos);
  EXPECT_EQ(m.groups(), (std::vector<std::string>{"we\"ird", "xyz.groundmist.library"}));
}

TEST(Metrics, EscapesLabelValues) { EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd"); }

}  // namespace
}  // namespace gm::server
