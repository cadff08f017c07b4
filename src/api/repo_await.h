// Coroutine faces of the repo's callback calls, for HTTP routes that wait on the repo
// (the JSON API, the console): the io thread serves everyone else meanwhile.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <string>

#include "repo/repo.h"
#include "util/result.h"

namespace gm::api {

// Awaits a callback API of the repo: `start(done)` begins the work, and done(value)
// (on the io thread, possibly at once) resumes the coroutine, always through a post.
// g++ 12 destroys a temporary with a destructor twice when it is made in a co_await
// expression (a lambda converted to std::function, a std::string): the coroutines here
// take their arguments by reference, and every caller names its arguments before the
// co_await.
template <class T, class Start>
boost::asio::awaitable<T> repo_callback(const Start& start) {
  namespace asio = boost::asio;
  auto initiate = [&start](auto handler) mutable {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    start([shared](T value) {
      auto executor = asio::get_associated_executor(*shared);
      asio::post(executor, [shared, value = std::move(value)]() mutable { std::move(*shared)(std::move(value)); });
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(std::move(initiate),
                                                                                  asio::use_awaitable);
}

// Runs `work` with the store of `group` on the repo's slow lane (the group opened if
// need be).
inline boost::asio::awaitable<Status> with_store(repo::Repo& repo, const std::string& group,
                                                 const std::function<void(storage::DocumentStore&)>& work) {
  auto start = [&repo, group, work](std::function<void(Status)> done) {
    repo.with_group(group, [work, done](Result<repo::GroupRepo*> g) {
      if (!g) return done(g.error());
      (*g)->with_store(work, [done] { done(Status::Ok()); });
    });
  };
  co_return co_await repo_callback<Status>(start);
}

}  // namespace gm::api
