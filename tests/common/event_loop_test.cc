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

}  // namespace
}  // namespace plasma
