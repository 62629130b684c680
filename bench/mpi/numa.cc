#include "bench/mpi/numa.h"

#include "bench/mpi/devices.h"

#include <hwloc.h>

#include <cstdlib>
#include <memory>

namespace plasma::mpibench {

namespace {

// A loaded topology with I/O devices (network and RDMA), freed on scope exit.
struct Topology {
  hwloc_topology_t topology = nullptr;
  Topology() {
    hwloc_topology_init(&topology);
    hwloc_topology_set_io_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    hwloc_topology_load(topology);
  }
  ~Topology() { hwloc_topology_destroy(topology); }
};

std::string BitmapList(hwloc_const_bitmap_t bitmap) {
  char* text = nullptr;
  hwloc_bitmap_list_asprintf(&text, bitmap);
  std::string list = text ? text : "?";
  std::free(text);
  return list;
}

}  // namespace

std::string DefaultNumaDevice(const std::string& listen_address) {
  std::string rdma = FirstRdmaDevice();
  return rdma.empty() ? InterfaceWithAddress(listen_address) : rdma;
}

std::string BindNearDevice(const std::string& device) {
  Topology t;
  int numa_nodes = hwloc_get_nbobjs_by_type(t.topology, HWLOC_OBJ_NUMANODE);
  if (numa_nodes <= 1) {
    return "one NUMA node here: nothing to bind, carrying on unbound";
  }
  if (device.empty()) return "no network device found to bind near: carrying on unbound";
  hwloc_obj_t osdev = nullptr;
  while ((osdev = hwloc_get_next_osdev(t.topology, osdev)) != nullptr) {
    if (osdev->name && device == osdev->name) break;
  }
  if (!osdev) {
    return "hwloc does not place " + device +
           " (virtual devices such as lo, veth and rxe have no NUMA locality): carrying on unbound";
  }
  hwloc_obj_t near = hwloc_get_non_io_ancestor_obj(t.topology, osdev);
  if (!near || !near->cpuset || !near->nodeset) {
    return device + " has no NUMA locality: carrying on unbound";
  }
  if (hwloc_set_cpubind(t.topology, near->cpuset, HWLOC_CPUBIND_PROCESS) != 0) {
    return "binding CPUs near " + device + " failed: carrying on unbound";
  }
  // Memory too: the arena's pages and the NIC's buffers on the device's node.
  bool memory = hwloc_set_membind(t.topology, near->nodeset, HWLOC_MEMBIND_BIND,
                                  HWLOC_MEMBIND_PROCESS | HWLOC_MEMBIND_BYNODESET) == 0;
  return "bound near " + device + ": NUMA node " + BitmapList(near->nodeset) + ", cpus " +
         BitmapList(near->cpuset) + (memory ? ", memory there too" : ", memory unbound (refused)");
}

std::string DescribeBinding() {
  Topology t;
  hwloc_bitmap_t cpus = hwloc_bitmap_alloc();
  std::string text = "?";
  if (hwloc_get_cpubind(t.topology, cpus, HWLOC_CPUBIND_PROCESS) == 0) {
    text = "cpus " + BitmapList(cpus) + " of " +
           BitmapList(hwloc_topology_get_topology_cpuset(t.topology));
  }
  hwloc_bitmap_free(cpus);
  int numa_nodes = hwloc_get_nbobjs_by_type(t.topology, HWLOC_OBJ_NUMANODE);
  return text + ", " + std::to_string(numa_nodes) + " NUMA node" + (numa_nodes == 1 ? "" : "s");
}

}  // namespace plasma::mpibench
