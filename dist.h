// dist.h: several processes training one model (data parallel). Built with -DREPO_MPI (make repo_mpi)
// this is MPI; otherwise one process, and every call is trivial.
#ifndef REPO_DIST_H
#define REPO_DIST_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
void dist_init(int *argc, char ***argv);
void dist_finalize(void);
int dist_rank(void);                             // 0 .. dist_size() - 1
int dist_size(void);
void dist_allreduce_sum(float *x, size_t n);     // in place: every process gets the sum over processes
void dist_allreduce_sum_double(double *x, size_t n);
void dist_abort(int code);                       // a fatal error on one process ends them all
void dist_broadcast(void *x, size_t bytes);      // rank 0's bytes to every process
#ifdef __cplusplus
}
#endif
#endif
