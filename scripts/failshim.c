/* LD_PRELOAD shim for scripts/confine_diag.py: logs every failed open/openat/mkdir/socket/
 * connect/bind/unlink/rename/access/mknod call (other than ENOENT) with its path, so a
 * confinement that breaks a library shows what that library tried to do. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void note(const char *call, const char *what, int rc, int err) {
    if (rc < 0 && err != ENOENT) {
        char buf[600];
        int n = snprintf(buf, sizeof buf, "FAILSHIM %s(%s) = %d %s\n", call, what ? what : "", rc, strerror(err));
        if (n > 0) write(2, buf, (size_t)n);
    }
    errno = err;
}
/* Every open of a /proc file for writing, whatever its result. */
static void proc_write(const char *call, const char *p, int flags, int rc, int err) {
    if (p && strncmp(p, "/proc", 5) == 0 && (flags & (O_WRONLY | O_RDWR))) {
        char buf[600];
        int n = snprintf(buf, sizeof buf, "FAILSHIM %s(%s, flags 0x%x) = %d %s\n", call, p, flags, rc, rc < 0 ? strerror(err) : "");
        if (n > 0 && write(2, buf, (size_t)n)) {}
    }
    errno = err;
}
#define NEXT(name) static __typeof__(name) *real; if (!real) real = dlsym(RTLD_NEXT, #name)

int open(const char *p, int f, ...) { NEXT(open); va_list a; va_start(a, f); mode_t m = va_arg(a, int); va_end(a);
    int r = real(p, f, m); int e = errno; proc_write("open", p, f, r, e); note("open", p, r, e); return r; }
int open64(const char *p, int f, ...) { NEXT(open64); va_list a; va_start(a, f); mode_t m = va_arg(a, int); va_end(a);
    int r = real(p, f, m); int e = errno; proc_write("open64", p, f, r, e); note("open64", p, r, e); return r; }
int openat(int d, const char *p, int f, ...) { NEXT(openat); va_list a; va_start(a, f); mode_t m = va_arg(a, int); va_end(a);
    int r = real(d, p, f, m); int e = errno; proc_write("openat", p, f, r, e); note("openat", p, r, e); return r; }
int openat64(int d, const char *p, int f, ...) { NEXT(openat64); va_list a; va_start(a, f); mode_t m = va_arg(a, int); va_end(a);
    int r = real(d, p, f, m); int e = errno; proc_write("openat64", p, f, r, e); note("openat64", p, r, e); return r; }
int mkdir(const char *p, mode_t m) { NEXT(mkdir); int r = real(p, m); note("mkdir", p, r, errno); return r; }
int unlink(const char *p) { NEXT(unlink); int r = real(p); note("unlink", p, r, errno); return r; }
int mknod(const char *p, mode_t m, dev_t d) { NEXT(mknod); int r = real(p, m, d); note("mknod", p, r, errno); return r; }
int access(const char *p, int m) { NEXT(access); int r = real(p, m); note("access", p, r, errno); return r; }
int rename(const char *a, const char *b) { NEXT(rename); int r = real(a, b); note("rename", a, r, errno); return r; }
int socket(int d, int t, int p) { NEXT(socket); int r = real(d, t, p); char w[32]; snprintf(w, sizeof w, "family %d", d);
    note("socket", w, r, errno); if (r >= 0 && d == AF_UNIX) { char b[64]; int n = snprintf(b, sizeof b, "FAILSHIM socket(AF_UNIX) ok fd %d\n", r); write(2, b, (size_t)n); } return r; }
static const char *upath(const struct sockaddr *s) { return s && s->sa_family == AF_UNIX ? ((const struct sockaddr_un *)s)->sun_path[0] ? ((const struct sockaddr_un *)s)->sun_path : "(abstract)" : "(inet)"; }
int connect(int f, const struct sockaddr *s, socklen_t l) { NEXT(connect); int r = real(f, s, l); int e = errno;
    char b[200]; int n = snprintf(b, sizeof b, "FAILSHIM connect(%s) = %d\n", upath(s), r); write(2, b, (size_t)n); errno = e; return r; }
int bind(int f, const struct sockaddr *s, socklen_t l) { NEXT(bind); int r = real(f, s, l); int e = errno;
    char b[200]; int n = snprintf(b, sizeof b, "FAILSHIM bind(%s) = %d\n", upath(s), r); write(2, b, (size_t)n); errno = e; return r; }
FILE *fopen(const char *p, const char *m) { NEXT(fopen); FILE *r = real(p, m); int e = errno;
    if (p && strncmp(p, "/proc", 5) == 0 && strpbrk(m, "wa+")) { char b[400]; int n = snprintf(b, sizeof b, "FAILSHIM fopen(%s, %s) = %s %s\n", p, m, r ? "ok" : "NULL", r ? "" : strerror(e)); if (write(2, b, (size_t)n)) {} }
    errno = e; return r; }
FILE *fopen64(const char *p, const char *m) { NEXT(fopen64); FILE *r = real(p, m); int e = errno;
    if (p && strncmp(p, "/proc", 5) == 0 && strpbrk(m, "wa+")) { char b[400]; int n = snprintf(b, sizeof b, "FAILSHIM fopen64(%s, %s) = %s %s\n", p, m, r ? "ok" : "NULL", r ? "" : strerror(e)); if (write(2, b, (size_t)n)) {} }
    errno = e; return r; }
