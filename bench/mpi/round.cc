#include "bench/mpi/round.h"

#include <algorithm>

#include "bench/bench_util.h"
#include "bench/mpi/object_bytes.h"
#include "bench/mpi/patterns.h"
#include "bench/mpi/process_cpu.h"

namespace plasma::mpibench {

namespace {

// A fetcher with k sources takes objects/k from each (the first objects%k one more).
int ShareOf(int objects, const std::vector<int>& sources, int source) {
  int k = int(sources.size());
  int index = int(std::find(sources.begin(), sources.end(), source) - sources.begin());
  return objects / k + (index < objects % k ? 1 : 0);
}

double DaemonCpu(const Daemons& daemons) {
  double store = ProcessCpuSeconds(daemons.store_pid);
  double manager = ProcessCpuSeconds(daemons.manager_pid);
  if (daemons.store_pid <= 0 || daemons.manager_pid <= 0 || store < 0 || manager < 0) return -1;
  return store + manager;
}

std::string IdsToBytes(const std::vector<ObjectId>& ids) {
  std::string bytes;
  for (const auto& id : ids) bytes += id.Binary();
  return bytes;
}

std::vector<ObjectId> IdsFromBytes(const std::string& bytes) {
  std::vector<ObjectId> ids;
  for (size_t at = 0; at + ObjectId::kSize <= bytes.size(); at += ObjectId::kSize) {
    ids.push_back(*ObjectId::FromBinary(std::string_view(bytes).substr(at, ObjectId::kSize)));
  }
  return ids;
}

// Creates count filled, sealed objects; the ids made (fewer on error).
std::vector<ObjectId> CreateObjects(Client& client, uint64_t size, int count, std::string* error) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < count; ++i) {
    ObjectId id = ObjectId::Random();
    auto buffer = client.Create(id, int64_t(size));
    if (!buffer.ok()) {
      *error = "creating an object of " + std::to_string(size) + " bytes: " + buffer.status().ToString();
      break;
    }
    FillObject(id, buffer->data(), size);
    buffer->Release();
    Status sealed = client.Seal(id);
    if (!sealed.ok()) {
      *error = "sealing: " + sealed.ToString();
      break;
    }
    ids.push_back(id);
  }
  return ids;
}

// Every fetched object present, of the right size, every byte right.
int CountWrongObjects(Client& client, const std::vector<ObjectId>& ids, uint64_t size,
                      std::string* error) {
  int wrong = 0;
  const size_t chunk = 16;
  for (size_t at = 0; at < ids.size(); at += chunk) {
    std::vector<ObjectId> some(ids.begin() + long(at),
                               ids.begin() + long(std::min(ids.size(), at + chunk)));
    auto buffers = client.Get(some, 0);
    if (!buffers.ok()) {
      if (error->empty()) *error = "reading fetched objects back: " + buffers.status().ToString();
      wrong += int(some.size());
      continue;
    }
    for (size_t i = 0; i < some.size(); ++i) {
      const ObjectBuffer& buffer = (*buffers)[i];
      std::string problem;
      if (!buffer.valid()) {
        problem = "missing after its Fetch succeeded";
      } else if (uint64_t(buffer.data_size()) != size) {
        problem = "has " + std::to_string(buffer.data_size()) + " bytes, not " + std::to_string(size);
      } else {
        size_t first = FirstWrongByte(some[i], buffer.data(), size);
        if (first != size) problem = "has a wrong byte at offset " + std::to_string(first);
      }
      if (!problem.empty()) {
        ++wrong;
        if (error->empty()) *error = "object " + some[i].Hex() + " " + problem;
      }
    }
  }
  return wrong;
}

}  // namespace

