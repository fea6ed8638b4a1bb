// The calling thread's nice value on Linux and Android, for Swift, which cannot call the variadic
// `syscall(SYS_gettid)` that names the thread (glibc before 2.30 has no `gettid`).
#ifndef EMBER_CTHREADPRIORITY_H
#define EMBER_CTHREADPRIORITY_H

/// `setpriority(PRIO_PROCESS, gettid(), nice)` for the calling thread: 0 on success, -1 with errno
/// set when refused (raising priority without the right) or on other systems.
int thread_priority_set_current_nice(int nice);

#endif
