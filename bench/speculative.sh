#!/usr/bin/env bash
# Speculative decoding on real text: `tinyllm generate` at batch 1 with and without a draft
# model, alternated in rounds over a few prompts, greedy and sampled (seeded, so both runs of a
# pair produce the same tokens). Prints, per temperature and k, the median decode tok/s, the
# speedup over plain decoding, the drafts kept, the tokens per verification step (the speedup
# a free draft and a verification step as cheap as a decode step would give: the limit) and
# the speedup's ratio to it.
#
#   bash bench/speculative.sh                      # the shipped demo model and its draft, CPU
#   MODEL=DIR DRAFT=DIR DEVICE=cuda KS="3 5" bash bench/speculative.sh
set -euo pipefail
BIN=${BIN:-build/src/cli/tinyllm}
MODEL=${MODEL:-models/tiny-qwen2-demo}
DRAFT=${DRAFT:-models/tiny-qwen2-demo-draft}
DEVICE=${DEVICE:-cpu}
KS=${KS:-"2 3 4 6"}
TEMPS=${TEMPS:-"0 0.8"}
ROUNDS=${ROUNDS:-5}
TOKENS=${TOKENS:-256}
EXTRA=${EXTRA:-}
PROMPTS=("And the LORD said unto Moses," "A computer" "In the beginning God created the heaven" "Blessed are the")

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# One run: prints "temp k tok_s drafts accepted" (k = 0: plain decoding).
run() {
  local temp=$1 k=$2 prompt=$3 spec=()
  [ "$k" -gt 0 ] && spec=(--speculative-model "$DRAFT" --num-speculative-tokens "$k")
  local out
  out=$("$BIN" generate --model "$MODEL" --device "$DEVICE" --prompt "$prompt" --max-tokens "$TOKENS" --ignore-eos \
    --temperature "$temp" --top-p 0.95 --seed 1 --kv-cache-memory 256MiB "${spec[@]}" $EXTRA 2>&1 >/dev/null)
  local tps drafted accepted
  tps=$(sed -n 's/.*decode \([0-9.]*\) tok\/s.*/\1/p' <<<"$out")
  accepted=$(sed -n 's/.*speculative decoding: \([0-9]*\) of \([0-9]*\) drafts.*/\1/p' <<<"$out")
  drafted=$(sed -n 's/.*speculative decoding: \([0-9]*\) of \([0-9]*\) drafts.*/\2/p' <<<"$out")
  local steps
  steps=$(sed -n 's/.*, \([0-9.]*\) tokens per verification.*/\1/p' <<<"$out")
  echo "$temp $k $tps ${drafted:-0} ${accepted:-0} ${steps:-1}" >>"$log"
}

echo "# $(date -u +%F) $(uname -n), $("$BIN" generate --model "$MODEL" --device "$DEVICE" --prompt x --max-tokens 1 2>&1 | sed -n 's/.* on \(.*\) in [0-9.]* s:.*/\1/p' | head -1)"
echo "# model $MODEL, draft $DRAFT, $TOKENS tokens per run, ${#PROMPTS[@]} prompts x $ROUNDS rounds, top-p 0.95"
for round in $(seq "$ROUNDS"); do
  for temp in $TEMPS; do
    for prompt in "${PROMPTS[@]}"; do
      run "$temp" 0 "$prompt"
      for k in $KS; do run "$temp" "$k" "$prompt"; done
    done
  done
done

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
printf "| temperature | k | decode tok/s, median (min-max) | speedup | drafts kept | tokens per verification (limit) | speedup / limit |\n"
printf "|---|---|---|---|---|---|---|\n"
for temp in $TEMPS; do
  plain=$(awk -v t="$temp" '$1 == t && $2 == 0 {print $3}' "$log" | median)
  for k in 0 $KS; do
    vals=$(awk -v t="$temp" -v k="$k" '$1 == t && $2 == k {print $3}' "$log" | sort -g)
    med=$(median <<<"$vals")
    lo=$(head -1 <<<"$vals")
    hi=$(tail -1 <<<"$vals")
    awk -v t="$temp" -v k="$k" -v plain="$plain" -v med="$med" -v lo="$lo" -v hi="$hi" '
      $1 == t && $2 == k { n++; d += $4; a += $5; s += $6 }
      END {
        if (k == 0) { printf "| %s | plain | %.0f (%.0f-%.0f) | 1.00x | | | |\n", t, med, lo, hi; exit }
        printf "| %s | %d | %.0f (%.0f-%.0f) | %.2fx | %.1f%% | %.2f | %.0f%% |\n", t, k, med, lo, hi, med / plain,
               (d > 0 ? 100 * a / d : 0), s / n, 100 * (med / plain) / (s / n)
      }' "$log"
  done
done
