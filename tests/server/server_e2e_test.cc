// End-to-end tests of the network layer: a real Server on 127.0.0.1 (free port, own
// io thread) with a test ConnectionHandler, driven by blocking Beast clients.
//
// Tokens: the injected verifier accepts "good:<group>" and refuses everything else, so
// these tests do not depend on the auth part's token format.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/server.h"

namespace gm::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Echoes every message; "flood:N:SIZE" sends N messages of SIZE bytes; "close:WHY" sends
// "bye" then closes with WHY.
class TestHandler : public ConnectionHandler {
 public:
  void on_open(std::shared_ptr<PeerConnection> peer) override {
    std::lock_guard lock(mu);
    ++opened;
    last_group = peer->group();
    peers.push_back(std::move(peer));
  }
  void on_message(PeerConnection& peer, ByteView frame) override {
    const std::string text(as_string(frame));
    if (text.rfind("flood:", 0) == 0) {
      const size_t colon = text.find(':', 6);
      const int count = std::stoi(text.substr(6, colon - 6));
      const size_t size = std::stoul(text.substr(colon + 1));
      for (int i = 0; i < count; ++i) {
        if (!peer.send(Bytes(size, 'x'))) break;
      }
    } else if (text.rfind("close:", 0) == 0) {
      peer.send(Bytes{'b', 'y', 'e'});
      peer.close(text.substr(6));
    } else {
      peer.send(Bytes(frame.begin(), frame.end()));
    }
  }
  void on_close(PeerConnection& peer) override {
    std::lock_guard lock(mu);
    ++closed;
    std::erase_if(peers, [&](const auto& p) { return p.get() == &peer; });
  }
  void flush() override { flushed = true; }

  std::mutex mu;
  int opened = 0;
  int closed = 0;
  std::string last_group;
  std::vector<std::shared_ptr<PeerConnection>> peers;
  std::atomic<bool> flushed{false};
};

Result<PeerIdentity> test_verifier(std::string_view token) {
  if (token.rfind("good:", 0) != 0) return error("not a test token");
  PeerIdentity id;
  id.group = std::string(token.substr(5));
  id.subject = "did:example:owner";
  id.session_id = "s1";
  id.expires_at = 4102444800;
  return id;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start(ServerConfig{}); }

  void start(ServerConfig config) {
    config.host = "127.0.0.1";
    config.port = 0;
    config.version = "test";
    if (config.max_frame_bytes == ServerConfig::kDefaultMaxFrameBytes) config.max_frame_bytes = 4096;
    server_ = std::make_unique<Server>(config, handler_, test_verifier, metrics_);
    auto port = server_->listen();
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
    thread_ = std::thread([this] { server_->run(false); });
  }

  void restart(ServerConfig config) {
    stop();
    handler_.flushed = false;
    start(std::move(config));
  }

  void stop() {
    if (!thread_.joinable()) return;
    server_->stop();
    thread_.join();
    server_.reset();
  }

  void TearDown() override { stop(); }

  http::response<http::string_body> get(const std::string& target, http::verb method = http::verb::get) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::origin, "https://app.example");
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.skip(method == http::verb::head);
    http::read(stream, buffer, parser);
    return parser.release();
  }

  // Sends a raw upgrade request and returns everything the server answers until it
  // closes the connection.
  std::string raw_upgrade(const std::string& target) {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    const std::string request = "GET " + target +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    std::string answer;
    beast::error_code ec;
    char chunk[1024];
    for (;;) {
      const size_t n = socket.read_some(asio::buffer(chunk), ec);
      if (ec) break;
      answer.append(chunk, n);
    }
    return answer;
  }

  struct Client {
    asio::io_context io;
    websocket::stream<beast::tcp_stream> ws{io};
  };

  std::unique_ptr<Client> connect(const std::string& token) {
    auto c = std::make_unique<Client>();
    beast::get_lowest_layer(c->ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    c->ws.handshake("127.0.0.1", "/?token=" + token);
    c->ws.binary(true);
    return c;
  }

  static std::string read_text(Client& c, beast::error_code& ec) {
    beast::flat_buffer buffer;
    c.ws.read(buffer, ec);
    return beast::buffers_to_string(buffer.data());
  }

  // Waits until `pred` holds (the server runs on another thread).
  template <class Pred>
  static bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred();
  }

  TestHandler handler_;
  MetricsRegistry metrics_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

