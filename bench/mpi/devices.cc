#include "bench/mpi/devices.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <functional>

namespace plasma::mpibench {

namespace {

// Calls visit(interface, address) for each IPv4 address until it returns true.
void ForEachIpv4(const std::function<bool(const std::string&, const std::string&)>& visit) {
  ifaddrs* addresses = nullptr;
  if (getifaddrs(&addresses) != 0) return;
  for (ifaddrs* a = addresses; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof(text));
    if (visit(a->ifa_name, text)) break;
  }
  freeifaddrs(addresses);
}

}  // namespace

std::string FirstRdmaDevice() {
  std::string name;
  if (DIR* dir = opendir("/sys/class/infiniband")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') {
        name = entry->d_name;
        break;
      }
    }
    closedir(dir);
  }
  return name;
}

std::string Ipv4AddressOf(const std::string& interface) {
  std::string found;
  ForEachIpv4([&](const std::string& name, const std::string& address) {
    if (name == interface) found = address;
    return !found.empty();
  });
  return found;
}

std::string InterfaceWithAddress(const std::string& address) {
  std::string found;
  ForEachIpv4([&](const std::string& name, const std::string& held) {
    if (held == address) found = name;
    return !found.empty();
  });
  return found;
}

}  // namespace plasma::mpibench
