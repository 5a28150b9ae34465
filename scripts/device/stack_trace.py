#!/usr/bin/env python3
"""Summarise a TLLM_STACK_TRACE file of the decoder stack kernel (decoder_stack.cu).

Lines "step event block ns": globaltimer of block `block` at event `event` of the traced
layers (program order: barrier arrival A, barrier pass W, GEMV input ready P, thread 0's GEMV
loop done E, the block's loops done S, its epilogue done X, attention done D). Prints, per event, the min / median / max over blocks in us after the
step's first event (median over the traced steps), then per phase: how long after the last
arrival the blocks pass the barrier, input-ready and loop times, and the spread of arrivals.
Usage: stack_trace.py FILE (the layout, dense or MoE, is told by the number of events; a
trace of an experimental build with other events is printed by event number)
"""
import statistics as st
import sys
from collections import defaultdict

G = ["P", "E", "S", "X"]  # a GEMV: input ready, thread 0's loop done, all warps' loops done, epilogue done
DENSE = (["qkv.A", "qkv.W"] + [f"qkv.{e}" for e in G] + ["attn.A", "attn.W", "attn.D", "o.A", "o.W"] +
         [f"o.{e}" for e in G] + ["gu.A", "gu.W"] + [f"gu.{e}" for e in G] + ["down.A", "down.W"] +
         [f"down.{e}" for e in G])
MOE = (["qkv.A", "qkv.W"] + [f"qkv.{e}" for e in G] + ["attn.A", "attn.W", "attn.D", "o.A", "o.W"] +
       [f"o.{e}" for e in G] + ["router.A", "router.W"] + [f"router.{e}" for e in G] +
       ["gu.A", "gu.W", "gu.route", "gu.E", "gu.S", "gu.X", "down.A", "down.W"] + [f"down.{e}" for e in G])
# Run 260's traced build with two more events in the MoE gate|up phase: after the routing
# (rt) and after the first tiles and the scales were requested (iss).
MOE_ROUTE = (["qkv.A", "qkv.W"] + [f"qkv.{e}" for e in G] + ["attn.A", "attn.W", "attn.D", "o.A", "o.W"] +
             [f"o.{e}" for e in G] + ["router.A", "router.W"] + [f"router.{e}" for e in G] +
             ["gu.A", "gu.W", "gu.rt", "gu.iss", "gu.route", "gu.E", "gu.S", "gu.X", "down.A", "down.W"] +
             [f"down.{e}" for e in G])
# Traces of session 10's runs 75-76 (before S and X existed): input ready, loop done.
DENSE_V1 = ["qkv.A", "qkv.W", "qkv.P", "qkv.E", "attn.A", "attn.W", "attn.D", "o.A", "o.W", "o.P", "o.E",
            "gu.A", "gu.W", "gu.P", "gu.E", "down.A", "down.W", "down.P", "down.E"]
MOE_V1 = ["qkv.A", "qkv.W", "qkv.P", "qkv.E", "attn.A", "attn.W", "attn.D", "o.A", "o.W", "o.P", "o.E",
          "router.A", "router.W", "router.P", "router.E", "gu.A", "gu.W", "gu.route", "gu.E",
          "down.A", "down.W", "down.P", "down.E"]
# Events of two traced layers (the second layer's last phase ends at the next layer's first
# arrival, which is not traced) -> labels of one layer.
LAYOUTS = {2 * len(x): x for x in (DENSE, MOE, DENSE_V1, MOE_V1, MOE_ROUTE)}


def main():
    path = sys.argv[1]

    t = defaultdict(dict)  # (step, event) -> {block: ns}
    for line in open(path):
        if line.startswith("#"):
            continue
        s, k, b, ns = line.split()
        t[(int(s), int(k))][int(b)] = int(ns)
    steps = sorted({s for s, _ in t})
    events = sorted({k for _, k in t})
    names = LAYOUTS.get(len(events))
    if names is None:
        print(f"{path}: {len(events)} events per step, not a known layout ({sorted(LAYOUTS)}): by number")
        names = [f"e{k}" for k in events]
    rel = defaultdict(lambda: defaultdict(list))  # event -> stat -> [per step]
    for s in steps:
        t0 = min(t[(s, 0)].values())
        for k in events:
            v = sorted((x - t0) / 1e3 for x in t[(s, k)].values())
            if not v:
                continue
            rel[k]["min"].append(v[0])
            rel[k]["med"].append(v[len(v) // 2])
            rel[k]["max"].append(v[-1])
            rel[k]["p90"].append(v[int(0.9 * (len(v) - 1))])
    print(f"{len(steps)} steps, {len(events)} events, us after the step's first event (median over steps)")
    print(f"{'event':<12}{'min':>8}{'med':>8}{'p90':>8}{'max':>8}")
    m = {}
    for k in events:
        lab = names[k % len(names)] + ("" if k < len(names) else "'")
        m[k] = {q: st.median(rel[k][q]) for q in ("min", "med", "p90", "max")}
        print(f"{lab:<12}{m[k]['min']:8.2f}{m[k]['med']:8.2f}{m[k]['p90']:8.2f}{m[k]['max']:8.2f}")
    print("\nper barrier: arrivals spread (max - median), pass after the last arrival (min / max W - max A)")
    for k in events:
        lab = names[k % len(names)]
        if lab.endswith(".A") and k + 1 in m:
            a, w = m[k], m[k + 1]
            print(f"{lab[:-2]:<8} arrivals med->max {a['max'] - a['med']:6.2f}  pass {w['min'] - a['max']:6.2f} .. "
                  f"{w['max'] - a['max']:6.2f}")


if __name__ == "__main__":
    main()
