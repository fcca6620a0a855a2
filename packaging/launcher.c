/*
 * The front of the single static file dist/host-device.
 *
 * Behind this small static program the file carries a tar of the frozen plugin,
 * laid out unpacked with its own glibc and loader (packaging/unpacked.py), and a
 * trailer that finds it. On the first exec the tar is unpacked once, next to the
 * file (else in /var/lib/cni/host-device-run, else $TMPDIR), into a directory named
 * by the payload's hash; every exec then just execs the unpacked plugin: no
 * self-extraction per call, one process (a runtime's SIGKILL leaves nothing
 * running), nothing written to /tmp (which may be noexec).
 *
 * A cache directory is trusted only if it is ours: owned by our uid and
 * writable by nobody else. It is built under a private temporary name and
 * renamed into place, so a racing exec or a crash never exposes half of it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAGIC "HOSTDEV-UNPACKED"
#define LAUNCHER "host-device"
#define PREFIX ".host-device.run-"
/* An unpacked install (cni_hostdev/install.py) puts this launcher in its tree with a trailer of
 * length 0: the frozen program is then this file beside it, not a payload to unpack. */
#define TREE_PROGRAM "host-device.bin"

struct trailer {
    char magic[16];
    uint64_t offset;
    uint64_t length;
    unsigned char sha256[32];
} __attribute__((packed));

static void die(const char *what, const char *detail) {
    /* Runtimes read a CNI error object on stdout; say it there and on stderr. */
    printf("{\"cniVersion\":\"1.1.0\",\"code\":999,\"msg\":\"host-device launcher: %s: %s\"}\n", what, detail);
    fprintf(stderr, "host-device launcher: %s: %s\n", what, detail);
    exit(1);
}

static int trusted_dir(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    return st.st_uid == geteuid() && (st.st_mode & 022) == 0;
}

static int complete(const char *cache) {
    char marker[PATH_MAX];
    snprintf(marker, sizeof marker, "%s/.complete", cache);
    return trusted_dir(cache) && access(marker, F_OK) == 0;
}

static uint64_t octal(const char *field, size_t len) {
    uint64_t value = 0;
    for (size_t i = 0; i < len && field[i]; i++) {
        if (field[i] == ' ') continue;
        if (field[i] < '0' || field[i] > '7') break;
        value = value * 8 + (uint64_t)(field[i] - '0');
    }
    return value;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ustar only (the build writes USTAR_FORMAT): regular files, directories, symlinks. */
static int untar(int fd, uint64_t offset, uint64_t length, const char *into) {
    char header[512], path[PATH_MAX], name[256];
    uint64_t pos = offset, end = offset + length;
    char *buffer = malloc(1 << 20);
    if (!buffer) return -1;
    while (pos + 512 <= end) {
        if (pread(fd, header, 512, (off_t)pos) != 512) goto fail;
        pos += 512;
        if (header[0] == '\0') break; /* end of archive */
        const char *prefix = header + 345;
        if (prefix[0])
            snprintf(name, sizeof name, "%.155s/%.100s", prefix, header);
        else
            snprintf(name, sizeof name, "%.100s", header);
        if (strstr(name, "..")) goto fail; /* our own payload never climbs out */
        uint64_t size = octal(header + 124, 12);
        mode_t mode = (mode_t)octal(header + 100, 8) & 0755;
        char type = header[156];
        snprintf(path, sizeof path, "%s/%s", into, name);
        size_t plen = strlen(path);
        while (plen > 1 && path[plen - 1] == '/') path[--plen] = '\0';
        if (type == '5') {
            if (mkdir(path, 0755) != 0 && errno != EEXIST) goto fail;
        } else if (type == '2') {
            char target[101];
            snprintf(target, sizeof target, "%.100s", header + 157);
            if (symlink(target, path) != 0) goto fail;
        } else if (type == '0' || type == '\0') {
            int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode ? mode : 0644);
            if (out < 0) goto fail;
            uint64_t left = size, at = pos;
            while (left > 0) {
                size_t chunk = left < (1 << 20) ? (size_t)left : (1 << 20);
                ssize_t got = pread(fd, buffer, chunk, (off_t)at);
                if (got <= 0 || write(out, buffer, (size_t)got) != got) {
                    close(out);
                    goto fail;
                }
                left -= (uint64_t)got, at += (uint64_t)got;
            }
            close(out);
        }
        pos += (size + 511) / 512 * 512;
    }
    free(buffer);
    return 0;
fail:
    free(buffer);
    return -1;
}

