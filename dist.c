// dist.c: data parallel across processes (see dist.h). With -DREPO_MPI, MPI from Debian's OpenMPI;
// without it, a single process.
#include "dist.h"
#include "io.h"
#ifdef REPO_MPI
#include <mpi.h>

static int rank = 0, size = 1;

void dist_init(int *argc, char ***argv) {
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
}
void dist_finalize(void) { MPI_Finalize(); }
int dist_rank(void) { return rank; }
int dist_size(void) { return size; }

// MPI counts are ints: large buffers go in pieces
#define PIECE (1 << 28)
void dist_allreduce_sum(float *x, size_t n) {
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
void dist_allreduce_sum_double(double *x, size_t n) {
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
void dist_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
void dist_broadcast(void *x, size_t bytes) { MPI_Bcast(x, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD); }
#else
#include <stdlib.h>
void dist_init(int *argc, char ***argv) { (void)argc; (void)argv; }
void dist_finalize(void) {}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
void dist_allreduce_sum(float *x, size_t n) { (void)x; (void)n; }
void dist_allreduce_sum_double(double *x, size_t n) { (void)x; (void)n; }
void dist_abort(int code) { exit(code); }
void dist_broadcast(void *x, size_t bytes) { (void)x; (void)bytes; }
#endif
