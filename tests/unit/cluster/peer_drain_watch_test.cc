#include "shadowd/cluster/peer_drain_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace vs::cluster {
namespace {

using namespace std::chrono_literals;

TEST(PeerDrainWatch, AnswersFromTheLastRoundOfCallsAndCountsASilentPeerAsNotDraining) {
  std::map<std::string, StatusOr<bool>> answers = {{"h2", true}, {"h3", Unavailable("connection refused")}};
  PeerDrainWatch watch({"h2", "h3"}, [&](const std::string& host) { return answers.at(host); }, 1h);
  EXPECT_FALSE(watch.Draining("h2")) << "nothing asked yet";
  watch.AskAll();
  EXPECT_TRUE(watch.Draining("h2"));
  EXPECT_FALSE(watch.Draining("h3"));
  EXPECT_FALSE(watch.Draining("h9")) << "not a peer";
  answers.at("h2") = false;  // undrained
  watch.AskAll();
  EXPECT_FALSE(watch.Draining("h2"));
}

// The reason the watch exists: a peer that hangs delays only the watch's own thread, never a reader.
TEST(PeerDrainWatch, AReaderNeverWaitsForAPeerThatHangs) {
  std::mutex gate;
  std::unique_lock hold(gate);  // the peer's answer hangs until released
  std::atomic<int> calls{0};
  PeerDrainWatch watch(
      {"h2"},
      [&](const std::string&) -> StatusOr<bool> {
        ++calls;
        std::lock_guard wait(gate);
        return true;
      },
      10ms);
  watch.Start();
  while (calls.load() == 0) std::this_thread::sleep_for(1ms);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(watch.Draining("h2"));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 100ms);
  hold.unlock();
  while (!watch.Draining("h2")) std::this_thread::sleep_for(1ms);
  watch.Stop();  // ends the interval's wait at once (a hang here fails the test by its timeout)
}

}  // namespace
}  // namespace vs::cluster
