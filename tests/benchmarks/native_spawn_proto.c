/* The native piece of PROPOSALS.md 18/19, as a stand-alone prototype: the spawn
 * workload's loop (N `touch out/tNNNNN`, JOBS at a time) as a C extension would run
 * it for the executor: each child started with clone3(CLONE_VFORK | CLONE_PIDFD
 * [| CLONE_INTO_CGROUP]) in a session of its own, stdout and stderr into a pipe, its
 * exit watched through the pidfd in one epoll, reaped with wait4. With a cgroup folder
 * (v2), each child is born in a cgroup of its own taken from a pool (no thread moved,
 * no /bin/sh to enter it), and the start tick is taken from CLOCK_BOOTTIME.
 *
 *   cc -O2 -o native_spawn_proto native_spawn_proto.c
 *   ./native_spawn_proto FOLDER N [JOBS] [V2_CGROUP_FOLDER]
 *
 * Not part of Gristmill: it measures what such a piece would cost a task.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct job { int pid, pidfd, out_r, out_w, cg; };

static int open_cgroup(const char *base, int i) {
    char path[4096];
    snprintf(path, sizeof path, "%s/proto-%d", base, i);
    if (mkdir(path, 0755) && errno != EEXIST) { perror(path); exit(2); }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) { perror(path); exit(2); }
    return fd;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s FOLDER N [JOBS] [V2_CGROUP]\n", argv[0]); return 2; }
    if (chdir(argv[1])) { perror(argv[1]); return 2; }
    int n = atoi(argv[2]), jobs = argc > 3 ? atoi(argv[3]) : 2;
    const char *cgbase = argc > 4 ? argv[4] : NULL;
    const char *exe = "/usr/bin/touch";
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct job *slots = calloc(jobs, sizeof *slots);
    int *pool = calloc(jobs, sizeof *pool), idle = 0;
    if (cgbase) for (int i = 0; i < jobs; i++) pool[idle++] = open_cgroup(cgbase, i);
    int started = 0, running = 0, failed = 0;
    long ticks = sysconf(_SC_CLK_TCK), tick_ns = 1000000000L / ticks, proc_reads = 0;
    char name[64];
    while (started < n || running) {
        for (int s = 0; s < jobs && started < n; s++) {
            if (slots[s].pid) continue;
            int p[2];
            if (pipe2(p, O_CLOEXEC)) { perror("pipe"); return 2; }
            snprintf(name, sizeof name, "out/t%05d", started);
            char *cargv[] = {"touch", name, NULL};
            int pidfd = -1, cg = cgbase ? pool[--idle] : -1;
            struct clone_args ca = {0};
            ca.flags = CLONE_VFORK | CLONE_PIDFD | (cg >= 0 ? CLONE_INTO_CGROUP : 0);
            ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
            ca.exit_signal = SIGCHLD;
            ca.cgroup = cg >= 0 ? (uint64_t)cg : 0;
            struct timespec t0, t1;
            clock_gettime(CLOCK_BOOTTIME, &t0);
            long pid = syscall(SYS_clone3, &ca, sizeof ca);
            if (pid == 0) {          /* the child: its own session, the pipe, exec */
                setsid();
                dup2(devnull, 0); dup2(p[1], 1); dup2(p[1], 2);
                execve(exe, cargv, environ);
                _exit(127);
            }
            clock_gettime(CLOCK_BOOTTIME, &t1);
            if (pid < 0) { perror("clone3"); return 2; }
            /* the start tick, as /proc/PID/stat has it, without reading /proc */
            if ((t0.tv_sec * 1000000000L + t0.tv_nsec) / tick_ns !=
                (t1.tv_sec * 1000000000L + t1.tv_nsec) / tick_ns) proc_reads++;
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)s};
            epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev);
            slots[s] = (struct job){(int)pid, pidfd, p[0], p[1], cg};
            started++; running++;
        }
        struct epoll_event evs[16];
        int k = epoll_wait(ep, evs, 16, -1);
        for (int i = 0; i < k; i++) {
            struct job *j = &slots[evs[i].data.u32];
            int status; struct rusage ru;
            wait4(j->pid, &status, 0, &ru);
            failed += status != 0;
            epoll_ctl(ep, EPOLL_CTL_DEL, j->pidfd, NULL);
            close(j->pidfd); close(j->out_r); close(j->out_w);
            if (j->cg >= 0) pool[idle++] = j->cg;   /* empty again: back to the pool */
            j->pid = 0; running--;
        }
    }
    if (cgbase) for (int i = 0; i < jobs; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/proto-%d", cgbase, i);
        rmdir(path);
    }
    fprintf(stderr, "native_spawn_proto: %d tasks, %d failed, %ld start ticks to read from /proc\n",
            n, failed, proc_reads);
    return failed ? 1 : 0;
}
