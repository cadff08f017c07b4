#include "api/events.h"

#include <gtest/gtest.h>

#include <random>

namespace gm::api {
namespace {

using nlohmann::json;

// The patch applies (nlohmann's RFC 6902 implementation) and gives `after`.
void expect_patches(const json& before, const json& after) {
  const json patch = json_diff(before, after);
  json applied;
  ASSERT_NO_THROW(applied = before.patch(patch)) << patch.dump();
  EXPECT_EQ(applied, after) << "patch " << patch.dump();
}

TEST(JsonDiff, ObjectsAndEscapedKeys) {
  expect_patches(json::object(), json::object());
  EXPECT_EQ(json_diff({{"a", 1}}, {{"a", 1}}), json::array());
  expect_patches({{"a", 1}, {"b", {{"c", "x"}}}}, {{"b", {{"c", "y"}, {"d", nullptr}}}, {"e", true}});
  expect_patches({{"a/b", 1}, {"~", 2}, {"", 3}}, {{"a/b", 2}, {"~0", 2}, {"", {1}}});
  EXPECT_EQ(json_diff({{"a/b~", 1}}, {{"a/b~", 2}}),
            json::parse(R"([{"op":"replace","path":"/a~1b~0","value":2}])"));
}

TEST(JsonDiff, TypesChangeByReplace) {
  expect_patches({{"v", {1, 2}}}, {{"v", {{"k", 1}}}});
  expect_patches({{"v", "s"}}, {{"v", 1.5}});
  expect_patches({{"v", nullptr}}, {{"v", json::array()}});
}

// One insert or delete anywhere in a long list is one operation.
TEST(JsonDiff, AnInsertOrDeleteInAListIsOneOperation) {
  json before = json::array();
  for (int i = 0; i < 1000; ++i) before.push_back(i);
  for (size_t at : {size_t{0}, size_t{500}, size_t{1000}}) {
    json inserted = before;
    inserted.insert(inserted.begin() + static_cast<std::ptrdiff_t>(at), -1);
    EXPECT_EQ(json_diff(before, inserted).size(), 1u) << at;
    expect_patches(before, inserted);
    if (at == 1000) continue;
    json deleted = before;
    deleted.erase(deleted.begin() + static_cast<std::ptrdiff_t>(at));
    EXPECT_EQ(json_diff(before, deleted).size(), 1u) << at;
    expect_patches(before, deleted);
  }
  // Repeated values at the seams.
  expect_patches({1, 1, 1}, {1, 1});
  expect_patches({1, 2, 1}, {1, 1});
  expect_patches(json::array(), {1, 2});
  expect_patches({1, 2}, json::array());
}

// Random lists and maps, changed at random: every patch gives the new value.
TEST(JsonDiff, RandomChangesPatchExactly) {
  std::mt19937 rng(14);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::function<json(int)> value = [&](int depth) -> json {
    switch (depth > 2 ? pick(3) : pick(5)) {
      case 0: return pick(4);
      case 1: return std::string(1, static_cast<char>('a' + pick(3)));
      case 2: return nullptr;
      case 3: {
        json a = json::array();
        for (int i = pick(6); i > 0; --i) a.push_back(value(depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        for (int i = pick(4); i > 0; --i) o[std::string(1, static_cast<char>('k' + pick(4)))] = value(depth + 1);
        return o;
      }
    }
  };
  std::function<void(json&, int)> mutate = [&](json& v, int depth) {
    if (v.is_array() && !v.empty() && pick(2)) return mutate(v[static_cast<size_t>(pick(static_cast<int>(v.size())))], depth + 1);
    if (v.is_object() && !v.empty() && pick(2)) return mutate(v.begin().value(), depth + 1);
    if (v.is_array()) {
      const auto at = v.begin() + pick(static_cast<int>(v.size()) + 1);
      if (v.empty() || pick(2)) {
        v.insert(at, value(depth + 1));
      } else {
        v.erase(v.begin() + pick(static_cast<int>(v.size())));
      }
      return;
    }
    v = value(depth);
  };
  for (int round = 0; round < 2000; ++round) {
    json before = {{"root", value(0)}};
    json after = before;
    for (int i = pick(3) + 1; i > 0; --i) mutate(after["root"], 0);
    expect_patches(before, after);
    if (::testing::Test::HasFailure()) break;
  }
}

// Review (sse): keys that need escaping or are empty, unicode, arrays of arrays, and
// list/map/scalar type changes at every depth, patched by nlohmann's RFC 6902 applier.
TEST(JsonDiff, ReviewAdversarialKeysAndShapes) {
  std::mt19937 rng(6902);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> keys = {"", "/", "~", "~1", "~0", "a/b", "~/~", "0", "-", "h\u00e9", "\U0001F600", " "};
  std::function<json(int)> value = [&](int depth) -> json {
    switch (depth > 3 ? pick(4) : pick(7)) {
      case 0: return pick(3);
      case 1: return keys[static_cast<size_t>(pick(static_cast<int>(keys.size())))];
      case 2: return nullptr;
      case 3: return pick(2) == 0;
      case 4: case 5: {
        json a = json::array();
        for (int i = pick(5); i > 0; --i) a.push_back(value(depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        for (int i = pick(5); i > 0; --i) o[keys[static_cast<size_t>(pick(static_cast<int>(keys.size())))]] = value(depth + 1);
        return o;
      }
    }
  };
  std::function<void(json&, int)> mutate = [&](json& v, int depth) {
    if (v.is_array() && !v.empty() && pick(3)) return mutate(v[static_cast<size_t>(pick(static_cast<int>(v.size())))], depth + 1);
    if (v.is_object() && !v.empty() && pick(3)) {
      auto it = v.begin();
      std::advance(it, pick(static_cast<int>(v.size())));
      return mutate(it.value(), depth + 1);
    }
    if (v.is_array() && pick(2)) {
      if (v.empty() || pick(2)) {
        v.insert(v.begin() + pick(static_cast<int>(v.size()) + 1), value(depth + 1));
      } else {
        v.erase(v.begin() + pick(static_cast<int>(v.size())));
      }
      return;
    }
    if (v.is_object() && pick(2)) {
      if (!v.empty() && pick(2)) {
        auto it = v.begin();
        std::advance(it, pick(static_cast<int>(v.size())));
        v.erase(it);
      } else {
        v[keys[static_cast<size_t>(pick(static_cast<int>(keys.size())))]] = value(depth + 1);
      }
      return;
    }
    v = value(depth);
  };
  for (int round = 0; round < 20000; ++round) {
    json before = value(0);
    json after = before;
    for (int i = pick(4) + 1; i > 0; --i) mutate(after, 0);
    expect_patches(before, after);
    // The patch as the client sees it: through the event's text and back.
    const json patch = json::parse(json_diff(before, after).dump());
    EXPECT_EQ(before.patch(patch), after);
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(Events, TheTextOfAnEvent) {
  EXPECT_EQ(sse_event("change", "a,b", R"({"x":1})"), "event: change\nid: a,b\ndata: {\"x\":1}\n\n");
  EXPECT_EQ(sse_event("change", "", "{}"), "event: change\ndata: {}\n\n");
  const std::string snapshot = snapshot_event({}, "{\"t\":\"a\\nb\"}\n");
  EXPECT_EQ(snapshot, "event: snapshot\ndata: {\"heads\":[],\"doc\":{\"t\":\"a\\nb\"}}\n\n");
}

}  // namespace
}  // namespace gm::api
