/*
 * VERSION, answered by the launcher itself: runtimes and libcni ask it often, and the
 * answer needs nothing of Python (it costs ~1 ms here instead of ~18 ms).
 *
 * The answer must be the one the plugin gives (cni_hostdev/versions.py, answer):
 * the config's cniVersion when it is a supported one, else the latest, with every
 * supported version listed, byte for byte as Python's json.dumps prints it. The versions
 * come from cni_hostdev/versions.py through a header the build generates (versions.h).
 *
 * Only input this file is sure about is answered here: a JSON object of plain ASCII whose
 * top-level keys need no unescaping, without "logLevel" (the plugin logs then), NaN,
 * Infinity, long numbers or deep nesting. Anything else, valid or not, goes to the plugin
 * as it always did, with stdin put back as it was read. tests/product/test_version_answer.py
 * holds the two answers side by side.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "version.h"
#include "versions.h" /* generated: CNI_SUPPORTED (array), CNI_LATEST, CNI_SUPPORTED_JSON */

#define MAX_DEPTH 64
#define MAX_NUMBER 64

struct scan {
    const char *p, *end;
    int depth;
};

static void skip_space(struct scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* A string at s->p (its opening quote). *plain: no escapes, so [start, start+len) is its value. */
static int string(struct scan *s, const char **start, size_t *len, int *plain) {
    if (s->p >= s->end || *s->p != '"') return 0;
    s->p++;
    *start = s->p, *plain = 1;
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p;
        if (c < 0x20) return 0;
        if (c == '\\') {
            *plain = 0;
            if (++s->p >= s->end) return 0;
            if (*s->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (s->p + i >= s->end || !strchr("0123456789abcdefABCDEF", s->p[i]) || !s->p[i]) return 0;
                s->p += 4;
            } else if (!*s->p || !strchr("\"\\/bfnrt", *s->p)) {
                return 0;
            }
        }
        s->p++;
    }
    if (s->p >= s->end) return 0;
    *len = (size_t)(s->p - *start);
    s->p++;
    return 1;
}

static int number(struct scan *s) {
    const char *begin = s->p;
    if (s->p < s->end && *s->p == '-') s->p++;
    if (s->p >= s->end) return 0;
    if (*s->p == '0') {
        s->p++;
    } else if (*s->p >= '1' && *s->p <= '9') {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    } else {
        return 0; /* also -Infinity, which Python would take */
    }
    if (s->p < s->end && *s->p == '.') {
        const char *digits = ++s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
        if (s->p == digits) return 0;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        const char *digits = s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
        if (s->p == digits) return 0;
    }
    return s->p - begin <= MAX_NUMBER; /* Python refuses integers of over 4300 digits */
}

static int literal(struct scan *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return 0;
    s->p += n;
    return 1;
}

static int value(struct scan *s);

static int members(struct scan *s, char close) {
    if (++s->depth > MAX_DEPTH) return 0;
    s->p++;
    skip_space(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 1;
    }
    for (;;) {
        skip_space(s);
        if (close == '}') {
            const char *key;
            size_t len;
            int plain;
            if (!string(s, &key, &len, &plain)) return 0;
            skip_space(s);
            if (s->p >= s->end || *s->p != ':') return 0;
            s->p++;
            skip_space(s);
        }
        if (!value(s)) return 0;
        skip_space(s);
        if (s->p >= s->end) return 0;
        if (*s->p == close) {
            s->p++;
            s->depth--;
            return 1;
        }
        if (*s->p != ',') return 0;
        s->p++;
    }
}

static int value(struct scan *s) {
    if (s->p >= s->end) return 0;
    const char *start;
    size_t len;
    int plain;
    switch (*s->p) {
    case '{': return members(s, '}');
    case '[': return members(s, ']');
    case '"': return string(s, &start, &len, &plain);
    case 't': return literal(s, "true");
    case 'f': return literal(s, "false");
    case 'n': return literal(s, "null");
    default: return number(s);
    }
}

