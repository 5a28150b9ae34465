#!/usr/bin/env bash
# Where the serving overhead goes: the same workload driven directly (`tinyllm throughput`)
# and through `tinyllm serve` + `tinyllm bench-serve`, both with TLLM_STEP_TIMING=1 (medians
# of the phases inside each engine step, the sampled rows per step, and the serving loop's
# time between steps). Usage: serve_timing.sh TINYLLM MODEL_DIR "BATCHES" [engine flags...]
set -u
T="$1"; M="$2"; BATCHES="$3"; shift 3
ENGINE=(--device cuda --max-model-len 4096 "$@")
IN=32; OUTLEN=1000
for b in $BATCHES; do
  echo "== batch $b: direct"
  TLLM_STEP_TIMING=1 "$T" throughput --model "$M" "${ENGINE[@]}" --num-seqs "$b" --min-input-len $IN \
    --max-input-len $IN --min-output-len $OUTLEN --max-output-len $OUTLEN --temperature 0 --iters 2 2>&1 |
    grep -E "Throughput|step timing"
  echo "== batch $b: served"
  PF=$(mktemp); SE=$(mktemp)
  TLLM_STEP_TIMING=1 "$T" serve --model "$M" "${ENGINE[@]}" --host 127.0.0.1 --port 0 > "$PF" 2> "$SE" &
  SP=$!
  for _ in $(seq 600); do grep -q "ready in" "$PF" && break; sleep 0.2; done
  PORT=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$PF" | head -1)
  for run in 1 2; do  # the first run warms the server (graphs, allocations)
    "$T" bench-serve --port "$PORT" --tokenizer "$M" --num-prompts "$b" --max-concurrency "$b" \
      --random-input-len $IN --random-output-len $OUTLEN 2>&1 | grep -E "Output token throughput|Benchmark duration"
  done
  kill -TERM $SP; wait $SP 2>/dev/null
  grep "step timing" "$SE"
done
