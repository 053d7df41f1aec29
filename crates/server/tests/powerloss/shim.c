/*
 * A power cut for `sesame`, as an LD_PRELOAD shim: what a process has written but not synced
 * lives only in the page cache, and a power failure loses it. `kill -9` does not model that
 * (the kernel keeps the process's writes), so the powerloss test runs the server under this
 * shim and afterwards rebuilds the data directory from what the shim recorded as durable.
 *
 * Built by the test with `cc -shared -fPIC -O2 -o shim.so shim.c -ldl`; configured by
 *   SESAME_POWERLOSS_ROOT    the data directory (canonical path): only files under it count;
 *   SESAME_POWERLOSS_SHADOW  where the durable state goes (outside the root), with the
 *                            subdirectories files/, dirs/ and tmp/ already made.
 *
 * What it records (after the real call returned 0, so a failed sync records nothing):
 *   fsync/fdatasync of a regular file: the file's whole current content is copied to
 *     files/<key> (key = device, inode and birth time, so a reused inode number is a new
 *     file), and the file's current name is added to its directory's durable listing.
 *   fsync/fdatasync of a directory: its durable listing dirs/<key> becomes the listing it has
 *     now (name -> key of every regular file and subdirectory), and its own name is added to
 *     its parent's listing.
 *   sync(), and syncfs() on the root's filesystem: all of the above for every file and
 *     directory under the root.
 *   Every copy is written to tmp/ and renamed into place, under one mutex: a kill in the
 *   middle of a copy leaves the previous durable version, as a sync that never returned.
 * The test then rebuilds (rebuild.rs): from the root, which always exists, down, a directory
 * holds exactly the names of its durable listing, and a file the content of its last sync, or
 * nothing if it was never synced. So a name removed or renamed away after the directory's
 * last sync comes back, with its last synced content, as after a real cut.
 *
 * So it models: unsynced file data lost whole (SQLite's WAL frames after its last fdatasync,
 * a message written but not synced); unsynced names lost (a file created or renamed into
 * place whose directory was never synced, unless the file itself was synced under that name).
 * That last rule is what ext4, XFS and btrfs give for a newly created inode (its fsync
 * commits the entry that links it); strict POSIX asks for the directory's fsync as well. It
 * is stricter than ext4, whose fsync of any file commits every earlier metadata change of
 * the whole filesystem: here one file's sync says nothing about another file's name.
 *
 * It does not model: torn or partly persisted writes (unsynced data is lost whole, never
 * half; a real disk may also keep some of it, or tear a sector); reordering within a file
 * between syncs (a sync snapshots all of the file at once); file modes, owners and times
 * (the rebuilt files are 0600, directories 0700); hard links beyond the one name a sync
 * sees; names containing a newline or tab (skipped); data written through O_SYNC,
 * O_DSYNC or O_DIRECT, pwritev2(RWF_DSYNC), io_uring or raw syscalls (invisible here, so such
 * data would come back lost: the test fails loudly rather than passing wrongly); writes
 * through a shared mmap made durable by msync (recorded in unmodelled.log, which the test
 * requires to be absent; SQLite maps only its -shm, which it never syncs and rebuilds from
 * the WAL). sync_file_range() is not a durability call (no metadata, no disk cache flush):
 * it too is only noted in unmodelled.log. The shim's own failures go to errors.log, which
 * the test also requires to be absent.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static int (*real_msync)(void *, size_t, int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static const char *root;
static size_t root_len;
static const char *shadow;
static unsigned long counter;
static char copy_buf[1 << 16];

static void init(void) {
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    real_syncfs = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    real_sync = (void (*)(void))dlsym(RTLD_NEXT, "sync");
    real_msync = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
    real_sync_file_range =
        (int (*)(int, off_t, off_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
    root = getenv("SESAME_POWERLOSS_ROOT");
    shadow = getenv("SESAME_POWERLOSS_SHADOW");
    root_len = root ? strlen(root) : 0;
    while (root_len > 1 && root[root_len - 1] == '/') root_len--;
}

/* Appends one line to shadow/<log>. Called with the lock held. */
static void note(const char *log, const char *what, const char *path) {
    char p[PATH_MAX], line[PATH_MAX + 64];
    if (!shadow) return;
    snprintf(p, sizeof p, "%s/%s", shadow, log);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int n = snprintf(line, sizeof line, "%s %s\n", what, path ? path : "-");
    if (n > 0) {
        ssize_t w = write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
    close(fd);
}

static void fail(const char *what, const char *path) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s (errno %d)", what, errno);
    note("errors.log", msg, path);
}

static int under_root(const char *path) {
    return root && shadow && strncmp(path, root, root_len) == 0 &&
           (path[root_len] == '\0' || path[root_len] == '/');
}

