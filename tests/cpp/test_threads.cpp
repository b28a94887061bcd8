// The thread pool: an exception thrown by any member of a region (a worker's or the caller's
// share, or the body of a one-thread region) reaches the caller after every member has
// finished, and the pool keeps working afterwards.
#include <atomic>
#include <stdexcept>
#include <string>

#include "check.h"
#include "fastgru/threads.h"

using namespace fastgru;
using namespace fastgru_test;

namespace {

// Runs a region whose member `thrower` throws; returns the message the caller caught ("" if
// none) and counts the members that ran to the end.
std::string region_throwing_in(int thrower, int threads, std::atomic<int>& finished) {
  try {
    parallel_run(
        [&](const Team& team) {
          if (team.tid == thrower) throw std::runtime_error("member " + std::to_string(team.tid));
          finished.fetch_add(1);
        },
        threads);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

int main() {
  Checker check;
  set_num_threads(2);
  for (int thrower : {0, 1}) {
    std::atomic<int> finished{0};
    const std::string caught = region_throwing_in(thrower, 2, finished);
    check.expect("the caller catches member " + std::to_string(thrower) + "'s exception",
                 caught == "member " + std::to_string(thrower));
    check.expect("the other member finished", finished.load() == 1);
  }
  std::atomic<int> finished{0};
  check.expect("a one-thread region's exception reaches the caller", region_throwing_in(0, 1, finished) == "member 0");
  // Afterwards regions still run on both threads (nothing was left marked "inside a region").
  std::atomic<int> members{0};
  parallel_run([&](const Team& team) {
    members.fetch_add(1);
    team.barrier();
  });
  check.expect("the pool still runs a 2-thread region", members.load() == 2);
  return check.report("test_threads");
}
