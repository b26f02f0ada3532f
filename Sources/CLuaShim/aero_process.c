// aero_process.c — what the policy worker process asks of the kernel that Swift's Glibc
// module does not expose (prctl). Bounds nothing itself; the worker is the supervisor's.
#include "aero_lua.h"

#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#endif

int aero_die_with_parent(void) {
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return 0;
    return getppid() != 1;  // the parent may have died before the line above took effect
#else
    return 1;
#endif
}
