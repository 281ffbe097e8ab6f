/*
 * fanout's packed-task runner (docs/decisions/0021-packed-task-runner.md).
 *
 * A static binary with no network and no JSON parser, injected into any image through a
 * shared task volume. It runs a batch of items the agent sidecar laid out as plain files:
 *
 *   BATCH/order          one item index per line, in run order
 *   BATCH/concurrency    items at once (optional; --concurrency wins)
 *   BATCH/<I>/argv       the item's command, each argument ended by a NUL
 *   BATCH/<I>/env        KEY=VALUE pairs, each ended by a NUL, added to the environment
 *   BATCH/<I>/attempt    the attempt number
 *   BATCH/<I>/timeout    seconds (decimal); absent or not positive: 3600
 *   BATCH/ready          written last by the agent: the batch is whole
 *
 * and writes, per item, OUT/<I>.started before it starts and OUT/<I>.json (via a rename)
 * when it ends, then OUT/exit once nothing runs any more. Every line an item writes goes
 * to stdout behind "[fanout item=I attempt=A] ". The contract is fanout/local/packed.py's.
 *
 *   runner install DIR      copy this binary to DIR/runner, make DIR/batch and DIR/out
 *                           writable by any user (the init container)
 *   runner [--concurrency C] [--batch DIR] [--out DIR] [--grace S] [--ready-timeout S]
 *
 * Exit 0 once every item ran (or the task was stopped), whatever their exit codes; 2 on
 * a bad batch or usage, 3 when no batch came: non-zero means the runner itself failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ITEMS 1000          /* fanout.policy.MAX_ITEMS_PER_TASK */
#define MAX_CONCURRENCY 1000
#define MAX_FILE (1 << 20)      /* any one batch file */
#define TAIL_LINES 20           /* fanout.local.packed.TAIL_LINES */
#define TAIL_LINE_MAX 1024      /* bytes of a line the tail keeps */
#define LINE_MAX_OUT 8192       /* a longer line is cut into lines of this many bytes */
#define DRAIN_SECONDS 2.0       /* output still read after an item's process exited */
#define DEFAULT_TIMEOUT 3600.0

struct item {
    long index;
    long attempt;
    double timeout;
    char **argv;                /* NULL-terminated, pointing into argv_buf */
    char *argv_buf;
    char *env_buf;              /* NUL-separated pairs */
    size_t env_len;
};

struct slot {
    struct item *item;
    pid_t pid;
    int fd;                     /* read end of the item's output, -1 once closed */
    int exited, status, timed_out;
    double deadline, kill_at, exited_at;
    char started[64];
    char line[LINE_MAX_OUT];
    size_t line_len;
    char tail[TAIL_LINES][TAIL_LINE_MAX];
    size_t tail_len[TAIL_LINES];
    int tail_next, tail_count;
};

static int wake[2] = {-1, -1};
static volatile sig_atomic_t got_term;

static void die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fanout runner: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static void *checked_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die(2, "out of memory");
    return p;
}

static double monotonic(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The time as Python's datetime.now(UTC).isoformat(timespec="milliseconds"). */
static void now_iso(char *out, size_t size) {
    struct timespec t;
    struct tm tm;
    char date[32];
    clock_gettime(CLOCK_REALTIME, &t);
    gmtime_r(&t.tv_sec, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03d+00:00", date, (int)(t.tv_nsec / 1000000L));
}

static void on_signal(int sig) {
    int saved = errno;
    if (sig == SIGTERM || sig == SIGINT) got_term = 1;
    if (wake[1] >= 0) {
        ssize_t ignored = write(wake[1], "x", 1);
        (void)ignored;
    }
    errno = saved;
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The whole of a file, NUL-terminated, at most MAX_FILE bytes; NULL if it is absent. */
static char *read_file(const char *path, size_t *len_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return NULL;
        die(2, "cannot read %s: %s", path, strerror(errno));
    }
    size_t cap = 4096, len = 0;
    char *buf = checked_malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE) die(2, "%s is over %d bytes", path, MAX_FILE);
            cap *= 2;
            char *bigger = realloc(buf, cap + 1);
            if (!bigger) die(2, "out of memory");
            buf = bigger;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            die(2, "cannot read %s: %s", path, strerror(errno));
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    if (len_out) *len_out = len;
    return buf;
}

static void write_file(const char *path, const char *text) {
    char partial[4096];
    if ((size_t)snprintf(partial, sizeof partial, "%s.partial", path) >= sizeof partial)
        die(2, "path too long: %s", path);
    int fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || close(fd) < 0)
        die(2, "cannot write %s: %s", partial, strerror(errno));
    if (rename(partial, path) < 0) die(2, "cannot write %s: %s", path, strerror(errno));
}