RankOutcome RunRound(const World& world, Client& client, const Daemons& daemons,
                     const RoundSpec& spec) {
  RankOutcome outcome;
  const RankPlan plan = PlanFor(spec.pattern, world.rank, world.ranks);
  outcome.fetches = !plan.sources.empty();
  outcome.holds = !plan.served.empty();

  // Each set starts with one untimed object that opens the connection.
  std::vector<std::string> to(size_t(world.ranks));
  std::vector<ObjectId> held;
  if (plan.one_set_for_all) {
    held = CreateObjects(client, spec.size, spec.objects + 1, &outcome.error);
    for (int fetcher : plan.served) to[size_t(fetcher)] = IdsToBytes(held);
  } else {
    for (int fetcher : plan.served) {
      RankPlan theirs = PlanFor(spec.pattern, fetcher, world.ranks);
      int count = ShareOf(spec.objects, theirs.sources, world.rank) + 1;
      auto ids = CreateObjects(client, spec.size, count, &outcome.error);
      to[size_t(fetcher)] = IdsToBytes(ids);
      held.insert(held.end(), ids.begin(), ids.end());
    }
  }
  std::vector<std::string> received = ExchangeStrings(to);

  std::vector<ObjectId> warm_up, timed;
  std::vector<std::vector<ObjectId>> per_source;
  for (int source : plan.sources) {
    auto ids = IdsFromBytes(received[size_t(source)]);
    if (ids.empty()) continue;
    warm_up.push_back(ids[0]);
    per_source.emplace_back(ids.begin() + 1, ids.end());
  }
  // Round robin over the sources, so that a batch pulls from all of them.
  for (size_t i = 0;; ++i) {
    bool any = false;
    for (const auto& ids : per_source) {
      if (i < ids.size()) {
        timed.push_back(ids[i]);
        any = true;
      }
    }
    if (!any) break;
  }

  Barrier();  // every object exists
  if (!warm_up.empty() && outcome.error.empty()) {
    Status s = client.Fetch(warm_up, spec.timeout_ms);
    if (!s.ok()) outcome.error = "warm-up fetch: " + s.ToString();
  }
  Barrier();
  double daemon_cpu_before = DaemonCpu(daemons);
  double own_cpu_before = OwnCpuSeconds();
  if (outcome.fetches && outcome.error.empty()) {
    double start = bench::NowSeconds();
    for (size_t at = 0; at < timed.size(); at += size_t(spec.batch)) {
      std::vector<ObjectId> batch(timed.begin() + long(at),
                                  timed.begin() + long(std::min(timed.size(), at + spec.batch)));
      double call = bench::NowSeconds();
      Status s = client.Fetch(batch, spec.timeout_ms);
      outcome.latencies.push_back(bench::NowSeconds() - call);
      if (!s.ok()) {
        outcome.error = "Fetch of " + std::to_string(batch.size()) + " objects: " + s.ToString();
        break;
      }
      outcome.bytes += double(batch.size()) * double(spec.size);
    }
    outcome.seconds = bench::NowSeconds() - start;
    outcome.client_cpu = OwnCpuSeconds() - own_cpu_before;
  }
  Barrier();  // every fetcher done: the holders have served everything
  double daemon_cpu_after = DaemonCpu(daemons);
  if (daemon_cpu_before >= 0 && daemon_cpu_after >= 0) {
    outcome.daemon_cpu = daemon_cpu_after - daemon_cpu_before;
  }

  std::vector<ObjectId> fetched = warm_up;
  fetched.insert(fetched.end(), timed.begin(), timed.end());
  if (outcome.fetches && outcome.error.empty()) {
    outcome.wrong_objects = CountWrongObjects(client, fetched, spec.size, &outcome.error);
  }
  std::vector<Status> ignored;
  client.Delete(fetched, &ignored);
  Barrier();  // nobody reads a held object any more
  client.Delete(held, &ignored);
  return outcome;
}

std::vector<RankOutcome> GatherOutcomes(const RankOutcome& mine) {
  std::vector<double> packed = {mine.fetches ? 1.0 : 0.0, mine.holds ? 1.0 : 0.0, mine.bytes,
                                mine.seconds, mine.client_cpu, mine.daemon_cpu,
                                double(mine.wrong_objects), double(mine.latencies.size())};
  packed.insert(packed.end(), mine.latencies.begin(), mine.latencies.end());
  std::vector<double> all = GatherDoubles(packed);
  std::vector<std::string> errors = GatherStrings(mine.error);
  std::vector<RankOutcome> outcomes;
  for (size_t at = 0, rank = 0; at + 8 <= all.size(); ++rank) {
    RankOutcome o;
    o.fetches = all[at] != 0;
    o.holds = all[at + 1] != 0;
    o.bytes = all[at + 2];
    o.seconds = all[at + 3];
    o.client_cpu = all[at + 4];
    o.daemon_cpu = all[at + 5];
    o.wrong_objects = int(all[at + 6]);
    size_t latencies = size_t(all[at + 7]);
    o.latencies.assign(all.begin() + long(at + 8), all.begin() + long(at + 8 + latencies));
    o.error = rank < errors.size() ? errors[rank] : "";
    outcomes.push_back(std::move(o));
    at += 8 + latencies;
  }
  return outcomes;
}

}  // namespace plasma::mpibench