/* Point the unpacked launcher at its bundled loader: PT_INTERP has room reserved by the build. */
static int set_interpreter(const char *elf, const char *interp) {
    int fd = open(elf, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    unsigned char eh[64];
    if (pread(fd, eh, 64, 0) != 64 || memcmp(eh, "\177ELF", 4) != 0 || eh[4] != 2) goto fail;
    uint64_t phoff;
    uint16_t phentsize, phnum;
    memcpy(&phoff, eh + 0x20, 8);
    memcpy(&phentsize, eh + 0x36, 2);
    memcpy(&phnum, eh + 0x38, 2);
    for (uint16_t i = 0; i < phnum; i++) {
        unsigned char ph[64];
        if (pread(fd, ph, 56, (off_t)(phoff + (uint64_t)i * phentsize)) != 56) goto fail;
        uint32_t type;
        memcpy(&type, ph, 4);
        if (type != 3) continue;
        uint64_t off, filesz;
        memcpy(&off, ph + 8, 8);
        memcpy(&filesz, ph + 32, 8);
        size_t len = strlen(interp) + 1;
        if (len > filesz) goto fail;
        char *padded = calloc(1, filesz);
        if (!padded) goto fail;
        memcpy(padded, interp, len);
        ssize_t wrote = pwrite(fd, padded, filesz, (off_t)off);
        free(padded);
        close(fd);
        return wrote == (ssize_t)filesz ? 0 : -1;
    }
fail:
    close(fd);
    return -1;
}

/*
 * After unpacking a new payload, remove the caches of older payloads (and staging
 * leftovers of crashed unpacks) beside it, so upgrades in place do not pile up.
 * Only entries untouched for PRUNE_AGE seconds go: no plugin call lasts that long.
 */
#define PRUNE_AGE 600
static void prune(const char *base, const char *keep) {
    DIR *dir = opendir(base);
    if (!dir) return;
    struct dirent *entry;
    time_t now = time(NULL);
    while ((entry = readdir(dir)) != NULL) {
        if (strncmp(entry->d_name, PREFIX, strlen(PREFIX)) != 0 || strcmp(entry->d_name, keep) == 0) continue;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", base, entry->d_name);
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
        if (now - st.st_mtime < PRUNE_AGE) continue;
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(dir);
}

/* Unpack into base/PREFIX<hash>; return 0 when a complete, trusted cache is there afterwards. */
static int prepare(int self, const struct trailer *t, const char *base, const char *hash, char *cache) {
    snprintf(cache, PATH_MAX, "%s/%s%s", base, PREFIX, hash);
    if (complete(cache)) return 0;
    char staging[PATH_MAX], interp[PATH_MAX], elf[PATH_MAX], marker[PATH_MAX];
    snprintf(staging, sizeof staging, "%s.tmp%d", cache, (int)getpid());
    if (mkdir(staging, 0700) != 0) return -1;
    snprintf(interp, sizeof interp, "%s/_internal/ld.so", cache);
    snprintf(elf, sizeof elf, "%s/%s", staging, LAUNCHER);
    snprintf(marker, sizeof marker, "%s/.complete", staging);
    int ok = untar(self, t->offset, t->length, staging) == 0 && set_interpreter(elf, interp) == 0;
    if (ok) {
        int m = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ok = m >= 0;
        if (ok) {
            syncfs(m); /* the cache must be whole on disk before anything execs from it */
            close(m);
        }
    }
    if (ok) chmod(staging, 0755);
    if (ok && rename(staging, cache) == 0) {
        prune(base, strrchr(cache, '/') + 1);
        return 0;
    }
    nftw(staging, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return complete(cache) ? 0 : -1; /* a racing exec may have won: use its cache */
}

/*
 * The warm server (`host-device serve`, cni_hostdev/server.py, which documents the
 * wire format): when one listens, a plugin call is handed to it and Python never
 * starts here. Returns the command's exit status, or -1 when this process must run
 * the command itself: no server, a server of another build, one that does not vouch
 * for us, or one that lost the command. Stdin, once read, is put back on fd 0 for that case.
 */
#define SERVER_SOCKET "/run/cni-hostdev/server.sock"
#define SERVER_MAGIC "HDSRV002"
#define SERVER_FDS 6

struct buffer {
    char *data;
    size_t len, cap;
};

static int append(struct buffer *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n, len -= (size_t)n;
    }
    return 0;
}

static int send_all(int sock, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(sock, data, len, MSG_NOSIGNAL); /* a server gone mid-way is no SIGPIPE */
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n, len -= (size_t)n;
    }
    return 0;
}

/* The server greets each caller it accepts and vouches for. A server that is stopped or stuck
 * never does, and its callers run their calls themselves after HELLO_TIMEOUT_MS instead of
 * hanging: nothing has been sent yet, so nothing can run twice. */
#define HELLO_TIMEOUT_MS 1000
static int greeted(int sock) {
    struct ucred peer;
    socklen_t len = sizeof peer;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != geteuid()) return 0;
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int ready;
    do ready = poll(&p, 1, HELLO_TIMEOUT_MS);
    while (ready < 0 && errno == EINTR);
    char hello;
    return ready == 1 && read(sock, &hello, 1) == 1 && hello == 'H';
}

