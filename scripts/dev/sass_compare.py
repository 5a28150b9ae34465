#!/usr/bin/env python3
"""Does a change to CUDA sources change the machine code? (no GPU needed)

Compiles each given .cu file twice for one architecture with nvcc -cubin: from git revision
REV (a temporary worktree) and from the working tree, and compares the kernels' machine code
(the ELF .text.<kernel> sections) byte for byte. A refactor whose kernels come out identical
needs no device run to keep the measurements and gpu test results of REV.

  scripts/dev/sass_compare.py REV src/kernels/cuda/moe_gemm.cu [more .cu files]
      [--arch sm_90a] [--nvcc /usr/local/cuda/bin/nvcc]

Prints one line per kernel: identical, differs (with sizes), or only on one side (a renamed
or new kernel). Exit status 0 when every kernel of every file is identical, 1 otherwise.
"""
import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile


def text_sections(path):
    """{section name: bytes} of the .text sections of an ELF64 file (a cubin)."""
    d = open(path, "rb").read()
    if d[:4] != b"\x7fELF" or d[4] != 2:
        raise SystemExit(f"{path}: not an ELF64 file")
    shoff = struct.unpack_from("<Q", d, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
    stroff = hdrs[shstrndx][4]

    def name(off):
        end = d.index(b"\0", stroff + off)
        return d[stroff + off:end].decode()

    # Kernels in anonymous namespaces carry a hash of the file's path (the two builds compile
    # from different folders): dropped, so the same kernel has the same name in both.
    return {re.sub(r"_GLOBAL__N__[0-9a-f]+_", "_GLOBAL__N__", name(h[0])): d[h[4]:h[4] + h[5]]
            for h in hdrs if name(h[0]).startswith(".text")}


def compile_cubin(nvcc, root, src, arch, out):
    cmd = [nvcc, "--expt-relaxed-constexpr", "-O3", "-DNDEBUG", "-DTLLM_HAVE_CUDA=1", f"-arch={arch}",
           "-std=c++20", f"-I{os.path.join(root, 'src')}", "-cubin", os.path.join(root, src), "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"nvcc failed for {src} in {root}:\n{r.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--arch", default="sm_90a")
    ap.add_argument("--nvcc", default="/usr/local/cuda/bin/nvcc")
    a = ap.parse_args()
    repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True).stdout.strip()
    all_same = True
    with tempfile.TemporaryDirectory() as tmp:
        old = os.path.join(tmp, "old")
        subprocess.run(["git", "-C", repo, "worktree", "add", "--detach", "-q", old, a.rev], check=True)
        try:
            for src in a.files:
                rel = os.path.relpath(os.path.abspath(src), repo)
                before, after = os.path.join(tmp, "before.cubin"), os.path.join(tmp, "after.cubin")
                compile_cubin(a.nvcc, old, rel, a.arch, before)
                compile_cubin(a.nvcc, repo, rel, a.arch, after)
                b, n = text_sections(before), text_sections(after)
                for k in sorted(set(b) | set(n)):
                    kernel = k[len(".text."):]
                    if k not in n:
                        print(f"{rel}: {kernel}: only in {a.rev}")
                    elif k not in b:
                        print(f"{rel}: {kernel}: only in the working tree")
                    elif b[k] == n[k]:
                        print(f"{rel}: {kernel}: identical ({len(n[k])} bytes)")
                        continue
                    else:
                        print(f"{rel}: {kernel}: differs ({len(b[k])} -> {len(n[k])} bytes)")
                    all_same = False
        finally:
            subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", old], check=False)
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
