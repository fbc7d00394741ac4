// What a child process costs, read from /proc (tests compare these, never wall-clock time).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace fedface::testing {

// Peak resident memory (VmHWM) in KiB; -1 when unreadable.
int64_t PeakRssKib(pid_t pid);
// Current resident memory (VmRSS) in KiB; -1 when unreadable.
int64_t RssKib(pid_t pid);
// Open file descriptors (entries of /proc/PID/fd); -1 when unreadable.
int OpenFiles(pid_t pid);
// User plus system CPU time used so far, in seconds; -1 when unreadable.
double CpuSeconds(pid_t pid);

}  // namespace fedface::testing
