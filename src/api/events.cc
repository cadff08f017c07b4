#include "api/events.h"

#include "automerge/json_patch.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace gm::api {

using automerge::ChangeHash;
using repo::GroupRepo;

namespace {

std::string dump(const nlohmann::json& j) {
  // Invalid UTF-8 (a key a client wrote) is replaced, as in the JSON view.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json heads_json(std::span<const ChangeHash> heads) {
  nlohmann::json out = nlohmann::json::array();
  for (const ChangeHash& h : heads) out.push_back(h.hex());
  return out;
}


void diff_into(const nlohmann::json& before, const nlohmann::json& after, const std::string& path,
               nlohmann::json& ops) {
  if (before == after) return;
  if (before.type() != after.type() || (!before.is_object() && !before.is_array())) {
    ops.push_back({{"op", "replace"}, {"path", path}, {"value", after}});
    return;
  }
  if (before.is_object()) {
    for (const auto& [key, value] : before.items()) {
      auto there = after.find(key);
      if (there == after.end()) {
        ops.push_back({{"op", "remove"}, {"path", path + "/" + automerge::json_pointer_token(key)}});
      } else {
        diff_into(value, *there, path + "/" + automerge::json_pointer_token(key), ops);
      }
    }
    for (const auto& [key, value] : after.items()) {
      if (!before.contains(key)) ops.push_back({{"op", "add"}, {"path", path + "/" + automerge::json_pointer_token(key)}, {"value", value}});
    }
    return;
  }
  // Arrays: what is equal at the start and at the end stays; the middle is changed in
  // place pairwise, then shortened or lengthened where it ends. An insert or a delete
  // anywhere in a long list is one operation.
  const size_t nb = before.size(), na = after.size(), shorter = std::min(nb, na);
  size_t head = 0;
  while (head < shorter && before[head] == after[head]) ++head;
  size_t tail = 0;
  while (tail < shorter - head && before[nb - 1 - tail] == after[na - 1 - tail]) ++tail;
  const size_t mid_before = nb - head - tail, mid_after = na - head - tail;
  const size_t paired = std::min(mid_before, mid_after);
  for (size_t i = head; i < head + paired; ++i) diff_into(before[i], after[i], path + "/" + std::to_string(i), ops);
  const std::string at = path + "/" + std::to_string(head + paired);
  for (size_t i = paired; i < mid_before; ++i) ops.push_back({{"op", "remove"}, {"path", at}});
  for (size_t i = head + paired; i < head + mid_after; ++i) {
    ops.push_back({{"op", "add"}, {"path", path + "/" + std::to_string(i)}, {"value", after[i]}});
  }
}

}  // namespace

nlohmann::json json_diff(const nlohmann::json& before, const nlohmann::json& after) {
  nlohmann::json ops = nlohmann::json::array();
  diff_into(before, after, "", ops);
  return ops;
}

std::string heads_id(std::span<const ChangeHash> heads) {
  std::string id;
  for (const ChangeHash& h : heads) id += (id.empty() ? "" : ",") + h.hex();
  return id;
}

std::string sse_event(std::string_view type, std::string_view id, std::string_view data) {
  std::string e = "event: ";
  e += type;
  e += '\n';
  if (!id.empty()) {
    e += "id: ";
    e += id;
    e += '\n';
  }
  e += "data: ";
  e += data;
  e += "\n\n";
  return e;
}

std::string snapshot_event(std::span<const ChangeHash> heads, std::string_view view_json) {
  while (!view_json.empty() && (view_json.back() == '\n' || view_json.back() == ' ')) view_json.remove_suffix(1);
  std::string data = R"({"heads":)" + dump(heads_json(heads)) + R"(,"doc":)";
  data += view_json;
  data += '}';
  return sse_event("snapshot", heads_id(heads), data);
}

Result<std::vector<std::optional<NextEvent>>> next_change_events(GroupRepo::DocumentAccess& doc,
                                                                 std::span<const WatchedView> lasts) {
  const std::vector<ChangeHash> heads = doc.heads();
  std::vector<std::optional<NextEvent>> out(lasts.size());
  std::shared_ptr<const nlohmann::json> view;
  for (size_t i = 0; i < lasts.size(); ++i) {
    const WatchedView& last = lasts[i];
    if (heads == last.heads) continue;
    if (!view) {
      GM_ASSIGN_OR_RETURN(automerge::Document * d, doc.document());
      view = std::make_shared<const nlohmann::json>(d->to_json());
    }
    nlohmann::json patch = last.view ? json_diff(*last.view, *view)
                                     : nlohmann::json::array({{{"op", "replace"}, {"path", ""}, {"value", *view}}});
    std::string data = dump({{"heads", heads_json(heads)}, {"patch", std::move(patch)}});
    out[i] = NextEvent{{heads, view}, sse_event("change", heads_id(heads), data)};
  }
  return out;
}

struct DocumentWatchers::Watch {
  std::string group;
  std::string id;
  std::shared_ptr<server::EventStream> out;
  WatchedView last;
  server::RequestLimiter::Ticket ticket;
};

