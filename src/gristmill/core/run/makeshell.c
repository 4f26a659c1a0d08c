/* gristmill make-shell: the recipe shell Gristmill gives GNU make (SHELL=helper $@).
 *
 * make runs it as `helper <.SHELLFLAGS words> LINE` once per recipe line, with
 * GRISTMILL_TARGET=$@ in the environment (a makefile in MAKEFLAGS' stead, MAKEFILES,
 * says `override SHELL = helper` and `export GRISTMILL_TARGET = $@`). It
 * connects to GRISTMILL_MAKE_SOCKET and sends one request (protocol in makeshell.py):
 *   u32 length (little endian), then NUL-terminated words:
 *   kind, pid, ppid, cwd, target, makelevel, nargs, args..., nenv, env...
 * kind "J": an ordinary line; fds 0/1/2 travel with it (SCM_RIGHTS); Gristmill runs
 *   it as a job of its own and replies with an int32 status (>= 0 an exit code, < 0
 *   minus the signal); this process exits the same way (re-raising the signal).
 * kind "R": a recursive line (make left its jobserver fds open for it, or it names
 *   $(MAKE)): the helper runs the shell itself, keeping make's fds, and sends the
 *   int32 status when it ends.
 * $(shell ...) (MAKELEVEL is not make's own + 1) and a run without a socket exec the
 * real shell (GRISTMILL_MAKE_SHELL, else /bin/sh) directly.
 * SIGINT/SIGTERM/SIGHUP while it waits close the connection: Gristmill kills the job.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *real_shell(void) {
    const char *s = getenv("GRISTMILL_MAKE_SHELL");
    return s && *s ? s : "/bin/sh";
}

static void exec_shell(int nargs, char **args) {
    char **argv = calloc((size_t)nargs + 2, sizeof *argv);
    if (!argv) _exit(127);
    argv[0] = (char *)real_shell();
    for (int i = 0; i < nargs; i++) argv[i + 1] = args[i];
    execv(argv[0], argv);
    fprintf(stderr, "gristmill make-shell: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* make's own MAKELEVEL: the one it was started with (0 when none). */
static long parent_level(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)getppid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) { cap *= 2; buf = realloc(buf, cap + 1); }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    long level = 0;
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
        if (strncmp(buf + i, "MAKELEVEL=", 10) == 0) level = atol(buf + i + 10);
    free(buf);
    return level;
}

/* The jobserver's fds of MAKEFLAGS are open here: make runs this line as recursive. */
static int recursive_line(int nargs, char **args) {
    const char *mf = getenv("MAKEFLAGS");
    const char *auth = mf ? strstr(mf, "--jobserver-auth=") : NULL;
    if (auth) {
        int r = -1, w = -1;
        if (sscanf(auth + 17, "%d,%d", &r, &w) == 2 && r >= 0 && fcntl(r, F_GETFD) != -1)
            return 1;
    }
    /* A line that names make (as $(MAKE) expands, or by its name alone), as a word. */
    const char *make = getenv("GRISTMILL_MAKE_PATH");
    if (!make || !*make || nargs < 1) return 0;
    const char *slash = strrchr(make, '/');
    const char *base = slash ? slash + 1 : make;
    size_t n = strlen(base);
    const char *line = args[nargs - 1];
    for (const char *p = strstr(line, base); p; p = strstr(p + 1, base)) {
        char before = p == line ? ' ' : p[-1], after = p[n];
        if (strchr(" \t\n;&|(`'\"/", before) && (after == 0 || strchr(" \t\n;&|)`'\"", after)))
            return 1;
    }
    return 0;
}

struct buf { char *p; size_t len, cap; };

static void put(struct buf *b, const char *s) {
    size_t n = strlen(s) + 1;
    while (b->len + n > b->cap) { b->cap = b->cap ? b->cap * 2 : 4096; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void putn(struct buf *b, long v) { char t[32]; snprintf(t, sizeof t, "%ld", v); put(b, t); }

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) { if (errno == EINTR) continue; return -1; }
        p += k; n -= (size_t)k;
    }
    return 0;
}

static int send_request(int fd, struct buf *b, int with_fds) {
    uint32_t len = (uint32_t)b->len;
    unsigned char head[4] = { len & 255, (len >> 8) & 255, (len >> 16) & 255, len >> 24 };
    struct iovec iov = { head, 4 };
    struct msghdr msg = { 0 };
    char control[CMSG_SPACE(3 * sizeof(int))];
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (with_fds) {
        int fds[3] = { 0, 1, 2 };
        memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(c), fds, sizeof fds);
    }
    ssize_t k;
    do k = sendmsg(fd, &msg, MSG_NOSIGNAL); while (k < 0 && errno == EINTR);
    if (k != 4) return -1;
    return send_all(fd, b->p, b->len);
}

static int read_status(int fd, int32_t *status) {
    unsigned char s[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t k = read(fd, s + got, 4 - got);
        if (k < 0 && errno == EINTR) return -2;
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    *status = (int32_t)((uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24);
    return 0;
}

static void exit_as(int32_t status) {
    if (status < 0) {
        int sig = -status;
        signal(sig, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        _exit(128 + sig);
    }
    _exit(status & 255);
}

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

int main(int argc, char **argv) {
    /* The target comes in the environment: make exports GRISTMILL_TARGET = $@ (a
     * recursive variable, expanded per recipe); a $(shell) has none, or one inherited. */
    const char *target = getenv("GRISTMILL_TARGET");
    int nargs = argc - 1;
    char **args = argv + 1;
    if (!target) exec_shell(nargs, args);
    const char *path = getenv("GRISTMILL_MAKE_SOCKET");
    if (!path || !*path) exec_shell(nargs, args);
    const char *ml = getenv("MAKELEVEL");
    long level = ml ? atol(ml) : 0;
    long plevel = parent_level();
    if (!ml || (plevel >= 0 && level != plevel + 1)) exec_shell(nargs, args);   /* $(shell) */

    int recursive = recursive_line(nargs, args);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, "gristmill make-shell: cannot reach Gristmill at %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    char cwd[8192];
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, ".");
    struct buf b = { 0 };
    put(&b, recursive ? "R" : "J");
    putn(&b, getpid());
    putn(&b, getppid());
    put(&b, cwd);
    put(&b, target);
    putn(&b, level);
    putn(&b, nargs);
    for (int i = 0; i < nargs; i++) put(&b, args[i]);
    long nenv = 0;
    for (char **e = environ; *e; e++) nenv++;
    putn(&b, nenv);
    for (char **e = environ; *e; e++) put(&b, *e);
    if (send_request(fd, &b, !recursive) < 0) {
        fprintf(stderr, "gristmill make-shell: lost Gristmill at %s\n", path);
        _exit(127);
    }
    int32_t status = 0;
    if (recursive) {
        pid_t pid = fork();
        if (pid == 0) { close(fd); exec_shell(nargs, args); }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        status = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
        unsigned char s[4] = { status & 255, (status >> 8) & 255, (status >> 16) & 255, ((uint32_t)status) >> 24 };
        send_all(fd, (char *)s, 4);
        exit_as(status);
    }
    struct sigaction sa = { 0 };
    sa.sa_handler = on_signal;   /* no SA_RESTART: the read returns, the connection closes */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    for (;;) {
        int r = read_status(fd, &status);
        if (r == 0) break;
        if (r == -2 && !got_signal) continue;
        close(fd);                 /* a cancel: Gristmill kills the job's tree */
        exit_as(got_signal ? -got_signal : -SIGTERM);
    }
    exit_as(status);
    return 0;
}
