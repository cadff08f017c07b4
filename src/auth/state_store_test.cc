#include "auth/state_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>

namespace gm::auth {
namespace {
namespace fs = std::filesystem;

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("state_store_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<StateStore> open() {
    auto s = StateStore::open(dir_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s).value() : nullptr;
  }
  SessionRecord session(std::string id, int64_t created, int64_t expires) {
    SessionRecord r;
    r.id = std::move(id);
    r.group = "xyz.groundmist.library";
    r.subject = "did:plc:torlb4mwutoyjwu4svnruovp";
    r.kind = "service-auth";
    r.created_at = created;
    r.expires_at = expires;
    r.origin = "https://library.groundmist.xyz";
    return r;
  }
  fs::path dir_;
};

TEST_F(StateStoreTest, CreatesAPrivateVersionedDatabase) {
  auto store = open();
  ASSERT_TRUE(store);
  struct stat st {};
  ASSERT_EQ(::stat(StateStore::path_for(dir_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  store.reset();
  store = open();  // reopening migrates nothing and keeps working
  ASSERT_TRUE(store);
}

TEST_F(StateStoreTest, RefusesADatabaseFromANewerServer) {
  open().reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(StateStore::path_for(dir_).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = StateStore::open(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("newer"), std::string::npos) << s.error().message;
}

TEST_F(StateStoreTest, SessionsAreListedAndRevokedAcrossReopen) {
  auto store = open();
  ASSERT_TRUE(store->add_session(session("a", 100, 1000)).ok());
  ASSERT_TRUE(store->add_session(session("b", 200, 1000)).ok());
  ASSERT_TRUE(store->add_session(session("old", 10, 50)).ok());
  auto listed = store->list_sessions(300, false);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, "b");
  EXPECT_EQ((*listed)[1].origin, "https://library.groundmist.xyz");
  EXPECT_EQ(store->list_sessions(300, true)->size(), 3u);

  EXPECT_TRUE(*store->revoke_session("a", 300));
  EXPECT_TRUE(*store->revoke_session("a", 301));  // already revoked: still there
  EXPECT_FALSE(*store->revoke_session("nope", 300));
  store = open();
  auto state = store->revocation_state(300);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->revoked("a", 100));
  EXPECT_FALSE(state->revoked("b", 200));
  EXPECT_FALSE(state->revoked("unlisted", 250));

  ASSERT_TRUE(store->revoke_all_sessions(400).ok());
  state = store->revocation_state(400);
  EXPECT_TRUE(state->revoked("b", 200));
  EXPECT_TRUE(state->revoked("unlisted", 399));
  // Issued in the second of the revocation: revoked by its row if it came before, valid
  // if it came after (a login right after `revoke --all`).
  ASSERT_TRUE(store->add_session(session("after", 400, 1000)).ok());
  state = store->revocation_state(400);
  EXPECT_FALSE(state->revoked("after", 400));
  EXPECT_FALSE(state->revoked("later", 401));
}

TEST_F(StateStoreTest, RootDocumentFirstWins) {
  auto store = open();
  EXPECT_FALSE(store->root_doc_first_wins("g.a", "", 1)->has_value());
  EXPECT_EQ(**store->root_doc_first_wins("g.a", "automerge:first", 1), "automerge:first");
  EXPECT_EQ(**store->root_doc_first_wins("g.a", "automerge:second", 2), "automerge:first");
  EXPECT_EQ(**store->root_doc_first_wins("g.b", "automerge:other", 2), "automerge:other");
  store = open();
  EXPECT_EQ(**store->root_doc("g.a"), "automerge:first");
  ASSERT_TRUE(store->set_root_doc("g.a", "automerge:owner", 3).ok());
  EXPECT_EQ(**store->root_doc_first_wins("g.a", "automerge:x", 4), "automerge:owner");
}

TEST_F(StateStoreTest, JtiIsAcceptedOnceUntilItExpires) {
  auto store = open();
  EXPECT_TRUE(*store->remember_jti("did:a", "j1", 100, 10));
  EXPECT_FALSE(*store->remember_jti("did:a", "j1", 100, 20));
  EXPECT_TRUE(*store->remember_jti("did:b", "j1", 100, 20));  // keyed by issuer and jti
  store = open();
  EXPECT_FALSE(*store->remember_jti("did:a", "j1", 100, 99));  // across restarts
  EXPECT_TRUE(*store->remember_jti("did:a", "j1", 300, 101));  // forgotten once expired
}

TEST_F(StateStoreTest, DevicesPendingApprovedRevoked) {
  auto store = open();
  DeviceRecord d;
  d.jkt = "thumb";
  d.group = "xyz.groundmist.library";
  d.created_at = 5;
  auto added = store->add_pending_device(d, 10);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->code.size(), 9u);
  EXPECT_EQ(added->status, DeviceStatus::pending);
  // The same key for the same group again: the same row.
  EXPECT_EQ(store->add_pending_device(d, 10)->code, added->code);
  ASSERT_TRUE(*store->set_device_status(added->code, DeviceStatus::approved, 6));
  EXPECT_EQ((*store->device_for_key("thumb", "xyz.groundmist.library"))->status, DeviceStatus::approved);
  EXPECT_FALSE((*store->device_for_key("thumb", "other.group")).has_value());

  SessionRecord s = session("via-device", 7, 1000);
  s.device = added->code;
  ASSERT_TRUE(store->add_session(s).ok());
  ASSERT_TRUE(*store->set_device_status(added->code, DeviceStatus::revoked, 8));
  EXPECT_TRUE(store->revocation_state(9)->revoked("via-device", 7));
  EXPECT_FALSE(*store->set_device_status("NOPE-NOPE", DeviceStatus::approved, 9));
}

TEST_F(StateStoreTest, PendingDevicesAreBoundedAndExpire) {
  auto store = open();
  auto add = [&](int i, int64_t at) {
    DeviceRecord d;
    d.jkt = "k" + std::to_string(i);
    d.group = "g.a";
    d.created_at = at;
    return store->add_pending_device(d, 5);
  };
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(add(i, 100 + i).ok());
  auto refused = add(5, 110);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.error().code == ErrorCode::kOverLimit);
  EXPECT_EQ(store->list_devices()->back().jkt, "k0");  // the first ones stay
  // An hour later they have expired, and there is room again.
  ASSERT_TRUE(add(6, 100 + kPendingDeviceSeconds + 10).ok());
  EXPECT_EQ(store->list_devices()->size(), 1u);
}

TEST_F(StateStoreTest, DataVersionMovesWhenAnotherConnectionWrites) {
  auto server = open();
  auto cli = open();
  const int64_t before = *server->data_version();
  ASSERT_TRUE(cli->revoke_all_sessions(5).ok());
  EXPECT_NE(*server->data_version(), before);
}

GrantRecord grant_of(std::string subject, std::vector<std::string> scopes, GrantStatus status, int64_t now) {
  GrantRecord g;
  g.subject = std::move(subject);
  for (const auto& text : scopes) g.scopes.push_back(*parse_scope(text));
  g.status = status;
  g.created_at = now;
  return g;
}

// A request waits for the owner; asking again returns the same request; approving makes
// it stand; revoking makes its scopes fall for every token that carries them.
TEST_F(StateStoreTest, GrantsArePendingUntilApprovedAndFallWhenRevoked) {
  auto store = open();
  const int64_t now = 1'800'000'000;
  auto req = store->request_grant(grant_of("origin:https://notes.example", {"xyz.groundmist.library:read"},
                                           GrantStatus::pending, now), 8);
  ASSERT_TRUE(req.ok()) << req.error().message;
  EXPECT_EQ(req->status, GrantStatus::pending);
  EXPECT_EQ(req->id.front(), 'G');
  auto again = store->request_grant(grant_of("origin:https://notes.example", {"xyz.groundmist.library:read"},
                                             GrantStatus::pending, now + 5), 8);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, req->id);
  EXPECT_TRUE(store->standing_grants("origin:https://notes.example", now)->empty());

