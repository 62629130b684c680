// Uses only the installed public headers: ids, statuses, and a connection
// attempt that must fail cleanly (no store runs at that path).
#include <plasma/client/client.h>

#include <cstdio>

int main(int argc, char** argv) {
  plasma::ObjectId id = plasma::ObjectId::Random();
  auto parsed = plasma::ObjectId::FromHex(id.Hex());
  if (!parsed.ok() || *parsed != id) return 1;
  plasma::ConnectOptions options;
  options.connect_attempts = 1;
  auto client = plasma::Client::Connect(argc > 1 ? argv[1] : "/nonexistent/plasma.sock", options);
  if (client.ok()) return 2;
  std::printf("consumer ok: %s\n", client.status().ToString().c_str());
  return 0;
}
