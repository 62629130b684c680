// NUMA placement: each rank, and the store and manager it starts (they
// inherit its CPU and memory binding), on the NUMA node of the network
// device the transport uses. The thesis measured 1.5x on local operations.
#pragma once

#include <string>

namespace plasma::mpibench {

// The device to bind near by default: the first RDMA device, else the
// network interface holding listen_address; empty if neither is found.
std::string DefaultNumaDevice(const std::string& listen_address);
// Binds this process near device; returns what it did, in one line (on a
// single-NUMA machine, or for a device without locality, it binds nothing
// and says so).
std::string BindNearDevice(const std::string& device);
// This process's CPU binding, e.g. "cpus 0-1 (of 0-1), 1 NUMA node".
std::string DescribeBinding();

}  // namespace plasma::mpibench
