"""Turns repo.cu into plain C++ for tests/gpu/emu/cuda_emu.h (the CUDA runtime and cuBLAS on the CPU):
drops the CUDA headers and rewrites each launch kernel<<<G, B>>>(ARGS) as
emu_launch(dim3(G), dim3(B), [&]() { kernel(ARGS); }).   python3 make_emu.py repo.cu OUT.cpp"""
import re, sys

s = open(sys.argv[1]).read()
for inc in ['#include <cublas_v2.h>\n', '#include <cuda_bf16.h>\n', '#include <cuda_runtime.h>\n']:
    assert inc in s, inc
    s = s.replace(inc, '')
s = s.replace('#include "repo.c"', '#include "repo.c"\n#include "cuda_emu.h"')


def close(s, start):  # index of the parenthesis that closes the one at start
    depth = 0
    for e in range(start, len(s)):
        depth += {'(': 1, ')': -1}.get(s[e], 0)
        if depth == 0: return e
    raise ValueError('unbalanced')


out, i, n = [], 0, 0
for m in re.finditer(r'(\w+)<<<', s):
    if m.start() < i: continue
    j = s.index('>>>', m.end())
    inner, depth = s[m.end():j], 0
    for k, ch in enumerate(inner):  # the top-level comma between grid and block
        depth += {'(': 1, ')': -1}.get(ch, 0)
        if ch == ',' and depth == 0: break
    assert s[j + 3] == '(', 'a launch without arguments'
    e = close(s, j + 3)
    out.append(s[i:m.start()])
    out.append(f'emu_launch(dim3({inner[:k].strip()}), dim3({inner[k + 1:].strip()}), [&]() {{ {m.group(1)}({s[j + 4:e]}); }})')
    i, n = e + 1, n + 1
out.append(s[i:])
open(sys.argv[2], 'w').write(''.join(out))
print(f'make_emu: {n} launches rewritten', file=sys.stderr)
