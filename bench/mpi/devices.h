// This host's network devices, as the benchmark needs them: the RDMA
// device, and interfaces with their IPv4 addresses.
#pragma once

#include <string>

namespace plasma::mpibench {

// The first RDMA device (/sys/class/infiniband), empty if none.
std::string FirstRdmaDevice();
// The IPv4 address of interface, empty if it has none.
std::string Ipv4AddressOf(const std::string& interface);
// The interface holding the IPv4 address, empty if none does.
std::string InterfaceWithAddress(const std::string& address);

}  // namespace plasma::mpibench
