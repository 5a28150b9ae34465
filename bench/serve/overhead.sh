#!/usr/bin/env bash
# Server overhead: output tokens/s of the engine driven directly (`tinyllm throughput`)
# vs the same workload through HTTP streaming (`tinyllm serve` + `tinyllm bench-serve`),
# at batch 1 and at 64 concurrent requests. Runs alternate (the machines are noisy);
# prints one line per run and the median ratio per batch size.
# Each line also gives the CPU seconds (user+sys) spent: by `throughput` (direct), and in
# the served run by the server process and by the bench-serve client. On a machine with
# few cores the client competes with the engine for them, so its share is part of the
# measured overhead; server_cpu - direct_cpu is what serving itself costs.
# Usage: bench/serve/overhead.sh TINYLLM_BINARY MODEL_DIR [DEVICE=cpu] [RUNS=3] [BATCHES="1 64"] [extra engine flags...]
set -euo pipefail
BIN="$1"; MODEL="$2"; DEVICE="${3:-cpu}"; RUNS="${4:-3}"; BATCHES="${5:-1 64}"; shift $(( $# < 5 ? $# : 5 ))
ENGINE=(--device "$DEVICE" "$@")
IN=32
PORT_FILE="$(mktemp)"; TIME_FILE="$(mktemp)"
"$BIN" serve --model "$MODEL" "${ENGINE[@]}" --host 127.0.0.1 --port 0 >"$PORT_FILE" 2>/dev/null &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -f "$PORT_FILE" "$TIME_FILE"' EXIT
for _ in $(seq 600); do grep -q "ready in" "$PORT_FILE" && break; sleep 0.1; done
PORT="$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$PORT_FILE" | head -1)"
TICK="$(getconf CLK_TCK)"

server_cpu() { awk -v t="$TICK" '{ sub(/.*\) /, ""); print ($12 + $13) / t }' "/proc/$SERVER/stat"; }
timed() {  # CPU seconds into TIME_FILE where /usr/bin/time exists (0 0 otherwise)
  if [[ -x /usr/bin/time ]]; then /usr/bin/time -f "%U %S" -o "$TIME_FILE" "$@"; else echo "0 0" >"$TIME_FILE"; "$@"; fi
}
cpu_of_last() { awk '{ print $1 + $2 }' "$TIME_FILE"; }

direct() {  # batch output_len
  timed "$BIN" throughput --model "$MODEL" "${ENGINE[@]}" --num-seqs "$1" --min-input-len $IN --max-input-len $IN \
    --min-output-len "$2" --max-output-len "$2" --temperature 0 --iters 2 2>/dev/null |
    sed -n 's/.*Throughput: \([0-9.]*\)tok\/s/\1/p' | tail -1  # the warm run, as the server is warm
}
served() {  # batch output_len
  timed "$BIN" bench-serve --port "$PORT" --tokenizer "$MODEL" --num-prompts "$1" --max-concurrency "$1" \
    --random-input-len $IN --random-output-len "$2" 2>/dev/null | sed -n 's/^Output token throughput (tok\/s): *\([0-9.]*\)/\1/p'
}
for batch in $BATCHES; do
  out=1000  # tokens per request: batch 64 then runs ~1.5 s on a GPU, long against request set-up
  # The direct figure is `throughput`'s warm second iteration; warm the server the same way
  # (CUDA graphs of this batch size for every context bucket the run reaches, KV pages).
  served $batch $out >/dev/null
  ratios=()
  for run in $(seq "$RUNS"); do
    d=$(direct $batch $out); dcpu=$(cpu_of_last)
    s0=$(server_cpu); s=$(served $batch $out); ccpu=$(cpu_of_last); s1=$(server_cpu)
    r=$(python3 -c "print(f'{$s/$d:.3f}')")
    ratios+=("$r")
    echo "batch $batch run $run: direct $d tok/s, http $s tok/s, http/direct $r;" \
         "cpu s: direct $dcpu (2 iters), server $(python3 -c "print(f'{$s1-$s0:.2f}')"), client $ccpu; load $(cut -d' ' -f1 /proc/loadavg)"
  done
  echo "batch $batch: median http/direct $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")"
done
