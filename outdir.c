// outdir.c: outputs that are complete or absent after a kill at any instant, and never an input.
// Plumbing only: see outdir.h for what each function promises.
#define _GNU_SOURCE
#include "outdir.h"
#include "io.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// what to remove at exit: temporaries not (yet) committed

#define MAX_PENDING 64
static char *pending[MAX_PENDING];
static int pending_dir[MAX_PENDING];

static void remove_tree(const char *path) {
    struct stat s;
    if (lstat(path, &s) != 0) return;
    if (S_ISDIR(s.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char sub[PATH_MAX];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else unlink(path);
}

static void remove_pending(void) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending[i]) { if (pending_dir[i]) remove_tree(pending[i]); else unlink(pending[i]); }
}

static void track(const char *path, int is_dir) {
    static int registered = 0;
    if (!registered) { atexit(remove_pending); registered = 1; }
    for (int i = 0; i < MAX_PENDING; i++)
        if (!pending[i]) { pending[i] = strdup(path); pending_dir[i] = is_dir; return; }
    die("%s: too many temporary outputs at once", path);
}

static void untrack(const char *path) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending[i] && !strcmp(pending[i], path)) { free(pending[i]); pending[i] = NULL; }
}

void remove_at_exit(const char *path) { track(path, 0); }
void keep_at_exit(const char *path) { untrack(path); }

// ----------------------------------------------------------------------------
// staged directories

static void split_path(const char *path, char *dir, size_t n_dir, const char **base) {
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(dir, n_dir, "."); *base = path; return; }
    snprintf(dir, n_dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    *base = slash + 1;
}

// PATH.tmp.<pid> directories whose process is gone: what an earlier kill left behind
static void remove_stale_temporaries(const char *path) {
    char dir[PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    DIR *d = opendir(dir);
    if (!d) return;
    size_t n = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, n) || strncmp(e->d_name + n, ".tmp.", 5)) continue;
        char *end;
        long pid = strtol(e->d_name + n + 5, &end, 10);
        if (*end || pid <= 0 || pid == getpid()) continue;
        int alive = kill((pid_t)pid, 0) == 0 || errno != ESRCH;
        if (alive) continue; // another run writing the same output right now
        char stale[2 * PATH_MAX];
        snprintf(stale, sizeof stale, "%s/%s", dir, e->d_name);
        remove_tree(stale);
    }
    closedir(d);
}

void outdir_begin(OutDir *d, const char *path) {
    remove_stale_temporaries(path);
    d->path = strdup(path);
    d->tmp = xmalloc(strlen(path) + 32);
    sprintf(d->tmp, "%s.tmp.%d", path, (int)getpid());
    remove_tree(d->tmp);
    char parent[PATH_MAX];
    const char *base;
    split_path(path, parent, sizeof parent, &base);
    if (strcmp(parent, ".")) make_dir(parent);
    if (mkdir(d->tmp, 0755) != 0) die("%s: cannot create directory: %s", d->tmp, strerror(errno));
    track(d->tmp, 1);
}

static void sync_path(const char *path) { // a file's or directory's data to disk
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    if (fsync(fd) != 0 && errno != EINVAL) { close(fd); die("%s: cannot sync: %s", path, strerror(errno)); }
    close(fd);
}