TEST_F(ServerTest, RootAnswersLikeThePrototype) {
  auto res = get("/");
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "\xF0\x9F\x91\x8D Groundmist personal sync server is running");
  EXPECT_EQ(res[http::field::content_type], "text/html; charset=utf-8");
  // No CORS here: only the login routes (added by the auth part) carry it.
  EXPECT_EQ(res[http::field::access_control_allow_origin], "");

  auto head = get("/", http::verb::head);
  EXPECT_EQ(head.result(), http::status::ok);
  EXPECT_TRUE(head.body().empty());
}

TEST_F(ServerTest, HealthzAndMetrics) {
  metrics_.group("xyz.groundmist.library").documents_loaded = 3;
  auto health = get("/healthz");
  ASSERT_EQ(health.result(), http::status::ok);
  auto json = nlohmann::json::parse(health.body());
  EXPECT_EQ(json["status"], "ok");
  EXPECT_EQ(json["version"], "test");
  EXPECT_TRUE(json["uptime"].is_number_integer());
  EXPECT_FALSE(json.contains("groups"));  // the owner's group names are not public

  auto metrics = get("/metrics");
  ASSERT_EQ(metrics.result(), http::status::ok);
  EXPECT_NE(metrics.body().find("groundmist_sync_documents_loaded{group=\"xyz.groundmist.library\"} 3\n"),
            std::string::npos);
}

TEST_F(ServerTest, UnknownPathIs404AndPreflightWorks) {
  EXPECT_EQ(get("/nope").result(), http::status::not_found);
  EXPECT_EQ(get("/metrics", http::verb::post).result(), http::status::method_not_allowed);
  auto preflight = get("/", http::verb::options);
  EXPECT_EQ(preflight.result(), http::status::no_content);
  EXPECT_EQ(preflight[http::field::allow], "GET, HEAD, OPTIONS");
  EXPECT_EQ(preflight[http::field::access_control_allow_headers], "");  // "/" is not for other origins
}

TEST_F(ServerTest, UpgradeWithoutValidTokenIs401AndNothingElse) {
  for (const std::string target : {"/", "/?token=", "/?token=forged", "/?token=%zz"}) {
    const std::string answer = raw_upgrade(target);
    EXPECT_EQ(answer.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << target << ": " << answer;
    EXPECT_NE(answer.find("Content-Length: 0\r\n"), std::string::npos) << answer;
    EXPECT_TRUE(answer.ends_with("\r\n\r\n")) << answer;  // no body
  }
  EXPECT_EQ(raw_upgrade("/other?token=good:a.b").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(metrics_.upgrades_rejected.load(), 4u);
  EXPECT_EQ(handler_.opened, 0);
}

TEST_F(ServerTest, ValidTokenOpensAndMessagesFlowBothWays) {
  auto c = connect("good:xyz.groundmist.library");
  c->ws.write(asio::buffer(std::string("hello")));
  beast::error_code ec;
  EXPECT_EQ(read_text(*c, ec), "hello");
  ASSERT_FALSE(ec) << ec.message();
  {
    std::lock_guard lock(handler_.mu);
    EXPECT_EQ(handler_.opened, 1);
    EXPECT_EQ(handler_.last_group, "xyz.groundmist.library");
  }
  GroupMetrics& m = metrics_.group("xyz.groundmist.library");
  EXPECT_EQ(m.connections.load(), 1);
  EXPECT_EQ(m.messages_in.load(), 1u);
  EXPECT_EQ(m.bytes_in.load(), 5u);
  EXPECT_TRUE(eventually([&] { return m.bytes_out.load() == 5u; }));

  c->ws.close(websocket::close_code::normal);
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(handler_.mu);
    return handler_.closed == 1;
  }));
  EXPECT_EQ(m.connections.load(), 0);
}

