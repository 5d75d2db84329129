// The forwarder's asynchronous calls: stopping cancels them, answers each, and refuses new ones.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "net_test_util.h"
#include "server/forwarder.h"

namespace ballot::server {
namespace {

using std::chrono::seconds;

// Counts the answers it gets and keeps the last error.
class Answers {
 public:
  std::function<void(Result<internal::ForwardResponse>)> Callback() {
    return [this](Result<internal::ForwardResponse> r) {
      std::lock_guard<std::mutex> lock(mu_);
      ++count_;
      if (!r.ok()) last_error_ = r.status();
      cv_.notify_all();
    };
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  Status last_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
  Status last_error_;
};

internal::InternalRequest SomeRequest() {
  internal::InternalRequest request;
  request.set_id(1);
  return request;
}

TEST(ForwarderTest, StopCancelsCallsToAHungLeaderAndAnswersEach) {
  testing::Blackhole hung;
  Answers answers;
  {
    Forwarder forwarder;
    const std::vector<std::string> urls = {hung.url()};
    const Deadline far = Clock::now() + seconds(60);
    // Two batch calls in flight (the most there are), the rest queued behind them.
    constexpr int kProposals = 5;
    for (int i = 0; i < kProposals; ++i) {
      forwarder.ProposeAsync(urls, SomeRequest(), far, answers.Callback());
    }
    forwarder.LeaseKeepAliveAsync(urls, etcdserverpb::LeaseKeepAliveRequest(), far,
                                  answers.Callback());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(answers.count(), 0);  // The leader hangs: nothing is answered yet.

    const auto start = Clock::now();
    forwarder.Stop();
    EXPECT_LT(Clock::now() - start, seconds(5));  // Not the 60 s deadline.
    EXPECT_EQ(answers.count(), kProposals + 1);
    EXPECT_EQ(answers.last_error().code(), StatusCode::kUnavailable);

    // Stopped: a new call is answered at once, without a network call.
    forwarder.ProposeAsync(urls, SomeRequest(), far, answers.Callback());
    EXPECT_EQ(answers.count(), kProposals + 2);
    EXPECT_EQ(answers.last_error().code(), StatusCode::kUnavailable);
  }  // The destructor stops again: nothing left, returns at once.
}

TEST(ForwarderTest, AnUnreachableLeaderIsAnsweredByTheDeadline) {
  Answers answers;
  Forwarder forwarder;
  const std::vector<std::string> urls = {"http://127.0.0.1:" +
                                         std::to_string(testing::ClosedPort())};
  forwarder.ProposeAsync(urls, SomeRequest(), Clock::now() + std::chrono::milliseconds(300),
                         answers.Callback());
  const auto give_up = Clock::now() + seconds(10);
  while (answers.count() == 0 && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(answers.count(), 1);
  EXPECT_EQ(answers.last_error().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ballot::server