/* How much of a bad value an error shows: its first line, at most 40 bytes. */
static int shown(const char *text) {
    size_t n = strcspn(text, "\r\n");
    return n < 40 ? (int)n : 40;
}

static long parse_long(const char *text, const char *what, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
    if (errno || end == text || *end || v < lo || v > hi)
        die(2, "%s is not a whole number from %ld to %ld: '%.*s'", what, lo, hi, shown(text), text);
    return v;
}

static double parse_seconds(const char *text, const char *what) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
    if (errno || end == text || *end || v != v || v > 1e9)
        die(2, "%s is not a number of seconds: '%.*s'", what, shown(text), text);
    return v;
}

static char *path_of(const char *dir, long index, const char *name) {
    static char path[4096];
    int n = index < 0 ? snprintf(path, sizeof path, "%s/%s", dir, name)
                      : snprintf(path, sizeof path, "%s/%ld/%s", dir, index, name);
    if (n < 0 || (size_t)n >= sizeof path) die(2, "path too long under %s", dir);
    return path;
}

static void load_item(struct item *it, const char *batch, long index) {
    size_t len = 0;
    it->index = index;
    char *text = read_file(path_of(batch, index, "attempt"), NULL);
    it->attempt = text ? parse_long(text, path_of(batch, index, "attempt"), 1, 1000000) : 1;
    free(text);
    text = read_file(path_of(batch, index, "timeout"), NULL);
    it->timeout = text ? parse_seconds(text, path_of(batch, index, "timeout")) : 0;
    if (it->timeout <= 0) it->timeout = DEFAULT_TIMEOUT;
    free(text);
    it->argv_buf = read_file(path_of(batch, index, "argv"), &len);
    if (!it->argv_buf || len == 0 || it->argv_buf[len - 1] != '\0')
        die(2, "%s is missing or not NUL-terminated arguments", path_of(batch, index, "argv"));
    size_t argc = 0;
    for (size_t i = 0; i < len; i++) argc += it->argv_buf[i] == '\0';
    it->argv = checked_malloc((argc + 1) * sizeof *it->argv);
    size_t k = 0;
    for (size_t i = 0; i < len; i += strlen(it->argv_buf + i) + 1) it->argv[k++] = it->argv_buf + i;
    it->argv[k] = NULL;
    if (it->argv[0][0] == '\0') die(2, "%s names no program", path_of(batch, index, "argv"));
    it->env_buf = read_file(path_of(batch, index, "env"), &it->env_len);
    if (it->env_buf && it->env_len && it->env_buf[it->env_len - 1] != '\0')
        die(2, "%s is not NUL-terminated pairs", path_of(batch, index, "env"));
    for (size_t i = 0; it->env_buf && i < it->env_len; i += strlen(it->env_buf + i) + 1) {
        const char *eq = strchr(it->env_buf + i, '=');
        if (!eq || eq == it->env_buf + i)
            die(2, "%s has a pair without KEY=: '%.*s'", path_of(batch, index, "env"),
                shown(it->env_buf + i), it->env_buf + i);
    }
}

/* ---- the JSON result, written with printf and escaped by hand ---- */

struct text { char *buf; size_t len, cap; };

static void put(struct text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (t->len + n + 1 > cap) cap *= 2;
        char *bigger = realloc(t->buf, cap);
        if (!bigger) die(2, "out of memory");
        t->buf = bigger;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void putf(struct text *t, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof small) die(2, "formatting overflow");
    put(t, small, (size_t)n);
}

