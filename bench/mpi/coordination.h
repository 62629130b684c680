// What MPI does in this benchmark: it coordinates the ranks (barriers,
// exchanging ids and names, gathering results). No object byte crosses it.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

namespace plasma::mpibench {

struct World {
  int rank = 0;
  int ranks = 1;
};

World JoinWorld();

// A barrier that sleeps while it waits. Open MPI's MPI_Barrier spins, which
// on a small machine takes a core from the very managers being measured.
void Barrier();
// Every rank gets rank 0's text.
std::string BroadcastString(const std::string& text);
// True on every rank iff value is true on every rank.
bool AllAgree(bool value);
// Rank 0 gets every rank's text, in rank order; the others get nothing.
std::vector<std::string> GatherStrings(const std::string& text);
// Every rank gets every rank's text, in rank order.
std::vector<std::string> AllGatherStrings(const std::string& text);
// Sends to[i] to rank i; returns what each rank sent here, by sender.
std::vector<std::string> ExchangeStrings(const std::vector<std::string>& to);
// Rank 0 gets every rank's values, concatenated in rank order.
std::vector<double> GatherDoubles(const std::vector<double>& values);

}  // namespace plasma::mpibench
