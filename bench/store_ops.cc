// bench/store_ops: put / get / delete throughput of plasma-store-server
// against a real redis-server (SET / GET / DEL through hiredis over a Unix
// socket), for object sizes 1 KiB .. 64 MiB, measured in one run.
//
// put  = create, write every byte, seal (plasma)     | SET (redis)
// get  = get, read every byte, release (plasma)      | GET, read every byte (redis)
// get_map = get, release: bytes untouched (plasma)   | GET (redis; the bytes still cross the socket)
// del  = delete                                      | DEL
//
// Usage: store_ops [--csv FILE] [--plot FILE.png] [--max-size BYTES] [--budget BYTES]
#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "plasma/client/client.h"

using namespace plasma;
using namespace plasma::bench;

namespace {

// Reads every byte (as 64-bit words) so a "get" really touches the object.
uint64_t Checksum(const uint8_t* data, size_t size) {
  uint64_t sum = 0;
  size_t words = size / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t w;
    std::memcpy(&w, data + 8 * i, 8);
    sum += w;
  }
  for (size_t i = words * 8; i < size; ++i) sum += data[i];
  return sum;
}

struct Timings {
  // Seconds for `count` operations. get reads every byte; get_map only maps
  // (plasma) or receives (redis) the object, as the thesis measured.
  double put = 0, get = 0, get_map = 0, del = 0;
};

Status RunPlasma(Client& client, size_t size, size_t count, const std::vector<uint8_t>& source,
                 Timings* out, uint64_t* checksum) {
  std::vector<ObjectId> ids(count);
  for (auto& id : ids) id = ObjectId::Random();
  double start = NowSeconds();
  for (const auto& id : ids) {
    PLASMA_ASSIGN_OR_RETURN(ObjectBuffer buffer, client.Create(id, int64_t(size)));
    std::memcpy(buffer.data(), source.data(), size);
    PLASMA_RETURN_NOT_OK(client.Seal(id));
  }
  out->put = NowSeconds() - start;
  start = NowSeconds();
  for (const auto& id : ids) {
    PLASMA_ASSIGN_OR_RETURN(auto buffers, client.Get({id}, -1));
    if (!buffers[0].valid()) return Status::Internal("object " + id.Hex() + " missing");
    *checksum += Checksum(buffers[0].data(), size);
  }
  out->get = NowSeconds() - start;
  start = NowSeconds();
  for (const auto& id : ids) {
    PLASMA_ASSIGN_OR_RETURN(auto buffers, client.Get({id}, -1));
    if (!buffers[0].valid()) return Status::Internal("object " + id.Hex() + " missing");
  }
  out->get_map = NowSeconds() - start;
  start = NowSeconds();
  for (const auto& id : ids) PLASMA_RETURN_NOT_OK(client.Delete(id));
  out->del = NowSeconds() - start;
  return Status::OK();
}

Status Expect(redisReply* reply, int type, const char* what) {
  if (reply == nullptr) return Status::IOError(std::string("redis ") + what + ": no reply");
  bool ok = reply->type == type;
  std::string error = reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply type";
  freeReplyObject(reply);
  return ok ? Status::OK() : Status::IOError(std::string("redis ") + what + ": " + error);
}

Status RunRedis(redisContext* redis, size_t size, size_t count,
                const std::vector<uint8_t>& source, Timings* out, uint64_t* checksum) {
  std::vector<std::string> keys(count);
  for (auto& key : keys) key = ObjectId::Random().Binary();
  double start = NowSeconds();
  for (const auto& key : keys) {
    auto* reply = static_cast<redisReply*>(redisCommand(
        redis, "SET %b %b", key.data(), key.size(), source.data(), size));
    PLASMA_RETURN_NOT_OK(Expect(reply, REDIS_REPLY_STATUS, "SET"));
  }
  out->put = NowSeconds() - start;
  start = NowSeconds();
  for (const auto& key : keys) {
    auto* reply = static_cast<redisReply*>(redisCommand(redis, "GET %b", key.data(), key.size()));
    if (reply == nullptr || reply->type != REDIS_REPLY_STRING || size_t(reply->len) != size) {
      if (reply) freeReplyObject(reply);
      return Status::IOError("redis GET returned no value of the right size");
    }
    *checksum += Checksum(reinterpret_cast<const uint8_t*>(reply->str), size);
    freeReplyObject(reply);
  }
  out->get = NowSeconds() - start;
  start = NowSeconds();
  for (const auto& key : keys) {
    auto* reply = static_cast<redisReply*>(redisCommand(redis, "GET %b", key.data(), key.size()));
    bool ok = reply != nullptr && reply->type == REDIS_REPLY_STRING && size_t(reply->len) == size;
    if (reply) freeReplyObject(reply);
    if (!ok) return Status::IOError("redis GET returned no value of the right size");
  }
  out->get_map = NowSeconds() - start;
  start = NowSeconds();
  for (const auto& key : keys) {
    auto* reply = static_cast<redisReply*>(redisCommand(redis, "DEL %b", key.data(), key.size()));
    PLASMA_RETURN_NOT_OK(Expect(reply, REDIS_REPLY_INTEGER, "DEL"));
  }
  out->del = NowSeconds() - start;
  return Status::OK();
}

