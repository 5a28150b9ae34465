#!/usr/bin/env python3
"""Does a change to CUDA sources change the machine code? (no GPU needed)

Compiles each given .cu file twice for one architecture with nvcc -cubin: from git revision
REV (a temporary worktree) and from the working tree, and compares the kernels' machine code
(the ELF .text.<kernel> sections) byte for byte. A refactor whose kernels come out identical
needs no device run to keep the measurements and gpu test results of REV.

  scripts/dev/sass_compare.py REV src/kernels/cuda/moe_gemm.cu [more .cu files]
      [--arch sm_90a] [--nvcc /usr/local/cuda/bin/nvcc] [--build build] [--rename RE SUB]

--rename applies re.sub(RE, SUB) to the working tree's kernel names before pairing them, for a
change that adds a template parameter (e.g. a trailing `bool = false`: the kernels that keep
the old default get a new mangled name and the same code).

The nvcc flags are those the CMake build uses for the file (its compile_commands.json in
--build), with the architecture, output and include root replaced; without that file, the
build's flags as of 2026-11-29.

Prints one line per kernel: identical, differs (with sizes), or only on one side (a renamed
or new kernel). Exit status 0 when every kernel of every file is identical, 1 otherwise.
"""
import argparse
import json
import os
import re
import shlex
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


def build_flags(build_dir, repo, src):
    """The CMake build's nvcc flags for src (relative to repo), without the compiler, source,
    output and architecture; None when the build has no compile_commands.json entry."""
    path = os.path.join(build_dir, "compile_commands.json")
    if not os.path.exists(path):
        return None
    target = os.path.normpath(os.path.join(repo, src))
    for e in json.load(open(path)):
        if os.path.normpath(os.path.join(e.get("directory", ""), e["file"])) != target:
            continue
        args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        out, skip = [], False
        for x in args[1:]:
            if skip:
                skip = False
            elif x in ("-o", "-x"):
                skip = True
            elif x == "-c" or x.startswith("--generate-code") or x.startswith("-gencode") or x.startswith("-arch"):
                continue
            elif os.path.normpath(x) == target:
                continue
            else:
                out.append(x)
        return out
    return None


def compile_cubin(nvcc, root, src, arch, out, flags, repo):
    if flags is None:
        flags = ["--expt-relaxed-constexpr", "-O3", "-DNDEBUG", "-DTLLM_HAVE_CUDA=1", "-std=c++20", f"-I{repo}/src"]
    # include paths into the repository point into the tree being compiled
    flags = [f.replace(repo, root) for f in flags]
    cmd = [nvcc] + flags + [f"-arch={arch}", "-x", "cu", "-cubin", os.path.join(root, src), "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"nvcc failed for {src} in {root}:\n{r.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--arch", default="sm_90a")
    ap.add_argument("--nvcc", default="/usr/local/cuda/bin/nvcc")
    ap.add_argument("--build", default=None, help="CMake build folder (default: <repo>/build)")
    ap.add_argument("--rename", nargs=2, metavar=("RE", "SUB"), default=None,
                    help="rename the working tree's kernels with re.sub(RE, SUB) before pairing")
    a = ap.parse_args()
    repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True).stdout.strip()
    build_dir = a.build or os.path.join(repo, "build")
    all_same = True
    with tempfile.TemporaryDirectory() as tmp:
        old = os.path.join(tmp, "old")
        subprocess.run(["git", "-C", repo, "worktree", "add", "--detach", "-q", old, a.rev], check=True)
        try:
            for src in a.files:
                rel = os.path.relpath(os.path.abspath(src), repo)
                before, after = os.path.join(tmp, "before.cubin"), os.path.join(tmp, "after.cubin")
                flags = build_flags(build_dir, repo, rel)
                if flags is None:
                    print(f"{rel}: no compile_commands.json entry in {build_dir}; the flags of 2026-11-29")
                compile_cubin(a.nvcc, old, rel, a.arch, before, flags, repo)
                compile_cubin(a.nvcc, repo, rel, a.arch, after, flags, repo)
                b, n = text_sections(before), text_sections(after)
                if a.rename:
                    n = {re.sub(a.rename[0], a.rename[1], k): v for k, v in n.items()}
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