void outdir_commit(OutDir *d) {
    DIR *dir = opendir(d->tmp);
    if (!dir) die("%s: cannot read: %s", d->tmp, strerror(errno));
    struct dirent *e;
    while ((e = readdir(dir))) {
        char f[PATH_MAX];
        snprintf(f, sizeof f, "%s/%s", d->tmp, e->d_name);
        if (e->d_name[0] != '.') sync_path(f);
    }
    closedir(dir);
    sync_path(d->tmp);
    struct stat s;
    if (lstat(d->path, &s) == 0) {
        // swap the two directories in one step; the old one, now at the temporary name, goes after
        if (syscall(SYS_renameat2, AT_FDCWD, d->tmp, AT_FDCWD, d->path, 2 /* RENAME_EXCHANGE */) != 0) {
            // a file system without the exchange: move the old one aside, the new one in
            char old[PATH_MAX];
            snprintf(old, sizeof old, "%s.old.%d", d->path, (int)getpid());
            if (rename(d->path, old) != 0) die("%s: cannot replace: %s", d->path, strerror(errno));
            if (rename(d->tmp, d->path) != 0) die("%s: cannot move into place: %s", d->path, strerror(errno));
            remove_tree(old);
        }
    } else if (rename(d->tmp, d->path) != 0) die("%s: cannot move into place: %s", d->path, strerror(errno));
    char parent[PATH_MAX];
    const char *base;
    split_path(d->path, parent, sizeof parent, &base);
    sync_path(parent);
    remove_tree(d->tmp); // the old directory after an exchange
    untrack(d->tmp);
    free(d->path); free(d->tmp);
}

// ----------------------------------------------------------------------------
// refusals

void outdir_check(const char *flag, const char *path, const char *marker) {
    struct stat s;
    if (lstat(path, &s) != 0) {
        if (errno != ENOENT) die("%s %s: %s", flag, path, strerror(errno));
        return;
    }
    if (S_ISLNK(s.st_mode)) die("%s %s is a symbolic link; give the directory it points to", flag, path);
    if (!S_ISDIR(s.st_mode)) die("%s %s exists and is not a directory", flag, path);
    if (!marker) die("%s %s exists already", flag, path);
    DIR *d = opendir(path);
    if (!d) die("%s %s: %s", flag, path, strerror(errno));
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d))) if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    char m[PATH_MAX];
    snprintf(m, sizeof m, "%s/%s", path, marker);
    if (!empty && access(m, F_OK) != 0)
        die("%s %s exists and is not one of repo's outputs (no %s): it would be replaced; remove it or choose another",
            flag, path, marker);
    if (access(path, W_OK) != 0) die("%s %s: %s", flag, path, strerror(errno));
}

void output_file_check(const char *flag, const char *path) {
    struct stat s;
    if (lstat(path, &s) != 0) return;
    if (S_ISLNK(s.st_mode)) die("%s %s is a symbolic link; give the file it points to", flag, path);
    if (!S_ISREG(s.st_mode)) die("%s %s exists and is not a regular file", flag, path);
}

void output_not_input(const char *flag, const char *out, const char *const *inputs, int n_inputs) {
    struct stat so;
    if (stat(out, &so) != 0) return; // not there yet: it cannot be an input
    char rout[PATH_MAX];
    if (!realpath(out, rout)) return;
    size_t n = strlen(rout);
    for (int i = 0; i < n_inputs; i++) {
        struct stat si;
        if (!inputs[i] || stat(inputs[i], &si) != 0) continue;
        if (si.st_dev == so.st_dev && si.st_ino == so.st_ino) die("%s %s is one of the inputs (%s)", flag, out, inputs[i]);
        char rin[PATH_MAX];
        if (S_ISDIR(so.st_mode) && realpath(inputs[i], rin) && !strncmp(rin, rout, n) && rin[n] == '/')
            die("%s %s holds the input %s (the directory is replaced as a whole)", flag, out, inputs[i]);
    }
}

// ----------------------------------------------------------------------------
// logs

FILE *open_log(const char *path) {
    FILE *f = fopen(path, "a");
    if (!f) die("%s: cannot open for appending: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END); // ftell is then the log's length
    return f;
}

void truncate_to(const char *path, long long bytes) {
    struct stat s;
    if (stat(path, &s) != 0) return;
    if (s.st_size < bytes)
        fprintf(stderr, "repo: warning: %s is shorter (%lld bytes) than when the checkpoint was written (%lld)\n", path,
                (long long)s.st_size, bytes);
    else if (s.st_size > bytes && truncate(path, bytes) != 0) die("%s: cannot truncate: %s", path, strerror(errno));
}

int file_exists_in(const char *dir, const char *name) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}
