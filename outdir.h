// outdir.h: outputs that are complete or absent after a kill at any instant, and never an input.
#ifndef REPO_OUTDIR_H
#define REPO_OUTDIR_H
#ifdef __cplusplus
extern "C" {
#endif

// A directory written as a whole. outdir_begin creates PATH.tmp.<pid> beside PATH (first removing
// the temporaries that killed runs left there); the files go into d->tmp; outdir_commit syncs them
// and puts the directory in place with one rename (an existing PATH is exchanged with it atomically,
// then removed). At exit (die() included) an uncommitted temporary is removed.
typedef struct { char *path, *tmp; } OutDir;
void outdir_begin(OutDir *d, const char *path);
void outdir_commit(OutDir *d);

// Refusals, each one line naming the flag. outdir_check: an existing path that is a symbolic link or
// not a directory, or a non-empty directory without the file `marker` (NULL: any existing path).
void outdir_check(const char *flag, const char *path, const char *marker);
// output_file_check: an existing path that is not a regular file (a device, a directory, a symlink)
void output_file_check(const char *flag, const char *path);
// output_not_input: an output that is one of the inputs (the same file), or a directory output that
// holds an input (it is replaced as a whole). Inputs may be NULL (skipped).
void output_not_input(const char *flag, const char *out, const char *const *inputs, int n_inputs);

// a file removed at exit (die() included) unless kept: e.g. atomic_open's temporaries
void remove_at_exit(const char *path);
void keep_at_exit(const char *path);

// logs: opened for appending (each row is then written with one write(2), so a kill leaves whole
// rows); truncate_to cuts a log back to where a checkpoint's step left it (a resumed run goes on from there)
#include <stdio.h>
FILE *open_log(const char *path);
void truncate_to(const char *path, long long bytes);
int file_exists_in(const char *dir, const char *name);
#ifdef __cplusplus
}
#endif
#endif