/* The identity of a file: device, inode, birth time. */
static int key_of(int dirfd, const char *path, int flags, char *out, size_t n, mode_t *mode,
                  unsigned *nlink) {
    struct statx st;
    if (statx(dirfd, path, flags, STATX_TYPE | STATX_INO | STATX_BTIME | STATX_NLINK, &st) != 0)
        return -1;
    long long bs = 0;
    unsigned bn = 0;
    if (st.stx_mask & STATX_BTIME) {
        bs = (long long)st.stx_btime.tv_sec;
        bn = st.stx_btime.tv_nsec;
    }
    snprintf(out, n, "%x.%x-%llu-%lld.%u", st.stx_dev_major, st.stx_dev_minor,
             (unsigned long long)st.stx_ino, bs, bn);
    if (mode) *mode = st.stx_mode;
    if (nlink) *nlink = st.stx_nlink;
    return 0;
}

static int tmp_path(char *out, size_t n) {
    return snprintf(out, n, "%s/tmp/%d.%lu", shadow, (int)getpid(), counter++) >= (int)n ? -1 : 0;
}

/* Writes `len` bytes to fd; -1 on error. */
static int write_all(int fd, const char *p, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Copies the whole content of `src` (read from offset 0) to shadow/files/<key>, atomically. */
static void save_content(int src, const char *key, const char *path) {
    char tmp[PATH_MAX], dest[PATH_MAX];
    if (tmp_path(tmp, sizeof tmp) != 0) return fail("tmp path too long", path);
    snprintf(dest, sizeof dest, "%s/files/%s", shadow, key);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) return fail("open shadow tmp", tmp);
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(src, copy_buf, sizeof copy_buf, off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            close(out);
            unlink(tmp);
            return fail("read synced file", path);
        }
        if (r == 0) break;
        if (write_all(out, copy_buf, (size_t)r) != 0) {
            close(out);
            unlink(tmp);
            return fail("write shadow copy", tmp);
        }
        off += r;
    }
    if (close(out) != 0 || rename(tmp, dest) != 0) return fail("rename shadow copy", dest);
}

/* Reads shadow/dirs/<dirkey> into a malloc'd string ("" if absent); NULL on error. */
static char *read_listing(const char *dirkey) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/dirs/%s", shadow, dirkey);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    if (fd >= 0) {
        for (;;) {
            if (len + 4096 > cap) {
                char *t = realloc(s, cap *= 2);
                if (!t) {
                    free(s);
                    close(fd);
                    return NULL;
                }
                s = t;
            }
            ssize_t r = read(fd, s + len, 4096);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                free(s);
                close(fd);
                return NULL;
            }
            if (r == 0) break;
            len += (size_t)r;
        }
        close(fd);
    }
    s[len] = '\0';
    return s;
}

static void write_listing(const char *dirkey, const char *text, size_t len, const char *path) {
    char tmp[PATH_MAX], dest[PATH_MAX];
    if (tmp_path(tmp, sizeof tmp) != 0) return fail("tmp path too long", path);
    snprintf(dest, sizeof dest, "%s/dirs/%s", shadow, dirkey);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return fail("open listing tmp", tmp);
    if (write_all(fd, text, len) != 0) {
        close(fd);
        unlink(tmp);
        return fail("write listing", tmp);
    }
    if (close(fd) != 0 || rename(tmp, dest) != 0) return fail("rename listing", dest);
}

/* Listing lines: "<key>\t<f|d>\t<name>\n". */

/* The inode at `path` (key, type) is durably linked under its name: add it to the parent's
 * durable listing, replacing whatever that name had. */