TEST_F(ServerTest, TextFrameClosesOnlyThatSocket) {
  auto other = connect("good:a.b");
  auto c = connect("good:a.b");
  c->ws.text(true);
  c->ws.write(asio::buffer(std::string("{\"type\":\"join\"}")));
  beast::error_code ec;
  read_text(*c, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(c->ws.reason().code, websocket::close_code::unknown_data);
  EXPECT_EQ(metrics_.frames_rejected_text.load(), 1u);

  other->ws.write(asio::buffer(std::string("still here")));
  EXPECT_EQ(read_text(*other, ec), "still here");
  EXPECT_FALSE(ec);
}

TEST_F(ServerTest, OversizedMessageClosesOnlyThatSocket) {
  auto other = connect("good:a.b");
  auto c = connect("good:a.b");
  c->ws.write(asio::buffer(std::string(5000, 'x')));  // limit is 4096 in these tests
  beast::error_code ec;
  read_text(*c, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(c->ws.reason().code, websocket::close_code::too_big);
  EXPECT_TRUE(eventually([&] { return metrics_.frames_rejected_size.load() == 1u; }));

  // Exactly at the limit is fine.
  other->ws.write(asio::buffer(std::string(4096, 'y')));
  EXPECT_EQ(read_text(*other, ec).size(), 4096u);
  EXPECT_FALSE(ec);
  EXPECT_EQ(get("/healthz").result(), http::status::ok);
}

TEST_F(ServerTest, HandlerCloseSendsQueuedMessagesFirst) {
  auto c = connect("good:a.b");
  c->ws.write(asio::buffer(std::string("close:protocol error")));
  beast::error_code ec;
  EXPECT_EQ(read_text(*c, ec), "bye");
  read_text(*c, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(c->ws.reason().code, websocket::close_code::normal);
  EXPECT_EQ(std::string(c->ws.reason().reason.data(), c->ws.reason().reason.size()), "protocol error");
}

TEST_F(ServerTest, SlowReaderIsCutOffWithoutHurtingOthers) {
  ServerConfig config;
  config.max_queue_bytes = 1 << 20;
  config.max_frame_bytes = 1 << 20;
  restart(config);
  auto other = connect("good:a.b");
  auto c = connect("good:a.b");
  // 64 x 256 KiB queued at once (16 MiB) overflows the 1 MiB queue.
  c->ws.write(asio::buffer(std::string("flood:64:262144")));
  EXPECT_TRUE(eventually([&] { return metrics_.slow_readers_closed.load() == 1u; }));
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(handler_.mu);
    return handler_.closed == 1;
  }));
  beast::error_code ec;
  other->ws.write(asio::buffer(std::string("ping?")));
  EXPECT_EQ(read_text(*other, ec), "ping?");
  EXPECT_FALSE(ec);
}

TEST_F(ServerTest, SocketThatMissesPongsIsClosed) {
  ServerConfig config;
  config.ping_interval = 100ms;
  restart(config);
  auto silent = connect("good:a.b");  // never reads, so never answers a ping
  auto lively = connect("good:a.b");
  // The lively client keeps reading, which answers pings, and stays open.
  std::thread reader([&] {
    beast::error_code ec;
    read_text(*lively, ec);
  });
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(handler_.mu);
    return handler_.closed == 1;
  }));
  std::this_thread::sleep_for(300ms);
  {
    std::lock_guard lock(handler_.mu);
    EXPECT_EQ(handler_.closed, 1);
    EXPECT_EQ(handler_.peers.size(), 1u);
  }
  beast::get_lowest_layer(lively->ws).socket().shutdown(tcp::socket::shutdown_both);
  reader.join();
}

