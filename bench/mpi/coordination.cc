#include "bench/mpi/coordination.h"

#include <time.h>

namespace plasma::mpibench {

namespace {

void Nap() {
  timespec pause{0, 200 * 1000};
  nanosleep(&pause, nullptr);
}

// MPI calls below complete fast once every rank is in them; only the barrier
// waits on slow ranks, and it is the one that naps.
std::vector<int> GatherCounts(int count, bool everyone) {
  int ranks;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  std::vector<int> counts(size_t(ranks), 0);
  if (everyone) {
    MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  } else {
    MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  }
  return counts;
}

std::vector<int> Offsets(const std::vector<int>& counts, int* total) {
  std::vector<int> offsets(counts.size(), 0);
  *total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    offsets[i] = *total;
    *total += counts[i];
  }
  return offsets;
}

std::vector<std::string> Split(const std::vector<char>& all, const std::vector<int>& counts,
                               const std::vector<int>& offsets) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < counts.size(); ++i) {
    parts.emplace_back(all.data() + offsets[i], size_t(counts[i]));
  }
  return parts;
}

}  // namespace

World JoinWorld() {
  World world;
  MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world.ranks);
  return world;
}

void Barrier() {
  MPI_Request request;
  MPI_Ibarrier(MPI_COMM_WORLD, &request);
  int done = 0;
  for (;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    Nap();
  }
}

std::string BroadcastString(const std::string& text) {
  int size = int(text.size());
  MPI_Bcast(&size, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string received = text;
  received.resize(size_t(size));
  MPI_Bcast(received.data(), size, MPI_CHAR, 0, MPI_COMM_WORLD);
  return received;
}

bool AllAgree(bool value) {
  int mine = value ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

std::vector<std::string> GatherStrings(const std::string& text) {
  std::vector<int> counts = GatherCounts(int(text.size()), false);
  int total = 0;
  std::vector<int> offsets = Offsets(counts, &total);
  std::vector<char> all(size_t(total) + 1);
  MPI_Gatherv(text.data(), int(text.size()), MPI_CHAR, all.data(), counts.data(), offsets.data(),
              MPI_CHAR, 0, MPI_COMM_WORLD);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) return {};
  return Split(all, counts, offsets);
}

std::vector<std::string> AllGatherStrings(const std::string& text) {
  std::vector<int> counts = GatherCounts(int(text.size()), true);
  int total = 0;
  std::vector<int> offsets = Offsets(counts, &total);
  std::vector<char> all(size_t(total) + 1);
  MPI_Allgatherv(text.data(), int(text.size()), MPI_CHAR, all.data(), counts.data(),
                 offsets.data(), MPI_CHAR, MPI_COMM_WORLD);
  return Split(all, counts, offsets);
}

std::vector<std::string> ExchangeStrings(const std::vector<std::string>& to) {
  std::vector<int> send_counts, receive_counts(to.size());
  std::string send;
  for (const auto& part : to) {
    send_counts.push_back(int(part.size()));
    send += part;
  }
  MPI_Alltoall(send_counts.data(), 1, MPI_INT, receive_counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  int send_total = 0, receive_total = 0;
  std::vector<int> send_offsets = Offsets(send_counts, &send_total);
  std::vector<int> receive_offsets = Offsets(receive_counts, &receive_total);
  std::vector<char> received(size_t(receive_total) + 1);
  MPI_Alltoallv(send.data(), send_counts.data(), send_offsets.data(), MPI_CHAR, received.data(),
                receive_counts.data(), receive_offsets.data(), MPI_CHAR, MPI_COMM_WORLD);
  return Split(received, receive_counts, receive_offsets);
}

std::vector<double> GatherDoubles(const std::vector<double>& values) {
  std::vector<int> counts = GatherCounts(int(values.size()), false);
  int total = 0;
  std::vector<int> offsets = Offsets(counts, &total);
  std::vector<double> all(static_cast<size_t>(total));
  MPI_Gatherv(values.data(), int(values.size()), MPI_DOUBLE, all.data(), counts.data(),
              offsets.data(), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return all;
}

}  // namespace plasma::mpibench