std::variant<server::RequestLimiter::Ticket, std::string> DocumentWatchers::admit(const std::string& token_id) {
  if (auto ticket = limiter_.admit(token_id, max_per_token_)) return std::move(*ticket);
  return std::string(limiter_.under_way() >= max_streams_ ? "server" : "token");
}

void DocumentWatchers::watch(std::string group, std::string id, std::shared_ptr<server::EventStream> out,
                             WatchedView first, server::RequestLimiter::Ticket ticket,
                             std::function<bool()> still_allowed) {
  auto w = std::make_shared<Watch>(Watch{std::move(group), std::move(id), std::move(out), std::move(first),
                                         std::move(ticket)});
  w->out->check = std::move(still_allowed);
  // The watch goes with its stream (the stream's on_close is cleared once run, so a
  // weak reference keeps neither alive).
  w->out->on_close = [self = weak_from_this(), raw = w.get()] {
    if (auto s = self.lock()) s->forget(raw);
  };
  const Key key{w->group, w->id};
  feeds_[key].watches.push_back(w);
  // The heads may have moved between the snapshot and now: a call finds out (and sends
  // nothing if they did not).
  update(key);
}

void DocumentWatchers::forget(const Watch* w) {
  auto it = feeds_.find({w->group, w->id});
  if (it == feeds_.end()) return;
  std::erase_if(it->second.watches, [w](const std::shared_ptr<Watch>& x) { return x.get() == w; });
  // A call under way finds the feed gone, and ends there.
  if (it->second.watches.empty()) feeds_.erase(it);
}

void DocumentWatchers::changed(const std::string& group, const std::string& id) { update({group, id}); }

void DocumentWatchers::recheck() {
  std::vector<std::shared_ptr<Watch>> all;
  for (const auto& [key, feed] : feeds_) all.insert(all.end(), feed.watches.begin(), feed.watches.end());
  for (const auto& w : all) {
    if (w->out->check && !w->out->check()) w->out->cut("no longer authorized");
  }
}

void DocumentWatchers::update(const Key& key) {
  auto it = feeds_.find(key);
  if (it == feeds_.end()) return;
  Feed& feed = it->second;
  if (feed.building) {
    feed.again = true;
    return;
  }
  // The views the streams were told last, each once (streams that kept up share one).
  auto lasts = std::make_shared<std::vector<WatchedView>>();
  for (const auto& w : feed.watches) {
    if (w->out->ended()) continue;
    auto same = [&w](const WatchedView& v) { return v.heads == w->last.heads; };
    if (std::none_of(lasts->begin(), lasts->end(), same)) lasts->push_back(w->last);
  }
  if (lasts->empty()) return;
  feed.building = true;
  auto next = std::make_shared<Result<std::vector<std::optional<NextEvent>>>>(error("not built"));
  GroupRepo::DocumentCall call;
  call.work = [next, lasts](GroupRepo::DocumentAccess& doc) -> Result<std::optional<Bytes>> {
    if (!doc.exists()) return error(ErrorCode::kNotFound, "the document is gone");
    *next = next_change_events(doc, *lasts);
    return std::optional<Bytes>();  // nothing to add
  };
  // The view and the patch grow with the document: a large one is slow-lane work.
  call.heavy = true;
  call.done = [self = weak_from_this(), key, lasts, next](Status s) {
    auto me = self.lock();
    if (!me) return;
    auto it = me->feeds_.find(key);
    if (it == me->feeds_.end()) return;  // every stream went meanwhile
    it->second.building = false;
    if (s && !*next) s = next->error();
    // A copy: sending may cut a stream, which forgets it (and may erase the feed).
    const std::vector<std::shared_ptr<Watch>> watching = it->second.watches;
    for (const auto& w : watching) {
      if (w->out->ended()) continue;
      if (!s) {
        spdlog::warn("events for document {} of {}: {}; ending the stream", key.second, key.first, s.error().message);
        w->out->cut("the document could not be read: " + s.error().message);
        continue;
      }
      // A stream that came meanwhile was told other heads: the next call is for it.
      auto told = std::find_if(lasts->begin(), lasts->end(),
                               [&w](const WatchedView& v) { return v.heads == w->last.heads; });
      if (told == lasts->end()) continue;
      std::optional<NextEvent>& e = (**next)[told - lasts->begin()];
      if (!e) continue;
      w->last = e->state;
      if (!w->out->send(std::string(e->text))) {
        spdlog::info("events for document {} of {}: stream cut: {}", key.second, key.first, w->out->why());
      }
    }
    it = me->feeds_.find(key);
    if (it != me->feeds_.end() && std::exchange(it->second.again, false)) me->update(key);
  };
  repo_.with_group(key.first, [id = key.second, call = std::move(call)](Result<GroupRepo*> g) mutable {
    if (!g) return call.done(g.error());
    (*g)->call(id, std::move(call));
  });
}

}  // namespace gm::api