TEST_F(ServerTest, RequestLimitsAndTimeouts) {
  ServerConfig config;
  config.request_timeout = 200ms;
  config.max_body_bytes = 100;
  restart(config);

  asio::io_context io;
  {
    // A client that never finishes its request is disconnected.
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    asio::write(socket, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n")));
    const auto started = std::chrono::steady_clock::now();
    char byte;
    beast::error_code ec;
    socket.read_some(asio::buffer(&byte, 1), ec);
    EXPECT_TRUE(ec);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  }
  {
    beast::tcp_stream stream(io);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    http::request<http::string_body> req{http::verb::post, "/authenticate", 11};
    req.set(http::field::host, "x");
    req.body() = std::string(1000, 'x');
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    EXPECT_EQ(res.result(), http::status::payload_too_large);
  }
}

TEST_F(ServerTest, ConnectionsOverTheLimitAreRefused) {
  ServerConfig config;
  config.max_connections = 1;
  restart(config);
  auto c = connect("good:a.b");
  EXPECT_THROW(connect("good:a.b"), boost::system::system_error);
  c->ws.write(asio::buffer(std::string("first still works")));
  beast::error_code ec;
  EXPECT_EQ(read_text(*c, ec), "first still works");
}

TEST_F(ServerTest, OneSessionCannotTakeEveryConnection) {
  ServerConfig config;
  config.max_sockets_per_session = 2;
  restart(config);
  auto a = connect("good:a.b");
  auto b = connect("good:a.b");
  ASSERT_TRUE(eventually([&] { return metrics_.group("a.b").connections.load() == 2; }));
  EXPECT_EQ(raw_upgrade("/?token=good:a.b").rfind("HTTP/1.1 429", 0), 0u);
  a->ws.close(websocket::close_code::normal);
  ASSERT_TRUE(eventually([&] { return metrics_.group("a.b").connections.load() == 1; }));
  auto c = connect("good:a.b");  // room again
  c->ws.write(asio::buffer(std::string("third works")));
  beast::error_code ec;
  EXPECT_EQ(read_text(*c, ec), "third works");
}

// Upgrades sent all at once: each counts from the moment it is admitted, so no more
// than the limit get through however the handshakes interleave.
TEST_F(ServerTest, UpgradesUnderWayCountAgainstTheLimit) {
  ServerConfig config;
  config.max_sockets_per_session = 2;
  restart(config);
  asio::io_context io;
  std::vector<tcp::socket> sockets;
  const std::string request =
      "GET /?token=good:a.b HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  for (int i = 0; i < 8; ++i) {
    sockets.emplace_back(io);
    sockets.back().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  }
  for (tcp::socket& socket : sockets) asio::write(socket, asio::buffer(request));
  int switched = 0;
  for (tcp::socket& socket : sockets) {
    char status[12];
    beast::error_code ec;
    asio::read(socket, asio::buffer(status), ec);
    switched += !ec && std::string(status, sizeof status) == "HTTP/1.1 101";
  }
  EXPECT_EQ(switched, 2);
}

TEST_F(ServerTest, StopClosesSocketsThenFlushes) {
  auto c = connect("good:a.b");
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(handler_.mu);
    return handler_.opened == 1;
  }));
  std::thread reader([&] {
    beast::error_code ec;
    read_text(*c, ec);
    EXPECT_EQ(ec, websocket::error::closed);
    EXPECT_EQ(c->ws.reason().code, websocket::close_code::going_away);
  });
  stop();
  reader.join();
  EXPECT_TRUE(handler_.flushed.load());
  std::lock_guard lock(handler_.mu);
  EXPECT_EQ(handler_.closed, 1);
}

}  // namespace
}  // namespace gm::server
