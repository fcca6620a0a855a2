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
 *
 * VERSION it answers itself, as libcni's skel does: the same bytes whatever
 * stdin holds, which it does not read (versions.h, generated from the plugin's
 * own answer by packaging/versions_header.py).
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
#include <sys/stat.h>
#include <dirent.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "versions.h"

#define MAGIC "HOSTDEV-UNPACKED"
#define LAUNCHER "host-device"
#define PREFIX ".host-device.run-"
/* An unpacked install (cni_hostdev/tools/install.py) puts this launcher in its tree with a trailer of
 * length 0: the frozen program is then this file beside it, not a payload to unpack. */
#define TREE_PROGRAM "host-device.bin"

struct trailer {
    char magic[16];
    uint64_t offset;
    uint64_t length;
    unsigned char sha256[32];
} __attribute__((packed));

/* `text` as the inside of a JSON string: a path may hold quotes, backslashes, control bytes or
 * bytes that are not UTF-8; those outside printable ASCII are written as \u00XX escapes. */
static void put_json_text(const char *text) {
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') printf("\\%c", *c);
        else if (*c < 0x20 || *c >= 0x7f) printf("\\u%04x", *c);
        else putchar(*c);
    }
}

static void die(const char *what, const char *detail) {
    /* Runtimes read a CNI error object on stdout; say it there and on stderr. */
    printf("{\"cniVersion\": \"%s\", \"code\": 999, \"msg\": \"host-device launcher: ", CNI_LATEST);
    put_json_text(what);
    fputs(": ", stdout);
    put_json_text(detail);
    puts("\"}");
    fprintf(stderr, "host-device launcher: %s: %s\n", what, detail);
    exit(1);
}

static int answer_version(void) {
    const char *command = getenv("CNI_COMMAND");
    if (command == NULL || strcmp(command, "VERSION") != 0) return -1;
    fputs(CNI_VERSION_ANSWER, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
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

/* A runtime may exec us with fd 0, 1 or 2 closed. The first file opened would then take that
 * number, and whatever it is (our own file, the payload, a cache entry) would become the stdin,
 * stdout or stderr of this call and of everything it execs. Fill the gaps with /dev/null first. */
static void safe_stdio(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (null < 0) _exit(1); /* no /dev/null: nothing safe to say anything on */
        if (null != fd) { /* open takes the lowest free number, which is fd once those below are filled */
            dup2(null, fd);
            close(null);
        }
    }
}

int main(int argc, char **argv) {
    (void)argc;
    safe_stdio();
    int answered = answer_version();
    if (answered >= 0) return answered; /* before anything else: VERSION is exec'd often */
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

    char dir[PATH_MAX], cache[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    if (t.length == 0) {
        char program[PATH_MAX];
        snprintf(program, sizeof program, "%s/%s", dir, TREE_PROGRAM);
        close(fd);
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
    execv(launcher, argv);
    die("cannot exec", launcher);
    return 1;
}
