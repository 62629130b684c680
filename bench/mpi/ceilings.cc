#include "bench/mpi/ceilings.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "bench/bench_util.h"
#include "bench/mpi/devices.h"

namespace plasma::mpibench {

namespace {

constexpr double kMiB = 1048576.0;

// A server in its own process group, stopped (the group) on destruction.
class Server {
 public:
  explicit Server(const std::string& command) {
    // Made before fork(): an MPI rank has threads, so its child may only make
    // async-signal-safe calls until it execs.
    const std::string script = "exec " + command;
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
      }
      execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_ > 0) setpgid(pid_, pid_);
  }
  ~Server() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(10000);
    }
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
};

// One client/server pair: rank 1 serves, rank 0 runs the client and parses
// its output into GB/s (0: it failed, why in *failure on rank 0).
double MeasurePairOnce(const World& world, const std::string& server_command,
                       const std::string& client_command,
                       double (*parse)(const std::string&, uint64_t), uint64_t size,
                       std::string* failure) {
  double gbps = 0;
  {
    std::unique_ptr<Server> server;
    if (world.rank == 1) {
      server = std::make_unique<Server>(server_command);
      usleep(500000);  // until it listens
    }
    Barrier();
    if (world.rank == 0) {
      int code = 0;
      std::string out = bench::RunCommand("timeout 120 " + client_command, &code);
      gbps = code == 0 ? parse(out, size) : 0;
      if (gbps <= 0) {
        std::string tail = out.size() > 300 ? out.substr(out.size() - 300) : out;
        std::replace(tail.begin(), tail.end(), '\n', ' ');
        *failure = "exit " + std::to_string(code) + ": " + tail;
      }
    }
    Barrier();
  }
  MPI_Bcast(&gbps, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return gbps;
}

// Twice if the first attempt reports nothing: under emulation perftest
// once in a while prints 0.00 MB/sec for a run that moved its bytes.
double MeasurePair(const World& world, const std::string& server_command,
                   const std::string& client_command, double (*parse)(const std::string&, uint64_t),
                   uint64_t size, std::string* failure) {
  double gbps = MeasurePairOnce(world, server_command, client_command, parse, size, failure);
  if (gbps > 0) return gbps;
  failure->clear();
  return MeasurePairOnce(world, server_command, client_command, parse, size, failure);
}

double ParseIperf3(const std::string& out, uint64_t) { return bench::Iperf3ReceivedGBps(out); }

// ucx_perftest -f -v: CSV lines; field 6 is the overall bandwidth (MiB/s).
double ParseUcxPerftest(const std::string& out, uint64_t) {
  std::istringstream lines(out);
  std::string line;
  double gbps = 0;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::istringstream parts(line);
    std::string field;
    while (std::getline(parts, field, ',')) {
      field.erase(0, field.find_first_not_of(' '));  // perftest right-aligns the first column
      fields.push_back(field);
    }
    if (fields.size() >= 8 && !fields[0].empty() &&
        std::all_of(fields[0].begin(), fields[0].end(), ::isdigit)) {
      gbps = std::strtod(fields[5].c_str(), nullptr) * kMiB / 1e9;
    }
  }
  return gbps;
}

// perftest: "#bytes #iterations BW-peak BW-average MsgRate" (MB/sec = MiB/s).
double ParsePerftest(const std::string& out, uint64_t size) {
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string bytes, iterations, peak, average;
    if (words >> bytes >> iterations >> peak >> average && bytes == std::to_string(size)) {
      return std::strtod(average.c_str(), nullptr) * kMiB / 1e9;
    }
  }
  return 0;
}

// The first RDMA device, and for RoCE the GID index of its RoCE v2 IPv4 GID.
struct RdmaDevice {
  std::string name;
  std::string gid_flag;  // "-x N" or empty (InfiniBand)
};

std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

