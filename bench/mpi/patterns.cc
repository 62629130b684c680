#include "bench/mpi/patterns.h"

namespace plasma::mpibench {

namespace {

std::vector<int> AllBut(int rank, int ranks) {
  std::vector<int> others;
  for (int r = 0; r < ranks; ++r) {
    if (r != rank) others.push_back(r);
  }
  return others;
}

}  // namespace

RankPlan PlanFor(const std::string& pattern, int rank, int ranks) {
  RankPlan plan;
  if (pattern == "pairwise") {
    plan.sources = {(rank + 1) % ranks};
    plan.served = {(rank + ranks - 1) % ranks};
  } else if (pattern == "many-to-one") {
    if (rank == 0) plan.sources = AllBut(0, ranks);
    else plan.served = {0};
  } else if (pattern == "one-to-many") {
    if (rank == 0) {
      plan.served = AllBut(0, ranks);
      plan.one_set_for_all = true;
    } else {
      plan.sources = {0};
    }
  } else if (pattern == "all-to-all") {
    plan.sources = AllBut(rank, ranks);
    plan.served = plan.sources;
  }
  return plan;
}

bool RolesMix(const std::string& pattern) { return pattern == "pairwise" || pattern == "all-to-all"; }

}  // namespace plasma::mpibench
