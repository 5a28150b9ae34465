#!/usr/bin/env bash
# Decode variants side by side in one device call: for each round, each variant, each model,
# `tinyllm bench` tg128 batch 1 (graphs; CUDA env knobs per variant), rows printed as they come.
#   VARIANTS="label=BIN:ENV1=a,ENV2=b ..." (BIN relative to the repo root; ENV list may be empty)
#   MODELS="qwen2.5-0.5b qwen2.5-7b" ROUNDS=1 OUTDIR=$OUT/runNN bash scripts/device/variants.sh
# Logs go to $OUTDIR/variants.tar.gz (one file: the device tool returns few files).
set -u
OUTDIR=${OUTDIR:-/tmp/variants}
L=$(mktemp -d)
mkdir -p "$OUTDIR"
for round in $(seq "${ROUNDS:-1}"); do
  for name in ${MODELS:-qwen2.5-0.5b qwen2.5-7b}; do
    for v in $VARIANTS; do
      label=${v%%=*}; rest=${v#*=}; bin=${rest%%:*}; envs=${rest#*:}
      log="$L/${label}_${name}_$round.log"
      env ${envs//,/ } timeout 150 "$bin" bench --model "bench/configs/$name" --load-format dummy --device cuda \
        --max-model-len 4096 -p 16 -n 128 -b 1 -r "${REPS:-2}" ${EXTRA:-} > "$log" 2>&1
      echo "$label $name r$round rc=$? $(grep -E '^\| tg' "$log" | awk -F'|' '{print $5, $7}')"
    done
  done
done
tar -C "$L" -czf "$OUTDIR/variants.tar.gz" .