/* The version to answer with, or NULL when the plugin must answer. */
static const char *answer_for(const char *data, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\0' || (unsigned char)data[i] >= 0x80) return NULL;
    struct scan s = {.p = data, .end = data + len};
    skip_space(&s);
    const char *spaces = " \t\n\r\v\f";
    int blank = 1;
    for (size_t i = 0; i < len && blank; i++) blank = strchr(spaces, data[i]) != NULL;
    if (blank) return CNI_LATEST; /* the plugin reads blank stdin as {} */
    if (s.p >= s.end || *s.p != '{') return NULL;

    /* The top level, member by member, remembering the last cniVersion (Python keeps the last). */
    const char *requested = NULL;
    size_t requested_len = 0;
    s.p++, s.depth = 1;
    skip_space(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            const char *key, *text;
            size_t key_len, text_len;
            int plain;
            skip_space(&s);
            if (!string(&s, &key, &key_len, &plain) || !plain) return NULL;
            skip_space(&s);
            if (s.p >= s.end || *s.p != ':') return NULL;
            s.p++;
            skip_space(&s);
            int is_version = key_len == 10 && memcmp(key, "cniVersion", 10) == 0;
            if (key_len == 8 && memcmp(key, "logLevel", 8) == 0) return NULL;
            if (is_version && s.p < s.end && *s.p == '"') {
                if (!string(&s, &text, &text_len, &plain) || !plain) return NULL;
                requested = text, requested_len = text_len;
            } else {
                if (!value(&s)) return NULL;
                if (is_version) requested = NULL; /* not a string: the latest */
            }
            skip_space(&s);
            if (s.p >= s.end) return NULL;
            if (*s.p == '}') {
                s.p++;
                break;
            }
            if (*s.p != ',') return NULL;
            s.p++;
        }
    }
    skip_space(&s);
    if (s.p != s.end) return NULL;
    static const char *const supported[] = CNI_SUPPORTED;
    for (size_t i = 0; requested && i < sizeof supported / sizeof supported[0]; i++)
        if (strlen(supported[i]) == requested_len && memcmp(supported[i], requested, requested_len) == 0)
            return supported[i];
    return CNI_LATEST;
}

static int append(char **data, size_t *len, size_t *cap, const char *chunk, size_t n) {
    if (*len + n > *cap) {
        size_t grown = *cap ? *cap : 4096;
        while (grown < *len + n) grown *= 2;
        char *bigger = realloc(*data, grown);
        if (!bigger) return -1;
        *data = bigger, *cap = grown;
    }
    memcpy(*data + *len, chunk, n);
    *len += n;
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

/* Put what was read back on fd 0 for the plugin: a memfd, or a pipe where memfd is missing. */
static int restore_stdin(const char *data, size_t len) {
    int fd = memfd_create("host-device-stdin", MFD_CLOEXEC);
    if (fd >= 0) {
        if (write_all(fd, data, len) != 0 || lseek(fd, 0, SEEK_SET) != 0) return -1;
    } else {
        /* Nobody reads the pipe yet, so its write end must never block once full. */
        int ends[2];
        if (pipe2(ends, O_CLOEXEC) != 0) return -1;
        if ((len > 65536 && fcntl(ends[1], F_SETPIPE_SZ, (int)len) < 0) || fcntl(ends[1], F_SETFL, O_NONBLOCK) != 0 ||
            write_all(ends[1], data, len) != 0)
            return -1;
        close(ends[1]);
        fd = ends[0];
    }
    if (dup2(fd, 0) != 0) return -1; /* dup2 clears CLOEXEC on the copy */
    close(fd);
    return 0;
}

int answer_version(void) {
    const char *command = getenv("CNI_COMMAND");
    if (!command || strcmp(command, "VERSION") != 0) return -1;
    char *data = NULL, chunk[65536];
    size_t len = 0, cap = 0;
    int failed = 0;
    for (;;) {
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            failed = 1; /* the plugin reads an unreadable stdin as empty, and so do we */
            len = 0;
            break;
        }
        if (n == 0) break;
        if (append(&data, &len, &cap, chunk, (size_t)n) != 0) {
            fprintf(stderr, "host-device launcher: out of memory reading stdin\n");
            return 1;
        }
    }
    const char *version = answer_for(data ? data : "", len);
    if (!version && !failed && restore_stdin(data ? data : "", len) != 0) {
        fprintf(stderr, "host-device launcher: cannot keep stdin for the plugin: %s\n", strerror(errno));
        return 1;
    }
    free(data);
    if (!version) return -1;
    printf("{\"cniVersion\": \"%s\", \"supportedVersions\": %s}\n", version, CNI_SUPPORTED_JSON);
    return fflush(stdout) == 0 ? 0 : 1;
}
