# repo: RePO preference optimization in C.  `make` builds ./repo; `make test` runs the tests.
CC ?= gcc
# -ffast-math lets gcc vectorize float reductions; NaN checks still work because
# finite-math is switched back off (and repo.c tests NaN by bit pattern anyway)
CFLAGS ?= -O3 -march=native -ffast-math -fno-finite-math-only -Wall -Wextra -Wno-unused-parameter
OPENMP ?= -fopenmp
LDLIBS = -lcjson -lm

.PHONY: all test run clean

all: repo

repo: repo.c io.c io.h
	$(CC) $(CFLAGS) $(OPENMP) -o $@ repo.c io.c $(LDLIBS)

# the same program without OpenMP (llm.c's CI builds both; pragmas must not be load-bearing)
repo_noomp: repo.c io.c io.h
	$(CC) $(CFLAGS) -Wno-unknown-pragmas -o $@ repo.c io.c $(LDLIBS)

clean:
	rm -f repo repo_noomp tests/compare tests/test_layers
