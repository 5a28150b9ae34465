#!/usr/bin/env bash
# Run 148 (session 21): the CPU suites on the GPU machine's host CPU, for the AVX-512 kernels
# (and their non-VNNI forms, forced by the tests) that this 2-core AVX2 VM cannot run.
set -u
source scripts/device/run_lib.sh
run_init run148 "${LIMIT:-300}"
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | sed 's/Flags:/Flags (avx512*, vnni, amx):/' | \
  awk '/Flags/ { n = split($0, f, " "); s = ""; for (i = 1; i <= n; i++) if (f[i] ~ /avx512|vnni|amx/) s = s " " f[i]; print "Flags:" s; next } { print }' \
  | tee "$RUN_DIR/cpu.txt"
B=build/cpu21
run_gtest t_kernels $B/test_kernels
run_gtest t_quant_kernels $B/test_quant_kernels
run_gtest t_quant_formats $B/test_quant_formats
run_gtest t_model $B/test_model
run_done