  ASSERT_TRUE(*store->set_grant_status(req->id, GrantStatus::approved, now + 10));
  auto standing = store->standing_grants("origin:https://notes.example", now + 20);
  ASSERT_TRUE(standing.ok());
  ASSERT_EQ(standing->size(), 1u);
  EXPECT_EQ(to_string((*standing)[0].scopes.at(0)), "xyz.groundmist.library:read");
  EXPECT_FALSE(store->set_grant_status(req->id, GrantStatus::pending, now).ok());
  EXPECT_FALSE(store->set_grant_status(req->id, GrantStatus::refused, now).ok());  // decided already
  EXPECT_FALSE(*store->set_grant_status("GNONE-XXXX", GrantStatus::approved, now));

  Scope carried = *parse_scope("xyz.groundmist.library:read");
  carried.grant_id = req->id;
  EXPECT_EQ(store->revocation_state(now)->standing({carried}, now).size(), 1u);
  ASSERT_TRUE(*store->set_grant_status(req->id, GrantStatus::revoked, now + 30));
  EXPECT_TRUE(store->revocation_state(now + 31)->standing({carried}, now + 31).empty());
  EXPECT_TRUE(store->standing_grants("origin:https://notes.example", now + 40)->empty());
}

TEST_F(StateStoreTest, GrantsExpireAndPendingOnesAreBounded) {
  auto store = open();
  const int64_t now = 1'800'000'000;
  GrantRecord g = grant_of("token:agent", {"xyz.groundmist:write"}, GrantStatus::approved, now);
  g.expires_at = now + 60;
  auto added = store->add_grant(g);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(store->standing_grants("token:agent", now + 59)->size(), 1u);
  EXPECT_TRUE(store->standing_grants("token:agent", now + 60)->empty());
  EXPECT_FALSE(store->revocation_state(now)->grant_stands(added->id, now + 60));
  EXPECT_TRUE(store->revocation_state(now)->grant_stands(added->id, now + 59));
  EXPECT_FALSE(store->revocation_state(now + 60)->grant_stands(added->id, now + 1));

  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store->request_grant(grant_of("origin:https://a" + std::to_string(i) + ".example",
                                              {"xyz.groundmist.library:read"}, GrantStatus::pending, now), 3).ok());
  }
  auto over = store->request_grant(grant_of("origin:https://b.example", {"xyz.groundmist.library:read"},
                                            GrantStatus::pending, now), 3);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kOverLimit);
  // A month later the old requests are gone and new ones are heard.
  EXPECT_TRUE(store->request_grant(grant_of("origin:https://b.example", {"xyz.groundmist.library:read"},
                                            GrantStatus::pending, now + kPendingGrantSeconds + 1), 3).ok());
  EXPECT_EQ(store->list_grants()->size(), 2u);  // the approved one and the new request
}