// Rows come four per size (put, get, get_map, delete): `every 4::k` picks one operation.
const char kPlotScript[] = R"(
set terminal pngcairo size 900,520 font ",10" noenhanced
set output '%s'
set datafile separator ','
set logscale x 2
set logscale y 10
set format x "%%.0b%%B"
set key top left
set grid
set xlabel 'object size (bytes)'
set ylabel 'plasma-store-server / redis-server (throughput ratio)'
set title 'store_ops: plasma vs redis, same run (higher is better; 1 = parity)'
plot '%s' skip 1 every 4::0 using 1:7 with linespoints title 'put (create+write+seal vs SET)', \
     '' skip 1 every 4::1 using 1:7 with linespoints title 'get (get+read every byte+release vs GET+read)', \
     '' skip 1 every 4::2 using 1:7 with linespoints title 'get_map (get+release, bytes untouched, vs GET)', \
     '' skip 1 every 4::3 using 1:7 with linespoints title 'delete vs DEL', \
     1 with lines dashtype 2 lc rgb 'gray' notitle
)";

}  // namespace

int main(int argc, char** argv) {
  std::string csv_path = "store_ops.csv";
  std::string plot_path;
  uint64_t max_size = 64ull << 20;
  uint64_t budget = 512ull << 20;  // bytes moved per size and operation
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--csv" && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (arg == "--plot" && i + 1 < argc) {
      plot_path = argv[++i];
    } else if (arg == "--max-size" && i + 1 < argc) {
      max_size = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--budget" && i + 1 < argc) {
      budget = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::cerr << "usage: store_ops [--csv FILE] [--plot FILE.png] [--max-size BYTES] "
                   "[--budget BYTES]\n";
      return 2;
    }
  }

  TempDir dir;
  std::string store_socket = dir.path() + "/plasma.sock";
  std::string redis_socket = dir.path() + "/redis.sock";
  uint64_t capacity = budget + 2 * max_size + (64 << 20);
  auto store = ChildProcess::Start(
      {FindExecutable("plasma-store-server"), "-m", std::to_string(capacity), "-s", store_socket},
      dir.path() + "/store.log", store_socket);
  if (!store.ok()) {
    std::cerr << "store_ops: cannot start plasma-store-server: " << store.status().ToString() << "\n";
    return 1;
  }
  auto redis = ChildProcess::Start({"redis-server", "--port", "0", "--unixsocket", redis_socket,
                                    "--save", "", "--appendonly", "no"},
                                   dir.path() + "/redis.log", redis_socket);
  if (!redis.ok()) {
    std::cerr << "store_ops: cannot start redis-server (apt-get install redis-server): "
              << redis.status().ToString() << "\n";
    return 1;
  }
  auto client = Client::Connect(store_socket);
  if (!client.ok()) {
    std::cerr << "store_ops: " << client.status().ToString() << "\n";
    return 1;
  }
  redisContext* redis_client = redisConnectUnix(redis_socket.c_str());
  if (redis_client == nullptr || redis_client->err) {
    std::cerr << "store_ops: cannot connect to redis at " << redis_socket << "\n";
    return 1;
  }

  Table table({"size_bytes", "operation", "plasma_ops_per_s", "redis_ops_per_s", "plasma_GBps",
               "redis_GBps", "plasma_over_redis"});
  std::vector<uint8_t> source(max_size);
  for (size_t i = 0; i < source.size(); ++i) source[i] = uint8_t(i * 2654435761u >> 13);
  uint64_t plasma_sum = 0, redis_sum = 0;
  for (uint64_t size : SizeLadder(1024, max_size, 4)) {
    size_t count = size_t(std::min<uint64_t>(std::max<uint64_t>(budget / size, 8), 5000));
    Timings plasma_t, redis_t;
    // Interleave the two systems size by size so drift hits both alike.
    Status s = RunPlasma(**client, size, count, source, &plasma_t, &plasma_sum);
    if (s.ok()) s = RunRedis(redis_client, size, count, source, &redis_t, &redis_sum);
    if (!s.ok()) {
      std::cerr << "store_ops: size " << size << ": " << s.ToString() << "\n";
      return 1;
    }
    auto add = [&](const char* op, double plasma_seconds, double redis_seconds) {
      double p = count / plasma_seconds, r = count / redis_seconds;
      table.AddRow({std::to_string(size), op, FormatDouble(p, 0), FormatDouble(r, 0),
                    FormatDouble(p * size / 1e9, 3), FormatDouble(r * size / 1e9, 3),
                    FormatDouble(p / r, 2)});
    };
    add("put", plasma_t.put, redis_t.put);
    add("get", plasma_t.get, redis_t.get);
    add("get_map", plasma_t.get_map, redis_t.get_map);
    add("delete", plasma_t.del, redis_t.del);
  }
  if (plasma_sum != redis_sum) {
    std::cerr << "store_ops: checksums differ between plasma and redis reads\n";
    return 1;
  }
  table.Print();
  Status written = table.WriteCsv(csv_path);
  if (!written.ok()) {
    std::cerr << "store_ops: " << written.ToString() << "\n";
    return 1;
  }
  std::cout << "wrote " << csv_path << "\n";
  if (!plot_path.empty()) {
    std::string script_path = dir.path() + "/plot.gp";
    FILE* script = std::fopen(script_path.c_str(), "w");
    std::fprintf(script, kPlotScript, plot_path.c_str(), csv_path.c_str());
    std::fclose(script);
    std::string command = "gnuplot " + script_path;
    if (std::system(command.c_str()) != 0) {
      std::cerr << "store_ops: gnuplot failed (apt-get install gnuplot-nox)\n";
      return 1;
    }
    std::cout << "wrote " << plot_path << "\n";
  }
  redisFree(redis_client);
  return 0;
}
