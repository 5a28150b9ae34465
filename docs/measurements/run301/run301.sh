#!/usr/bin/env bash
# Run 301 (session 59, H100): session 58's validation of TLLM_GEMM_NO_WORKSPACE_MIN_T (first
# written as docs/measurements/run296/run301.sh, never run there), on session 59's build
# (9030256: hub ids and GGUF files; the CUDA code as session 58's). Pack: tinyllm,
# test_kernels_cuda and test_engine_gpu as build/r301. cuBLASLt algorithms without a
# workspace from 1,024 tokens (=1024) against the 32 MB workspace for all (=0, the default),
# same binary, alternated: 7B pp4096 x2, 7B pp4096 in 1,024-token chunks, 1.5B, Qwen3-8B and
# Llama-3.1-8B pp4096. Tests: CudaLinear's cuBLASLt and autotuner cases (now at 1,024 / 1,100
# tokens too) and test_engine_gpu with the switch on. Then the issues' decode rows on this
# build, and the demo model from a GGUF file on the GPU.
set -u
tar -xJf build/r301.tar.xz
source scripts/device/run_lib.sh
run_init run301 "${LIMIT:-560}"
B=build/r301
OFF=0
TLLM_GEMM_NO_WORKSPACE_MIN_T=1024 RUN_TEST_TIMEOUT=60 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.CublasMatchesReference:CudaLinear.AutotunedGemmMatchesReferenceAndRepeats'
TLLM_GEMM_NO_WORKSPACE_MIN_T=1024 RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  for m in 1024 $OFF; do
    TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill 7b_pp4096_m${m}_$r $B/tinyllm qwen2.5-7b 4096
  done
done
for m in 1024 $OFF; do
  TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill 7b_pp4096_c1024_m$m $B/tinyllm qwen2.5-7b 4096 --max-num-batched-tokens 1024
  TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=30 run_prefill 15b_pp4096_m$m $B/tinyllm qwen2.5-1.5b 4096
  TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill q3_8b_pp4096_m$m $B/tinyllm qwen3-8b 4096
  TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill l8b_pp4096_m$m $B/tinyllm llama-3.1-8b 4096
done
RUN_BENCH_TIMEOUT=60 run_bench r301 qwen2.5-7b 7b_int4_b1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=60 run_bench r301 qwen2.5-0.5b 05b_b1
RUN_BENCH_TIMEOUT=60 run_bench r301 qwen2.5-7b 7b_b1
# The demo model from a GGUF file on the GPU (f16: no quantization on load) and from its folder.
python3 scripts/gguf/write_gguf.py model models/tiny-qwen2-demo "$RUN_DIR/demo-f16.gguf" --type f16 > "$RUN_DIR/gguf.log" 2>&1
for m in "$RUN_DIR/demo-f16.gguf" models/tiny-qwen2-demo; do
  XDG_CACHE_HOME=$RUN_DIR/xdg timeout 60 $B/tinyllm generate --model "$m" --device cuda --dtype float16 --temperature 0 \
    --max-tokens 24 --prompt "And the LORD said unto Moses," >> "$RUN_DIR/gguf.log" 2>&1
  echo "rc=$?" >> "$RUN_DIR/gguf.log"
done
run_log "gguf $(grep -c 'rc=0' "$RUN_DIR/gguf.log") of 2 ran"
rm -rf "$RUN_DIR/xdg" "$RUN_DIR/demo-f16.gguf"
run_done
