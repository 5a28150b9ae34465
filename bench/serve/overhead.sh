#!/usr/bin/env bash
# Server overhead: output tokens/s of the engine driven directly (`tinyllm throughput`)
# vs the same workload through HTTP streaming (`tinyllm serve` + `tinyllm bench-serve`),
# at batch 1 and at 64 concurrent requests. Runs alternate (the machines are noisy);
# prints one line per run and the median ratio per batch size.
# Usage: bench/serve/overhead.sh TINYLLM_BINARY MODEL_DIR [DEVICE=cpu] [RUNS=3] [extra engine flags...]
set -euo pipefail
BIN="$1"; MODEL="$2"; DEVICE="${3:-cpu}"; RUNS="${4:-3}"; shift $(( $# < 4 ? $# : 4 ))
ENGINE=(--device "$DEVICE" "$@")
IN=32
PORT_FILE="$(mktemp)"
"$BIN" serve --model "$MODEL" "${ENGINE[@]}" --host 127.0.0.1 --port 0 >"$PORT_FILE" 2>/dev/null &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -f "$PORT_FILE"' EXIT
for _ in $(seq 600); do grep -q "ready in" "$PORT_FILE" && break; sleep 0.1; done
PORT="$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$PORT_FILE" | head -1)"

direct() {  # batch output_len
  "$BIN" throughput --model "$MODEL" "${ENGINE[@]}" --num-seqs "$1" --min-input-len $IN --max-input-len $IN \
    --min-output-len "$2" --max-output-len "$2" --temperature 0 --iters 2 2>/dev/null |
    sed -n 's/.*Throughput: \([0-9.]*\)tok\/s/\1/p' | tail -1  # the warm run, as the server is warm
}
served() {  # batch output_len
  "$BIN" bench-serve --port "$PORT" --tokenizer "$MODEL" --num-prompts "$1" --max-concurrency "$1" \
    --random-input-len $IN --random-output-len "$2" 2>/dev/null | sed -n 's/^Output token throughput (tok\/s): *\([0-9.]*\)/\1/p'
}
served 4 16 >/dev/null  # warm-up
for batch in 1 64; do
  out=$(( batch == 1 ? 1000 : 256 ))
  ratios=()
  for run in $(seq "$RUNS"); do
    d=$(direct $batch $out); s=$(served $batch $out)
    r=$(python3 -c "print(f'{$s/$d:.3f}')")
    ratios+=("$r")
    echo "batch $batch run $run: direct $d tok/s, http $s tok/s, http/direct $r"
  done
  echo "batch $batch: median http/direct $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")"
done
