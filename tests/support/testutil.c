/*
 * testutil.c: paths, temporary directories, files and child processes for tests.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *tu_build_dir(void)
{
    const char *d = getenv("ODSYNC_BUILD");
    return d && *d ? d : "build";
}

const char *tu_src_dir(void)
{
    const char *d = getenv("ODSYNC_SRC");
    return d && *d ? d : ".";
}

/* dir + "/" + rel; caller frees. */
static char *join(const char *dir, const char *rel)
{
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

char *tu_build_path(const char *rel)
{
    return join(tu_build_dir(), rel);
}

char *tu_src_path(const char *rel)
{
    return join(tu_src_dir(), rel);
}

char *tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = join(base && *base ? base : "/tmp", "odsync-test-XXXXXX");
    ck_assert_msg(mkdtemp(tmpl) != NULL, "mkdtemp: %s", strerror(errno));
    return tmpl;
}

/* nftw callback: remove one entry. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* The secrets the suite configures (tests/secrets.list), loaded once; NULL-terminated. */
static char **secrets(void)
{
    static char **list;
    static char *text;
    size_t n = 0, cap = 64;
    char *line, *save = NULL, *path;
    if (list != NULL)
        return list;
    path = tu_src_path("tests/secrets.list");
    text = tu_read_file(path);
    free(path);
    list = calloc(cap, sizeof(*list));
    ck_assert_ptr_nonnull(list);
    for (line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL && n + 1 < cap;
         line = strtok_r(NULL, "\n", &save))
        if (line[0] != '\0' && line[0] != '#')
            list[n++] = line;
    return list;
}

/* Every log a test leaves in its directory (*.log, *.out, *.err) is scanned for the
 * suite's secrets before the directory goes: a secret in a log fails the test. */
static int scan_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    const char *dot = strrchr(path, '.');
    char **s;
    char *text;
    (void)sb;
    (void)ftw;
    if (flag != FTW_F || dot == NULL ||
        (strcmp(dot, ".log") != 0 && strcmp(dot, ".out") != 0 && strcmp(dot, ".err") != 0))
        return 0;
    text = tu_read_file(path);
    for (s = secrets(); text != NULL && *s != NULL; s++)
        ck_assert_msg(strstr(text, *s) == NULL, "a configured secret appears in %s", path);
    free(text);
    return 0;
}

void tu_rmrf(const char *path)
{
    if (path == NULL)
        return;
    nftw(path, scan_entry, 16, FTW_PHYS);
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_write_file(const char *dir, const char *name, const char *text)
{
    char *path = join(dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text), off = 0;
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        ck_assert_msg(n > 0, "write %s: %s", path, strerror(errno));
        off += (size_t)n;
    }
    close(fd);
    return path;
}

char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    if (f == NULL)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    if (buf == NULL)
        buf = malloc(1);
    buf[len] = '\0';
    return buf;
}

/* Append what fd has to *buf (grown); returns 0 at EOF. */
static int drain(int fd, char **buf, size_t *len)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0)
        return 0;
    *buf = realloc(*buf, *len + (size_t)n + 1);
    ck_assert_ptr_nonnull(*buf);
    memcpy(*buf + *len, chunk, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
    return 1;
}

int tu_run(const char *const argv[], const char *const env_extra[], char **out, char **err)
{
    int op[2], ep[2], status = 0;
    pid_t pid;
    char *obuf = calloc(1, 1), *ebuf = calloc(1, 1);
    size_t olen = 0, elen = 0;
    struct pollfd fds[2];
    int open_fds = 2;

    ck_assert(pipe(op) == 0 && pipe(ep) == 0);
    pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        size_t n = 0, k = 0, i;
        char **env;
        int devnull = open("/dev/null", O_RDONLY);
        while (environ[n])
            n++;
        while (env_extra && env_extra[k])
            k++;
        env = calloc(n + k + 1, sizeof(*env));
        for (i = 0; i < n; i++)
            env[i] = environ[i];
        for (i = 0; i < k; i++)
            env[n + i] = (char *)env_extra[i];
        dup2(devnull, 0);
        dup2(op[1], 1);
        dup2(ep[1], 2);
        close(op[0]);
        close(ep[0]);
        execve(argv[0], (char *const *)argv, env);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(op[1]);
    close(ep[1]);
    fds[0].fd = op[0];
    fds[1].fd = ep[0];
    fds[0].events = fds[1].events = POLLIN;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0 && errno == EINTR)
            continue;
        if (fds[0].fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP)) &&
            !drain(fds[0].fd, &obuf, &olen)) {
            close(fds[0].fd);
            fds[0].fd = -1;
            open_fds--;
        }
        if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP)) &&
            !drain(fds[1].fd, &ebuf, &elen)) {
            close(fds[1].fd);
            fds[1].fd = -1;
            open_fds--;
        }
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out)
        *out = obuf;
    else
        free(obuf);
    if (err)
        *err = ebuf;
    else
        free(ebuf);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int tu_count(const char *hay, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    const char *p = hay;
    if (nl == 0)
        return 0;
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += nl;
    }
    return n;
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    signal(SIGPIPE, SIG_IGN);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

pid_t tu_spawn_server(const char *const argv[], const char *stderr_path, int *port)
{
    int op[2];
    pid_t pid;
    char buf[512];
    size_t len = 0;
    const char *hit;
    struct pollfd pfd;
    int waited = 0;

    ck_assert(pipe(op) == 0);
    pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int err = open(stderr_path ? stderr_path : "/dev/null",
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(op[1], 1);
        dup2(err, 2);
        close(op[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(op[1]);
    pfd.fd = op[0];
    pfd.events = POLLIN;
    buf[0] = '\0';
    while ((hit = strstr(buf, "listening on 127.0.0.1:")) == NULL || strchr(hit, '\n') == NULL) {
        ssize_t n;
        ck_assert_msg(waited < 10000, "%s did not start listening", argv[0]);
        if (poll(&pfd, 1, 100) <= 0) {
            waited += 100;
            continue;
        }
        n = read(op[0], buf + len, sizeof(buf) - 1 - len);
        ck_assert_msg(n > 0, "%s exited before listening", argv[0]);
        len += (size_t)n;
        buf[len] = '\0';
    }
    *port = (int)strtol(hit + strlen("listening on 127.0.0.1:"), NULL, 10);
    /* Keep the pipe open in a detached way: the child may print more; drain is not needed
     * because servers print one line. Closing could SIGPIPE the child, so leak the fd. */
    return pid;
}

int tu_stop(pid_t pid)
{
    int status = 0, i;
    kill(pid, SIGTERM);
    for (i = 0; i < 500; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            goto done;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
done:
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

pid_t tu_spawn(const char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int out = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                       0600);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(out, 1);
        dup2(out, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int tu_wait(pid_t pid, int timeout_ms)
{
    int status = 0, waited = 0;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10000);
        waited += 10;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
