// The event loop delivers fd events and timers, and stops, the same with
// busy polling on as off (busy polling changes how it waits, not what it
// delivers).
#include "plasma/common/event_loop.h"

#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

namespace plasma {
namespace {

class EventLoopTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(EventLoopTest, DeliversEventsAndTimersThenStops) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status().ToString();
  (*loop)->SetBusyPoll(GetParam());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int bytes_read = 0;
  bool timer_fired = false;
  ASSERT_TRUE((*loop)
                  ->Watch(fds[0], EPOLLIN,
                          [&](uint32_t) {
                            char buffer[64];
                            ssize_t n = read(fds[0], buffer, sizeof(buffer));
                            if (n > 0) bytes_read += int(n);
                            // Three messages, then a timer after the last
                            // event ends the loop: timers fire while polling.
                            if (bytes_read == 3) {
                              (*loop)->AddTimer(5, [&] {
                                timer_fired = true;
                                (*loop)->Stop();
                              });
                            }
                          })
                  .ok());
  std::thread writer([&] {
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ASSERT_EQ(write(fds[1], "x", 1), 1);
    }
  });
  // Bounded: a loop that never stops fails the test instead of hanging it.
  (*loop)->AddTimer(10000, [&] { (*loop)->Stop(); });
  (*loop)->Run();
  writer.join();
  EXPECT_EQ(bytes_read, 3);
  EXPECT_TRUE(timer_fired);
  close(fds[0]);
  close(fds[1]);
}

INSTANTIATE_TEST_SUITE_P(BusyPoll, EventLoopTest, ::testing::Values(0, 200, 50000));

// One fd event, then a timer 20 ms later ends the loop. A sleeping loop
// waits a handful of times (the event, the timer); one that busy-polls for
// longer than that keeps calling epoll_wait until the timer fires.
uint64_t WaitsAroundOneEvent(int64_t busy_poll_us) {
  auto loop = EventLoop::Create();
  EXPECT_TRUE(loop.ok());
  if (!loop.ok()) return 0;
  (*loop)->SetBusyPoll(busy_poll_us);
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  EXPECT_EQ(write(fds[1], "x", 1), 1);
  EXPECT_TRUE((*loop)
                  ->Watch(fds[0], EPOLLIN,
                          [&](uint32_t) {
                            char c;
                            EXPECT_EQ(read(fds[0], &c, 1), 1);
                            (*loop)->AddTimer(20, [&] { (*loop)->Stop(); });
                          })
                  .ok());
  (*loop)->Run();
  close(fds[0]);
  close(fds[1]);
  return (*loop)->waits();
}

TEST(EventLoop, BusyPollingKeepsPollingAfterAnEvent) {
  uint64_t sleeping = WaitsAroundOneEvent(0);
  uint64_t polling = WaitsAroundOneEvent(1000000);  // past the timer
  EXPECT_LE(sleeping, 5u);
  EXPECT_GE(polling, 50u) << "a loop told to busy-poll slept instead";
}

}  // namespace
}  // namespace plasma
