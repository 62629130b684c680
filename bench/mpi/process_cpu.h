// CPU time of the processes a rank measures: itself, its node's store and manager.
#pragma once

#include <sys/types.h>

#include <string>

namespace plasma::mpibench {

// CPU seconds of pid so far (its live threads, from /proc, to the nanosecond);
// negative when the process cannot be read.
double ProcessCpuSeconds(pid_t pid);
// This process's CPU seconds (all its threads), to the nanosecond.
double OwnCpuSeconds();
// The process listening on the Unix socket at path, found through
// /proc/net/unix and /proc/*/fd (the same network namespace only); -1 if none.
pid_t PidListeningOn(const std::string& socket_path);
// The pid written in a pid file; -1 if it cannot be read.
pid_t PidFromFile(const std::string& path);

}  // namespace plasma::mpibench