/* The length of a valid UTF-8 sequence at s (at most n bytes), 0 if it is not one. */
static size_t utf8_length(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;       /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (len > n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

/* A JSON string of the bytes: invalid UTF-8 becomes U+FFFD, as Python's "replace". */
static void put_string(struct text *t, const char *s, size_t n) {
    put(t, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c == '"') put(t, "\\\"", 2);
        else if (c == '\\') put(t, "\\\\", 2);
        else if (c == '\n') put(t, "\\n", 2);
        else if (c == '\t') put(t, "\\t", 2);
        else if (c < 0x20 || c == 0x7F) putf(t, "\\u%04x", c);
        else {
            size_t len = utf8_length(u + i, n - i);
            if (len == 0) {
                put(t, "\\ufffd", 6);
                i++;
            } else {
                put(t, s + i, len);
                i += len;
            }
            continue;
        }
        i++;
    }
    put(t, "\"", 1);
}

/* ---- items' output ---- */

static void emit_line(struct slot *s, const char *text, size_t n) {
    if (n > 0 && text[n - 1] == '\r') n--;
    char prefix[96];
    int p = snprintf(prefix, sizeof prefix, "[fanout item=%ld attempt=%ld] ",
                     s->item->index, s->item->attempt);
    struct text line = {0};
    put(&line, prefix, (size_t)p);
    put(&line, text, n);
    put(&line, "\n", 1);
    write_all(STDOUT_FILENO, line.buf, line.len);  /* a closed stdout loses lines, not items */
    free(line.buf);
    size_t keep = n < TAIL_LINE_MAX ? n : TAIL_LINE_MAX;
    memcpy(s->tail[s->tail_next], text, keep);
    s->tail_len[s->tail_next] = keep;
    s->tail_next = (s->tail_next + 1) % TAIL_LINES;
    if (s->tail_count < TAIL_LINES) s->tail_count++;
}

static void take_output(struct slot *s, const char *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            emit_line(s, s->line, s->line_len);
            s->line_len = 0;
            continue;
        }
        if (s->line_len == sizeof s->line) {
            emit_line(s, s->line, s->line_len);
            s->line_len = 0;
        }
        s->line[s->line_len++] = buf[i];
    }
}

static void close_output(struct slot *s) {
    if (s->fd < 0) return;
    if (s->line_len) emit_line(s, s->line, s->line_len);
    s->line_len = 0;
    close(s->fd);
    s->fd = -1;
}

static void read_output(struct slot *s) {
    char buf[16384];
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n > 0) take_output(s, buf, (size_t)n);
    else if (n == 0 || (errno != EINTR && errno != EAGAIN)) close_output(s);
}

/* ---- items' processes ---- */

static void signal_group(struct slot *s, int sig) {
    if (s->pid > 0 && kill(-s->pid, sig) < 0 && errno == ESRCH && !s->exited)
        kill(s->pid, sig);
}

static void start(struct slot *s, struct item *it, const char *out) {
    memset(s, 0, sizeof *s);
    s->item = it;
    s->fd = -1;
    char stamp[64];
    now_iso(stamp, sizeof stamp);
    char name[64];
    snprintf(name, sizeof name, "%ld.started", it->index);
    write_file(path_of(out, -1, name), stamp);
    memcpy(s->started, stamp, sizeof s->started);  /* the mark says when it started */
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) die(2, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) die(2, "fork: %s", strerror(errno));
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        for (size_t i = 0; it->env_buf && i < it->env_len; i += strlen(it->env_buf + i) + 1)
            putenv(it->env_buf + i);
        execvp(it->argv[0], it->argv);
        dprintf(STDOUT_FILENO, "fanout: cannot start '%s': %s\n", it->argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);  /* both sides: no window where a signal misses the group */
    close(pipefd[1]);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    s->pid = pid;
    s->fd = pipefd[0];
    s->deadline = monotonic() + it->timeout;
    if (got_term) {
        signal_group(s, SIGTERM);
    }
}

