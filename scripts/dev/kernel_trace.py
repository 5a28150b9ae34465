#!/usr/bin/env python3
"""Reads the kernel timeline that bench/cuda/kernel_trace.cpp writes and says where a step's time goes.

  kernel_trace.py TRACE.csv [--step REGEX] [--min-kernels N] [--top N]

Kernels launched from CUDA graphs are cut into steps: a step is a run of graph kernels
between kernels launched outside graphs (a decode step's graph, then its sampling
kernels), optionally also cut at each kernel matching --step. Steps with
the most common kernel count are kept (the same graph), and for each position in the step
the medians over steps are printed: the kernel's own duration (end - start; with PDL a
kernel starts while its predecessor runs, so this overlaps) and its marginal time, end -
previous end, which is what the kernel adds to the chain. Positions are then summed by
kernel name.
"""
import argparse
import collections
import csv
import re
import statistics
import sys


def short(name, width=70):
    name = re.sub(r"tllm::cuda::(\(anonymous namespace\)::)?", "", name)
    return name if len(name) <= width else name[: width - 3] + "..."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--step", default="", help="also cut at kernels matching this regex over 'GRID / BLOCK  NAME'")
    ap.add_argument("--min-kernels", type=int, default=3)
    ap.add_argument("--top", type=int, default=400, help="positions printed at most")
    a = ap.parse_args()

    rows = []
    with open(a.trace) as f:
        for r in csv.DictReader(f):
            rows.append((int(r["start"]), int(r["end"]), r["grid"], r["block"], r["name"], r["graph_node"] != "0"))
    rows.sort()
    if not any(k[5] for k in rows):
        sys.exit("no graph kernels in the trace")
    # A step: a run of graph kernels, cut where a kernel launched outside graphs (sampling)
    # comes between them, or at each kernel matching --step.
    step_re = re.compile(a.step) if a.step else None
    steps, cur = [], []
    for k in rows:
        starts = (not k[5]) or (step_re is not None and step_re.search(f"{k[2]} / {k[3]}  {k[4]}"))
        if starts and cur:
            steps.append(cur)
            cur = []
        if k[5]:
            cur.append(k[:5])
    if cur:
        steps.append(cur)
    steps = [s for s in steps if len(s) >= a.min_kernels]
    counts = collections.Counter(len(s) for s in steps)
    n = counts.most_common(1)[0][0]
    shapes = collections.Counter(tuple(k[4] for k in s) for s in steps if len(s) == n)
    names0 = shapes.most_common(1)[0][0]
    keep = [s for s in steps if tuple(k[4] for k in s) == names0]
    print(f"{len(steps)} steps; {len(keep)} with the common shape of {n} kernels")
    spans = [s[-1][1] - s[0][0] for s in keep]
    print(f"step span (first start -> last end): median {statistics.median(spans) / 1e3:.1f} us")
    gaps = [keep[i + 1][0][0] - keep[i][-1][1] for i in range(len(keep) - 1)]
    if gaps:
        print(f"between steps (last end -> next first start): median {statistics.median(gaps) / 1e3:.1f} us")
    print()
    print(f"{'pos':>4} {'dur us':>8} {'marg us':>8} {'start-prev end':>14}  grid / block  name")
    by_name = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for i in range(n):
        dur = statistics.median(s[i][1] - s[i][0] for s in keep) / 1e3
        if i == 0:
            marg = dur
            lead = 0.0
        else:
            marg = statistics.median(s[i][1] - s[i - 1][1] for s in keep) / 1e3
            lead = statistics.median(s[i][0] - s[i - 1][1] for s in keep) / 1e3
        k = keep[0][i]
        if i < a.top:
            print(f"{i:>4} {dur:8.2f} {marg:8.2f} {lead:14.2f}  {k[2]} / {k[3]}  {short(k[4])}")
        e = by_name[f"{k[2]} / {k[3]}  {short(k[4], 200)}"]
        e[0] += dur
        e[1] += marg
        e[2] += 1
    print()
    print("by kernel (grid / block, name): count, sum of durations, sum of marginals (us per step)")
    total = 0.0
    for name, (d, m, c) in sorted(by_name.items(), key=lambda kv: -kv[1][1]):
        print(f"{c:5d} {d:10.1f} {m:10.1f}  {short(name, 120)}")
        total += m
    print(f"{'':5} {'':10} {total:10.1f}  total")


if __name__ == "__main__":
    main()