static void link_name(const char *path, const char *key, char type) {
    if (strlen(path) <= root_len) return; /* the root itself: always there */
    const char *slash = strrchr(path, '/');
    if (!slash || slash[1] == '\0') return;
    const char *name = slash + 1;
    if (strchr(name, '\n') || strchr(name, '\t')) return;
    char parent[PATH_MAX], pkey[128];
    size_t plen = (size_t)(slash - path);
    if (plen == 0 || plen >= sizeof parent) return;
    memcpy(parent, path, plen);
    parent[plen] = '\0';
    if (key_of(AT_FDCWD, parent, 0, pkey, sizeof pkey, NULL, NULL) != 0)
        return fail("stat parent", parent);
    char *old = read_listing(pkey);
    if (!old) return fail("read listing", parent);
    size_t cap = strlen(old) + strlen(name) + 160, len = 0;
    char *out = malloc(cap);
    if (!out) {
        free(old);
        return fail("out of memory", parent);
    }
    for (char *line = old; *line;) {
        char *end = strchr(line, '\n');
        size_t l = end ? (size_t)(end - line) + 1 : strlen(line);
        /* the name is after the second tab */
        char *t1 = memchr(line, '\t', l);
        char *t2 = t1 ? memchr(t1 + 1, '\t', l - (size_t)(t1 + 1 - line)) : NULL;
        size_t nl = t2 ? l - (size_t)(t2 + 1 - line) - (end ? 1 : 0) : 0;
        int same = t2 && nl == strlen(name) && memcmp(t2 + 1, name, nl) == 0;
        if (!same) {
            memcpy(out + len, line, l);
            len += l;
        }
        line += l;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s\t%c\t%s\n", key, type, name);
    write_listing(pkey, out, len, parent);
    free(old);
    free(out);
}

/* The directory at `path` is durable as it is now. */
static void save_directory(const char *path, const char *key) {
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return fail("open directory", path);
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return fail("fdopendir", path);
    }
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    if (!out) {
        closedir(d);
        return fail("out of memory", path);
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (strchr(e->d_name, '\n') || strchr(e->d_name, '\t')) continue;
        char k[128];
        mode_t mode;
        if (key_of(dirfd(d), e->d_name, AT_SYMLINK_NOFOLLOW, k, sizeof k, &mode, NULL) != 0)
            continue; /* removed meanwhile */
        char type = S_ISREG(mode) ? 'f' : S_ISDIR(mode) ? 'd' : 0;
        if (!type) continue;
        size_t need = strlen(k) + strlen(e->d_name) + 8;
        if (len + need > cap) {
            while (len + need > cap) cap *= 2;
            char *t = realloc(out, cap);
            if (!t) {
                free(out);
                closedir(d);
                return fail("out of memory", path);
            }
            out = t;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s\t%c\t%s\n", k, type, e->d_name);
    }
    closedir(d);
    write_listing(key, out, len, path);
    free(out);
    link_name(path, key, 'd');
}

/* Records `fd` (open on `path`) as synced. Called with the lock held. */
static void record(int fd, const char *path) {
    char key[128];
    mode_t mode;
    unsigned nlink;
    if (key_of(fd, "", AT_EMPTY_PATH, key, sizeof key, &mode, &nlink) != 0)
        return fail("stat synced fd", path);
    if (S_ISDIR(mode)) {
        save_directory(path, key);
    } else if (S_ISREG(mode)) {
        /* Read through /proc: the descriptor may be write-only. */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        int src = open(proc, O_RDONLY | O_CLOEXEC);
        if (src < 0) return fail("reopen synced file", path);
        save_content(src, key, path);
        close(src);
        /* Unlinked already: its data is durable (an undurable unlink brings the old name
         * back), but it has no name of its own to record. */
        if (nlink > 0) link_name(path, key, 'f');
    }
}

/* The path of `fd` if it is under the root. */
static int fd_path(int fd, char *out, size_t n) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t l = readlink(proc, out, n - 1);
    if (l < 0) return -1;
    out[l] = '\0';
    return under_root(out) ? 0 : -1;
}

static void synced(int fd, const char *call) {
    char path[PATH_MAX];
    int saved = errno;
    if (fd_path(fd, path, sizeof path) != 0) {
        errno = saved;
        return;
    }
    pthread_mutex_lock(&lock);
    note("calls.log", call, path);
    record(fd, path);
    pthread_mutex_unlock(&lock);
    errno = saved;
}

/* Everything under `path` (a directory) as if each file and directory were synced. */
static void record_tree(const char *path, int depth) {
    if (depth > 32) return;
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return fail("open directory", path);
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return fail("fdopendir", path);
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char child[PATH_MAX];
        if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            record_tree(child, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            int fd = open(child, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                record(fd, child);
                close(fd);
            }
        }
    }
    closedir(d);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        record(fd, path);
        close(fd);
    }
}

static void synced_all(const char *call) {
    if (!root || !shadow) return;
    char r[PATH_MAX];
    if (root_len >= sizeof r) return;
    memcpy(r, root, root_len);
    r[root_len] = '\0';
    int saved = errno;
    pthread_mutex_lock(&lock);
    note("calls.log", call, r);
    record_tree(r, 0);
    pthread_mutex_unlock(&lock);
    errno = saved;
}

int fsync(int fd) {
    pthread_once(&once, init);
    int rc = real_fsync(fd);
    if (rc == 0) synced(fd, "fsync");
    return rc;
}

int fdatasync(int fd) {
    pthread_once(&once, init);
    int rc = real_fdatasync(fd);
    if (rc == 0) synced(fd, "fdatasync");
    return rc;
}

void sync(void) {
    pthread_once(&once, init);
    real_sync();
    synced_all("sync");
}

int syncfs(int fd) {
    pthread_once(&once, init);
    int rc = real_syncfs(fd);
    if (rc == 0 && root && shadow) {
        struct stat a, b;
        char r[PATH_MAX];
        if (root_len < sizeof r) {
            memcpy(r, root, root_len);
            r[root_len] = '\0';
            if (fstat(fd, &a) == 0 && stat(r, &b) == 0 && a.st_dev == b.st_dev)
                synced_all("syncfs");
        }
    }
    return rc;
}

int msync(void *addr, size_t length, int flags) {
    pthread_once(&once, init);
    int rc = real_msync(addr, length, flags);
    int saved = errno;
    pthread_mutex_lock(&lock);
    note("unmodelled.log", "msync", NULL);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    pthread_once(&once, init);
    int rc = real_sync_file_range(fd, offset, nbytes, flags);
    char path[PATH_MAX];
    if (fd_path(fd, path, sizeof path) == 0) {
        int saved = errno;
        pthread_mutex_lock(&lock);
        note("unmodelled.log", "sync_file_range", path);
        pthread_mutex_unlock(&lock);
        errno = saved;
    }
    return rc;
}