RdmaDevice FindRdmaDevice() {
  RdmaDevice device;
  device.name = FirstRdmaDevice();
  if (device.name.empty()) return device;
  std::string port = "/sys/class/infiniband/" + device.name + "/ports/1";
  if (ReadLine(port + "/link_layer") == "Ethernet") {
    for (int index = 0; index < 16; ++index) {
      std::string gid = ReadLine(port + "/gids/" + std::to_string(index));
      std::string type = ReadLine(port + "/gid_attrs/types/" + std::to_string(index));
      if (type == "RoCE v2" && gid.rfind("0000:0000:0000:0000:0000:ffff:", 0) == 0) {
        device.gid_flag = "-x " + std::to_string(index);
        break;
      }
    }
  }
  return device;
}

// Iterations moving about 32 MiB per run (an emulated device does 20 MB/s).
uint64_t Iterations(uint64_t size) {
  return std::clamp<uint64_t>((32ull << 20) / size, 20, 1000);
}

}  // namespace

std::vector<Ceiling> MeasureCeilings(const World& world, const CeilingPlan& plan) {
  std::vector<Ceiling> ceilings;
  if (world.ranks < 2) return ceilings;
  auto note = [&](const std::string& line) {
    if (world.rank == 0) std::cerr << "plasma-mpi-bench: " << line << "\n";
  };
  const std::string& address = plan.server_address;
  std::string failure;
  int port = 5600;

  note("ceiling: iperf3 between rank 0 and rank 1 (" + address + ")");
  double iperf = MeasurePair(
      world, plan.server_prefix + "iperf3 -s -1 -B " + address + " -p " + std::to_string(port),
      plan.client_prefix + "iperf3 -c " + address + " -p " + std::to_string(port) +
          " -l 1M -t 2 -J",
      ParseIperf3, 0, &failure);
  if (iperf > 0) ceilings.push_back({"iperf3 -l 1M", 0, iperf});
  else note("iperf3 did not run, skipped: " + failure);

  if (plan.ucx) {
    std::string env = EnvCommandPrefix(plan.ucx_env);
    for (uint64_t size : plan.sizes) {
      failure.clear();
      std::string common = "ucx_perftest -t tag_bw -s " + std::to_string(size) + " -n " +
                           std::to_string(Iterations(size)) + " -w 10 -O 32 -z -f -v -e -p " +
                           std::to_string(++port);
      note("ceiling: ucx_perftest tag_bw " + bench::FormatBytes(size));
      double gbps = MeasurePair(world, plan.server_prefix + env + common,
                                plan.client_prefix + env + common + " " + address,
                                ParseUcxPerftest, size, &failure);
      if (gbps <= 0) {
        note("ucx_perftest did not run at " + bench::FormatBytes(size) + ", skipped from there on: " + failure);
        break;
      }
      ceilings.push_back({"ucx_perftest tag_bw", size, gbps});
    }
  }

  // Both ranks must see a device (rank 0's decides).
  RdmaDevice device = FindRdmaDevice();
  bool have_device = AllAgree(!device.name.empty());
  if (!have_device) {
    note("no RDMA device on rank 0 and 1: ib_read_bw / ib_send_bw skipped");
    return ceilings;
  }
  for (const std::string tool : {"ib_read_bw", "ib_send_bw"}) {
    for (uint64_t size : plan.sizes) {
      failure.clear();
      std::string common = tool + " -d " + device.name + " " + device.gid_flag + " -s " +
                           std::to_string(size) + " -n " + std::to_string(Iterations(size)) +
                           " -F -p " + std::to_string(++port);
      note("ceiling: " + tool + " " + bench::FormatBytes(size));
      double gbps = MeasurePair(world, plan.server_prefix + common,
                                plan.client_prefix + common + " " + address, ParsePerftest, size,
                                &failure);
      if (gbps <= 0) {
        note(tool + " did not run at " + bench::FormatBytes(size) + ", skipped from there on: " + failure);
        break;
      }
      ceilings.push_back({tool, size, gbps});
    }
  }
  return ceilings;
}

}  // namespace plasma::mpibench
