# repo: RePO preference optimization in C.  `make` builds ./repo; `make test` runs the tests.
CC ?= gcc
# -ffast-math lets gcc vectorize float reductions; NaN checks still work because
# finite-math is switched back off (and repo.c tests NaN by bit pattern anyway)
CFLAGS ?= -O3 -march=native -ffast-math -fno-finite-math-only -Wall -Wextra -Wno-unused-parameter
OPENMP ?= -fopenmp
LDLIBS = -lcjson -lm

.PHONY: all test run deps clean

all: repo

repo: repo.c io.c io.h
	$(CC) $(CFLAGS) $(OPENMP) -o $@ repo.c io.c $(LDLIBS)

# the same program without OpenMP (llm.c's CI builds both; pragmas must not be load-bearing)
repo_noomp: repo.c io.c io.h
	$(CC) $(CFLAGS) -Wno-unknown-pragmas -o $@ repo.c io.c $(LDLIBS)

tests/test_layers: tests/test_layers.c repo.c io.c io.h
	$(CC) $(CFLAGS) -Wno-unused-function $(OPENMP) -o $@ tests/test_layers.c io.c $(LDLIBS)

tests/compare: tests/compare.c io.c io.h
	$(CC) -O2 -Wall -o $@ tests/compare.c io.c $(LDLIBS)

# the main job on the embedded default: a tiny GPT-2 learns two-digit addition preferences with
# RePO and the paper's large-to-small gamma schedule; eval before and after on held-out pairs
run:
	@bash tests/install_deps.sh build
	@$(MAKE) --no-print-directory repo
	@rm -rf out/arith-init out/arith-repo
	./repo init --config data/arith/config.json --out out/arith-init --seed 1
	./repo eval --model out/arith-init --data data/arith/test.jsonl
	./repo train --model out/arith-init --data data/arith/train.jsonl --out out/arith-repo --loss repo \
	    --gamma 1.0 --gamma-end 0.2 --lr 3e-3 --batch-pairs 16 --epochs 2 --log out/arith-repo.log.jsonl
	./repo eval --model out/arith-repo --data data/arith/test.jsonl --out out/arith-repo.eval.jsonl

# the tests: installs what they need (Debian packages, PyTorch references in .venv) first
test:
	@bash tests/install_deps.sh test
	@$(MAKE) --no-print-directory repo repo_noomp tests/test_layers tests/compare
	@bash tests/run_all.sh

clean:
	rm -f repo repo_noomp tests/compare tests/test_layers
