#include "server/event_stream.h"

#include <utility>

namespace gm::server {

bool EventStream::send(std::string event) {
  if (ended_) return false;
  // One event always goes, however large (a large document's snapshot): what is held
  // is at most the bound plus one event.
  // An event over the bound that went alone (a large snapshot) does not count against
  // those behind it: a change made while it is written waits for it.
  const size_t others = unsent_bytes_ - alone_left_;
  if (others > 0 && others + event.size() > max_unsent_bytes_) {
    cut("slow reader: more than " + std::to_string(max_unsent_bytes_) + " bytes of events unsent");
    return false;
  }
  if (unsent_bytes_ == 0 && event.size() > max_unsent_bytes_) alone_left_ = event.size();
  unsent_bytes_ += event.size();
  queue_.push_back(std::move(event));
  wake();
  return true;
}

void EventStream::end(std::string why) {
  if (ended_) return;
  ended_ = true;
  why_ = std::move(why);
  wake();
}

void EventStream::cut(std::string why) {
  if (!ended_) why_ = std::move(why);
  ended_ = cut_ = true;
  unsent_bytes_ = alone_left_ = 0;
  queue_.clear();
  wake();
}

std::string EventStream::take() {
  std::string out;
  for (std::string& e : queue_) out += e;
  queue_.clear();
  return out;
}

void EventStream::detach() {
  if (std::exchange(detached_, true)) return;
  wake_ = nullptr;
  if (!ended_) cut("the connection closed");
  if (on_close) std::exchange(on_close, nullptr)();
}

}  // namespace gm::server
