// Who fetches from whom in each pattern.
#pragma once

#include <string>
#include <vector>

namespace plasma::mpibench {

struct RankPlan {
  std::vector<int> sources;  // ranks whose objects this rank fetches
  std::vector<int> served;   // ranks that fetch objects this rank holds
  // one-to-many: this rank holds one set of objects that every rank in
  // `served` fetches (the same objects); otherwise one set per fetcher.
  bool one_set_for_all = false;
};

// pattern: pairwise (rank i fetches from i+1), many-to-one (rank 0 from all),
// one-to-many (all the same objects from rank 0), all-to-all. ranks >= 2.
RankPlan PlanFor(const std::string& pattern, int rank, int ranks);
// Some rank both fetches and serves (pairwise, all-to-all): per-side CPU
// figures cannot be separated.
bool RolesMix(const std::string& pattern);

}  // namespace plasma::mpibench