static void finish(struct slot *s, const char *out) {
    int code = WIFEXITED(s->status) ? WEXITSTATUS(s->status)
             : WIFSIGNALED(s->status) ? 128 + WTERMSIG(s->status) : 255;
    char stopped[64];
    now_iso(stopped, sizeof stopped);
    struct text j = {0};
    putf(&j, "{\"index\": %ld, \"attempt\": %ld, \"exit_code\": %d, \"started\": ",
         s->item->index, s->item->attempt, code);
    put_string(&j, s->started, strlen(s->started));
    put(&j, ", \"stopped\": ", 13);
    put_string(&j, stopped, strlen(stopped));
    /* interrupted: ended by the task's stop passed on (not by itself, not by its timeout):
       settled as the task's stop, as fanout/local/packed.py says it */
    putf(&j, ", \"timed_out\": %s, \"interrupted\": %s, \"log_tail\": [",
         s->timed_out ? "true" : "false", got_term && !s->timed_out ? "true" : "false");
    int first = (s->tail_next - s->tail_count + TAIL_LINES) % TAIL_LINES;
    for (int k = 0; k < s->tail_count; k++) {
        int at = (first + k) % TAIL_LINES;
        if (k) put(&j, ", ", 2);
        put_string(&j, s->tail[at], s->tail_len[at]);
    }
    put(&j, "]}", 2);
    char name[64];
    snprintf(name, sizeof name, "%ld.json", s->item->index);
    write_file(path_of(out, -1, name), j.buf);
    free(j.buf);
    s->item = NULL;
}

/* mkdir -p: the runner may start before the agent made the volume's folders. */
static void make_dirs(const char *dir) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s", dir) >= sizeof path) die(2, "path too long: %s", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char was = *p;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            die(2, "cannot make %s: %s", path, strerror(errno));
        *p = was;
        if (was == '\0') break;
    }
}

static void usage(void) {
    die(2, "usage: runner install DIR | runner [--concurrency C] [--batch DIR] [--out DIR] "
           "[--grace SECONDS] [--ready-timeout SECONDS]");
}

