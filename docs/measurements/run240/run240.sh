#!/usr/bin/env bash
# Run 240 (session 43): an HF golden of a compressed-tensors W4A16 checkpoint
# (scripts/goldens/model_goldens.py qwen3_w4a16_ct: pack-quantized int4, symmetric, group 32,
# written by the script's own packer). transformers loads it through the compressed-tensors
# package when that is installed; its logits are recorded against the dense reference
# (ct_hf_check in golden.json), which checks the packing convention independently. Then the
# GPU parity test with it. Binaries: build/r239 (session 43's build).
set -u
source scripts/device/run_lib.sh
run_init run240 "${LIMIT:-200}"
N=build/r239
G=$RUN_DIR/goldens
mkdir -p "$G"
python3 -c 'import compressed_tensors as c; print("compressed_tensors", c.__version__)' > "$RUN_DIR/ct_version.txt" 2>&1
run_log "$(tail -1 "$RUN_DIR/ct_version.txt" | cut -c1-150)"
timeout 100 python3 scripts/goldens/model_goldens.py "$G" qwen3_w4a16_ct > "$RUN_DIR/goldens.log" 2>&1
run_log "goldens rc=$? $(grep -E '^(ok|FAILED|ct hf check)' "$RUN_DIR/goldens.log" | paste -sd' ' | cut -c1-600)"
rm -rf "$G/model_goldens.tar.gz" "$G/fp8_dense"
M=/tmp/run240_models
rm -rf $M && mkdir -p $M && cp -r "$G"/models/* $M/ 2>/dev/null
TLLM_GOLDEN_MODELS=$M RUN_TEST_TIMEOUT=100 run_gtest t_engine $N/test_engine_gpu --gtest_filter='HfGoldens/GpuParity.*'
grep -h "greedy steps equal" "$RUN_DIR/t_engine.log" | head -4
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -20
run_done