/* A connected socket to the server, or -1. Non-blocking connect: a server whose listen backlog is
 * full (stopped, stuck) refuses with EAGAIN at once instead of keeping us waiting. */
static int connect_server(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sock < 0) return -1;
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0 || fcntl(sock, F_SETFL, 0) != 0 ||
        !greeted(sock)) {
        close(sock);
        return -1;
    }
    return sock;
}

static void read_stdin(struct buffer *in) {
    char chunk[65536];
    for (;;) {
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EBADF) return; /* no stdin at all: as the command run here would see it */
        if (n < 0) die("cannot read", "stdin");
        if (n == 0) return;
        if (append(in, chunk, (size_t)n) != 0) die("out of memory reading", "stdin");
    }
}

/* Put what was read of stdin back on fd 0, for the command run here. */
static void restore_stdin(const struct buffer *in) {
    const char *data = in->data ? in->data : "";
    int fd = memfd_create("host-device-stdin", MFD_CLOEXEC);
    if (fd >= 0) {
        if (write_all(fd, data, in->len) != 0 || lseek(fd, 0, SEEK_SET) != 0) die("cannot keep stdin", strerror(errno));
    } else {
        /* No memfd (an old kernel, a seccomp profile): a pipe holds a network config as well.
         * Nobody reads it yet, so its write end must not block once full. */
        int ends[2];
        if (pipe2(ends, O_CLOEXEC) != 0) die("cannot keep stdin", strerror(errno));
        if ((in->len > 65536 && fcntl(ends[1], F_SETPIPE_SZ, (int)in->len) < 0) ||
            fcntl(ends[1], F_SETFL, O_NONBLOCK) != 0 || write_all(ends[1], data, in->len) != 0)
            die("cannot keep stdin", "it does not fit in a pipe");
        close(ends[1]);
        fd = ends[0];
    }
    dup2(fd, 0); /* dup2 clears CLOEXEC on the copy */
    close(fd);
}