static int install(const char *dir) {
    size_t len = 0;
    char *self = read_file("/proc/self/exe", &len);
    if (!self) die(2, "cannot read /proc/self/exe");
    char path[4096], partial[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/runner", dir) >= sizeof path ||
        (size_t)snprintf(partial, sizeof partial, "%s/runner.partial", dir) >= sizeof partial)
        die(2, "path too long: %s", dir);
    int fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0 || write_all(fd, self, len) < 0 || fchmod(fd, 0755) < 0 || close(fd) < 0 ||
        rename(partial, path) < 0)
        die(2, "cannot install into %s: %s", dir, strerror(errno));
    free(self);
    /* The agent (fanout's image) and the job's container (the image's own user, often not
     * root) share these: writable by any user, as /tmp is. */
    const char *shared[] = {"batch", "out"};
    for (size_t i = 0; i < 2; i++) {
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, shared[i]) >= sizeof path)
            die(2, "path too long: %s", dir);
        if ((mkdir(path, 01777) < 0 && errno != EEXIST) || chmod(path, 01777) < 0)
            die(2, "cannot make %s: %s", path, strerror(errno));
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "install") == 0) return install(argv[2]);
    const char *batch = "/fanout/batch", *out = "/fanout/out";
    long concurrency = 0;
    double grace = 10.0, ready_timeout = 600.0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--concurrency") == 0)
            concurrency = parse_long(argv[++i], "--concurrency", 1, MAX_CONCURRENCY);
        else if (strcmp(argv[i], "--batch") == 0) batch = argv[++i];
        else if (strcmp(argv[i], "--out") == 0) out = argv[++i];
        else if (strcmp(argv[i], "--grace") == 0) grace = parse_seconds(argv[++i], "--grace");
        else if (strcmp(argv[i], "--ready-timeout") == 0)
            ready_timeout = parse_seconds(argv[++i], "--ready-timeout");
        else usage();
    }

    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0) die(2, "pipe: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    make_dirs(out);

    /* The agent writes `ready` once the batch is whole. */
    double give_up = monotonic() + ready_timeout;
    struct stat st;
    while (stat(path_of(batch, -1, "ready"), &st) < 0) {
        if (got_term) {
            write_file(path_of(out, -1, "exit"), "stopped\n");
            return 0;
        }
        if (monotonic() > give_up) {
            write_file(path_of(out, -1, "exit"), "no batch\n");
            die(3, "no batch in %s after %.0f s (the agent wrote no ready)", batch, ready_timeout);
        }
        poll(NULL, 0, 50);
    }

    char *order = read_file(path_of(batch, -1, "order"), NULL);
    if (!order) die(2, "%s/order is missing", batch);
    struct item *items = checked_malloc(MAX_ITEMS * sizeof *items);
    long n = 0;
    for (char *line = strtok(order, "\n"); line; line = strtok(NULL, "\n")) {
        if (n == MAX_ITEMS) die(2, "%s/order lists more than %d items", batch, MAX_ITEMS);
        load_item(&items[n], batch, parse_long(line, "an index of order", 0, 100000000));
        n++;
    }
    if (!concurrency) {
        char *text = read_file(path_of(batch, -1, "concurrency"), NULL);
        concurrency = text ? parse_long(text, "concurrency", 1, MAX_CONCURRENCY) : 1;
        free(text);
    }
    if (concurrency > n && n > 0) concurrency = n;

    struct slot *slots = checked_malloc((size_t)concurrency * sizeof *slots);
    struct pollfd *fds = checked_malloc(((size_t)concurrency + 1) * sizeof *fds);
    for (long i = 0; i < concurrency; i++) slots[i].item = NULL;
    long next = 0, running = 0;
    int forwarded = 0;
    for (;;) {
        for (long i = 0; i < concurrency && !got_term && next < n; i++)
            if (!slots[i].item) {
                start(&slots[i], &items[next++], out);
                running++;
            }
        if (running == 0) break;

        double now = monotonic(), soonest = now + 1.0;
        for (long i = 0; i < concurrency; i++) {
            struct slot *s = &slots[i];
            if (!s->item) continue;
            if (!s->exited && !s->timed_out && s->deadline < soonest) soonest = s->deadline;
            if (s->kill_at > 0 && s->kill_at < soonest) soonest = s->kill_at;
            if (s->exited && s->exited_at + DRAIN_SECONDS < soonest)
                soonest = s->exited_at + DRAIN_SECONDS;
        }
        nfds_t count = 0;
        fds[count++] = (struct pollfd){.fd = wake[0], .events = POLLIN};
        for (long i = 0; i < concurrency; i++)
            if (slots[i].item && slots[i].fd >= 0)
                fds[count++] = (struct pollfd){.fd = slots[i].fd, .events = POLLIN};
        int wait_ms = soonest > now ? (int)((soonest - now) * 1000) + 1 : 0;
        if (poll(fds, count, wait_ms) < 0 && errno != EINTR) die(2, "poll: %s", strerror(errno));

        char drain[64];
        while (read(wake[0], drain, sizeof drain) > 0) {}
        for (long i = 0; i < concurrency; i++)
            if (slots[i].item && slots[i].fd >= 0) {
                struct pollfd probe = {.fd = slots[i].fd, .events = POLLIN};
                if (poll(&probe, 1, 0) > 0) read_output(&slots[i]);
            }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            for (long i = 0; i < concurrency; i++)
                if (slots[i].item && slots[i].pid == pid) {
                    slots[i].exited = 1;
                    slots[i].status = status;
                    slots[i].exited_at = monotonic();
                }

        now = monotonic();
        if (got_term && !forwarded) {  /* StopTask, a Spot notice: pass it on, start nothing */
            forwarded = 1;
            for (long i = 0; i < concurrency; i++)
                if (slots[i].item && !slots[i].exited) {
                    signal_group(&slots[i], SIGTERM);
                    if (!slots[i].kill_at) slots[i].kill_at = now + grace;
                }
        }
        for (long i = 0; i < concurrency; i++) {
            struct slot *s = &slots[i];
            if (!s->item) continue;
            if (!s->exited && !s->timed_out && now >= s->deadline) {
                s->timed_out = 1;
                signal_group(s, SIGTERM);
                s->kill_at = now + grace;
            }
            if (!s->exited && s->kill_at > 0 && now >= s->kill_at) {
                signal_group(s, SIGKILL);
                s->kill_at = 0;
            }
            if (s->exited && s->fd >= 0 && now >= s->exited_at + DRAIN_SECONDS) {
                /* A leftover child of the item holds its output: it must not outlive the
                 * item and share the task with the next one. */
                close_output(s);
                kill(-s->pid, SIGKILL);
            }
            if (s->exited && s->fd < 0) {
                finish(s, out);
                running--;
            }
        }
    }
    write_file(path_of(out, -1, "exit"), got_term ? "stopped\n" : "done\n");
    return 0;
}