// A database of schema version 1 (before grants and console links) is migrated, its
// sessions kept.
TEST_F(StateStoreTest, AVersionOneDatabaseGainsGrants) {
  {
    auto store = open();
    ASSERT_TRUE(store->add_session(session("s1", 1'800'000'000, 1'900'000'000)).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(StateStore::path_for(dir_).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE grants; DROP TABLE console_links; PRAGMA user_version = 1", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = open();
  EXPECT_EQ(store->list_sessions(1'800'000'000, false)->size(), 1u);
  EXPECT_TRUE(store->add_grant(grant_of("token:x", {"xyz.groundmist.library:read"}, GrantStatus::approved, 1)).ok());
}

// A console link works once, and not after it expires; expired ones go as others come.
TEST_F(StateStoreTest, ConsoleLinkIsTakenOnceBeforeItExpires) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->add_console_link("aa", 1600, 1000).ok());
  ASSERT_TRUE(store->add_console_link("bb", 1100, 1000).ok());
  EXPECT_FALSE(*store->take_console_link("bb", 1100));  // expired at 1100
  EXPECT_FALSE(*store->take_console_link("cc", 1000));  // never made
  EXPECT_TRUE(*store->take_console_link("aa", 1599));
  EXPECT_FALSE(*store->take_console_link("aa", 1599));  // used
  // Survives a restart, like every other row.
  ASSERT_TRUE(store->add_console_link("dd", 2000, 1000).ok());
  store.reset();
  store = open();
  EXPECT_TRUE(*store->take_console_link("dd", 1500));
}

// The fingerprint moves for this connection's own writes and for other processes'.
TEST_F(StateStoreTest, FingerprintMovesOnEveryWrite) {
  auto store = open();
  auto other = open();
  ASSERT_TRUE(store && other);
  auto before = store->fingerprint();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*before, *store->fingerprint());
  ASSERT_TRUE(store->add_session(session("own", 100, 200)).ok());
  auto own = store->fingerprint();
  EXPECT_NE(*before, *own);
  ASSERT_TRUE(other->revoke_session("own", 150).ok());
  EXPECT_NE(*own, *store->fingerprint());
}

TEST_F(StateStoreTest, RootDocsListsEveryGroup) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->set_root_doc("xyz.groundmist.library", "automerge:a", 1).ok());
  ASSERT_TRUE(store->set_root_doc("xyz.groundmist.editor", "automerge:b", 1).ok());
  auto roots = store->root_docs();
  ASSERT_TRUE(roots.ok());
  EXPECT_EQ(*roots, (std::map<std::string, std::string>{{"xyz.groundmist.editor", "automerge:b"},
                                                        {"xyz.groundmist.library", "automerge:a"}}));
}

}  // namespace
}  // namespace gm::auth
