#if defined(__linux__)
#define _GNU_SOURCE
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <errno.h>
#endif
#include "CThreadPriority.h"

int thread_priority_set_current_nice(int nice) {
#if defined(__linux__)
    // On Linux (and so Android) a thread's nice value is its own: PRIO_PROCESS with a thread id.
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
#else
    (void)nice;
    errno = ENOSYS;
    return -1;
#endif
}