/* The request: header, with our stdio, namespaces, cwd and root attached, then the payload. */
static int send_request(int sock, const char *hash, char **argv, const struct buffer *in) {
    int fds[SERVER_FDS] = {1, 2, -1, -1, -1, -1};
    int opened = (fds[2] = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)) >= 0;
    opened &= (fds[3] = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) >= 0;
    opened &= (fds[4] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0;
    opened &= (fds[5] = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0;

    struct buffer payload = {0};
    uint32_t argc = 0, envc = 0, mask = (uint32_t)umask(022);
    umask((mode_t)mask);
    char fixed[24 + 16];
    memcpy(fixed, hash, 24);
    int ok = opened && append(&payload, fixed, sizeof fixed) == 0;
    for (char **a = argv; ok && *a; a++, argc++) ok = append(&payload, *a, strlen(*a) + 1) == 0;
    for (char **e = environ; ok && *e; e++, envc++) ok = append(&payload, *e, strlen(*e) + 1) == 0;
    ok = ok && append(&payload, in->data ? in->data : "", in->len) == 0;
    if (ok) {
        uint32_t fields[4] = {mask, argc, envc, (uint32_t)in->len};
        memcpy(payload.data + 24, fields, sizeof fields);
        char header[12];
        uint32_t length = (uint32_t)payload.len;
        memcpy(header, SERVER_MAGIC, 8);
        memcpy(header + 8, &length, 4);
        union {
            char buf[CMSG_SPACE(sizeof fds)];
            struct cmsghdr align;
        } control;
        memset(&control, 0, sizeof control);
        struct iovec iov = {.iov_base = header, .iov_len = sizeof header};
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET, cmsg->cmsg_type = SCM_RIGHTS, cmsg->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
        ssize_t sent;
        do sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
        ok = sent == (ssize_t)sizeof header && send_all(sock, payload.data, payload.len) == 0;
    }
    for (int i = 2; i < SERVER_FDS; i++)
        if (fds[i] >= 0) close(fds[i]);
    free(payload.data);
    return ok ? 0 : -1;
}

static int via_server(const char *hash, char **argv) {
    const char *path = getenv("CNI_HOSTDEV_SERVER");
    if (!getenv("CNI_COMMAND") || (path && strcmp(path, "off") == 0)) return -1;
    if (!path || !path[0]) path = SERVER_SOCKET;
    if (strlen(path) >= sizeof((struct sockaddr_un *)0)->sun_path || access(path, F_OK) != 0) return -1;

    /* All of stdin first: an accepted connection must never wait on the runtime's writing. */
    struct buffer in = {0};
    read_stdin(&in);
    int status = -1, sock = connect_server(path);
    if (sock >= 0 && send_request(sock, hash, argv, &in) == 0) {
        char reply[5];
        size_t got = 0;
        while (got < sizeof reply) {
            ssize_t n = read(sock, reply + got, sizeof reply - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += (size_t)n;
        }
        if (got == sizeof reply && reply[0] == 'S') memcpy(&status, reply + 1, 4);
    }
    if (sock >= 0) close(sock);
    if (status < 0) restore_stdin(&in);
    free(in.data);
    return status;
}

int main(int argc, char **argv) {
    (void)argc;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) die("cannot find my own file", "/proc/self/exe is unreadable (is /proc mounted?)");
    self[n] = '\0';
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("cannot open my own file", self);
    struct trailer t;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < (off_t)sizeof t || pread(fd, &t, sizeof t, size - (off_t)sizeof t) != (ssize_t)sizeof t ||
        memcmp(t.magic, MAGIC, 16) != 0 || t.offset + t.length > (uint64_t)size)
        die("no payload in", self);
    char hash[25];
    for (int i = 0; i < 12; i++) snprintf(hash + 2 * i, 3, "%02x", t.sha256[i]);
    int served = via_server(hash, argv);
    if (served >= 0) return served;

    char dir[PATH_MAX], cache[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    if (t.length == 0) {
        char program[PATH_MAX];
        snprintf(program, sizeof program, "%s/%s", dir, TREE_PROGRAM);
        close(fd);
        setenv("HOST_DEVICE_PAYLOAD", hash, 1);
        /* what `serve` watches for upgrades: the bin dir entry, which an install re-points */
        if (argv[0] && argv[0][0] == '/') setenv("HOST_DEVICE_ENTRY", argv[0], 1);
        execv(program, argv);
        die("cannot exec", program);
    }
    const char *tmp = getenv("TMPDIR");
    const char *bases[] = {dir, "/var/lib/cni/host-device-run", tmp && tmp[0] == '/' ? tmp : "/tmp"};
    int ready = -1;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0] && ready != 0; i++) {
        if (i == 1) mkdir("/var/lib/cni", 0755), mkdir(bases[1], 0700);
        ready = prepare(fd, &t, bases[i], hash, cache);
    }
    close(fd);
    if (ready != 0) die("cannot unpack next to", self);

    char launcher[PATH_MAX];
    snprintf(launcher, sizeof launcher, "%s/%s", cache, LAUNCHER);
    setenv("HOST_DEVICE_SELF", self, 1); /* `host-device install` copies this file, not the cache */
    setenv("HOST_DEVICE_PAYLOAD", hash, 1); /* a server serves only callers of its own build */
    execv(launcher, argv);
    die("cannot exec", launcher);
    return 1;
}
