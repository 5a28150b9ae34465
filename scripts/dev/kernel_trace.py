#!/usr/bin/env python3
"""Reads the kernel timeline that bench/cuda/kernel_trace.cpp writes and says where a step's time goes.

  kernel_trace.py TRACE.csv [--step REGEX] [--min-kernels N] [--top N]
  kernel_trace.py TRACE.csv --eager [--max-gap US]

Kernels launched from CUDA graphs are cut into steps: a step is a run of graph kernels
between kernels launched outside graphs (a decode step's graph, then its sampling
kernels), optionally also cut at each kernel matching --step. Steps with
the most common kernel count are kept (the same graph), and for each position in the step
the medians over steps are printed: the kernel's own duration (end - start; with PDL a
kernel starts while its predecessor runs, so this overlaps) and its marginal time, end -
previous end, which is what the kernel adds to the chain. Positions are then summed by
kernel name. Last, the chain between one step's graph and the next: the kernels and copies
(lines with grid "copy") outside graphs, each with its median lead (start - previous end)
and duration, which is where the GPU waits for sampling, the token's copy to the host and the
next step's metadata.

--eager reads a timeline without graphs (a prefill, launched kernel by kernel): the trace is
cut into windows where the GPU idles longer than --max-gap us (between two requests: the
host prepares the next batch), and for the last window that spans at least half as long as
the longest (the bench's last timed prefill: its warm-up, with the GEMM autotuner, is the
longest) every kernel name's total, count and median duration are printed, with the
window's span and the sum of the gaps between its items (kernel boundaries, copies).
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


def read_trace(path, copies=False):
    """(start, end, grid, block, name, in_graph) per kernel, sorted by start; with copies,
    memcpy / memset lines (grid "copy") too."""
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["grid"] == "copy" and not copies:
                continue
            rows.append((int(r["start"]), int(r["end"]), r["grid"], r["block"], r["name"], r["graph_node"] != "0"))
    rows.sort()
    return rows


def split_steps(rows, step_regex="", min_kernels=3):
    """Runs of graph kernels, cut where a kernel launched outside graphs (sampling) comes
    between them, or at each kernel matching step_regex; each kernel as (start, end, grid,
    block, name)."""
    step_re = re.compile(step_regex) if step_regex else None
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
    return [s for s in steps if len(s) >= min_kernels]


def summarize(steps):
    """Medians (us) over the steps of the most common shape: the span, the gap to the next
    step, and per position the duration, the marginal (end - previous end) and the lead
    (start - previous end)."""
    n = collections.Counter(len(s) for s in steps).most_common(1)[0][0]
    shapes = collections.Counter(tuple(k[2:5] for k in s) for s in steps if len(s) == n)
    shape = shapes.most_common(1)[0][0]
    keep = [s for s in steps if tuple(k[2:5] for k in s) == shape]
    med = lambda xs: statistics.median(xs) / 1e3
    out = {"steps": len(steps), "kept": len(keep), "kernels": n,
           "span": med(s[-1][1] - s[0][0] for s in keep), "gap": None, "positions": []}
    gaps = [keep[i + 1][0][0] - keep[i][-1][1] for i in range(len(keep) - 1)]
    if gaps:
        out["gap"] = med(gaps)
    for i in range(n):
        dur = med(s[i][1] - s[i][0] for s in keep)
        marg = dur if i == 0 else med(s[i][1] - s[i - 1][1] for s in keep)
        lead = 0.0 if i == 0 else med(s[i][0] - s[i - 1][1] for s in keep)
        grid, block, name = shape[i]
        out["positions"].append({"dur": dur, "marg": marg, "lead": lead, "grid": grid, "block": block, "name": name})
    return out


def between_steps(rows, min_kernels=3):
    """The chain outside graphs from the end of one graph run (of at least min_kernels
    kernels) to the start of the next: for the most common sequence of items, per item the
    median lead (start - end of the item before; the graph's last kernel for the first) and
    duration (us), then the lead of the next graph. rows from read_trace(copies=True)."""
    chains, run, tail = [], [], None
    for k in rows:
        if k[5]:
            if tail is not None and len(run) >= min_kernels:
                chains.append((run[-1][1], tail, k[0]))
            if tail is not None:
                run, tail = [], None
            run.append(k)
        elif run:
            if tail is None:
                tail = []
            tail.append(k)
    if not chains:
        return None
    common = collections.Counter(tuple(f"{k[2]} / {k[3]}  {k[4]}" for k in t) for _, t, _ in chains).most_common(1)[0][0]
    keep = [c for c in chains if tuple(f"{k[2]} / {k[3]}  {k[4]}" for k in c[1]) == common]
    med = lambda xs: statistics.median(xs) / 1e3
    items = []
    for i, name in enumerate(common):
        prev_end = (lambda c: c[0]) if i == 0 else (lambda c, i=i: c[1][i - 1][1])
        items.append({"name": name, "lead": med(c[1][i][0] - prev_end(c) for c in keep),
                      "dur": med(c[1][i][1] - c[1][i][0] for c in keep)})
    last_end = (lambda c: c[1][-1][1]) if common else (lambda c: c[0])
    return {"chains": len(chains), "kept": len(keep), "items": items,
            "next_lead": med(c[2] - last_end(c) for c in keep), "total": med(c[2] - c[0] for c in keep)}


def eager_windows(rows, max_gap_us=100.0):
    """rows (read_trace with copies) cut where the next item starts more than max_gap_us
    after the latest end so far; each window a list of (start, end, grid, block, name)."""
    windows, cur, last_end = [], [], None
    for k in rows:
        if cur and k[0] - last_end > max_gap_us * 1e3:
            windows.append(cur)
            cur = []
        last_end = k[1] if not cur else max(last_end, k[1])
        cur.append(k[:5])
    if cur:
        windows.append(cur)
    return windows


def eager_summary(window):
    """Per name (grid / block  name; a template's arguments dropped): [total us, count,
    median us]; the span and the summed gaps (start - latest end before it, where > 0)."""
    by = collections.defaultdict(list)
    for k in window:
        base = re.sub(r"<.*", "", k[4]).removeprefix("void ")
        base = re.sub(r"^(\w+::|\(anonymous namespace\)::)+", "", base)
        by[f"{base} {k[2]}"].append((k[1] - k[0]) / 1e3)
    gaps, last_end = 0.0, window[0][1]
    for k in window[1:]:
        gaps += max(0, k[0] - last_end) / 1e3
        last_end = max(last_end, k[1])
    kernels = {n: [sum(d), len(d), statistics.median(d)] for n, d in by.items()}
    return {"span": (max(k[1] for k in window) - window[0][0]) / 1e3, "gaps": gaps, "items": len(window),
            "kernels": kernels}


def last_long_window(windows):
    """The last window spanning at least half as long as the longest."""
    span = lambda w: max(k[1] for k in w) - w[0][0]
    longest = max(span(w) for w in windows)
    return [w for w in windows if 2 * span(w) >= longest][-1]


def main_eager(path, max_gap_us):
    windows = eager_windows(read_trace(path, copies=True), max_gap_us)
    w = last_long_window(windows)
    r = eager_summary(w)
    print(f"{len(windows)} windows; the last long one has {len(w)} items")
    print(f"span {r['span']:.1f} us, gaps between items {r['gaps']:.1f} us")
    print(f"{'total us':>10} {'count':>5} {'median us':>9}  name grid")
    for name, (tot, n, med) in sorted(r["kernels"].items(), key=lambda kv: -kv[1][0]):
        print(f"{tot:10.1f} {n:5d} {med:9.1f}  {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--step", default="", help="also cut at kernels matching this regex over 'GRID / BLOCK  NAME'")
    ap.add_argument("--min-kernels", type=int, default=3)
    ap.add_argument("--top", type=int, default=400, help="positions printed at most")
    ap.add_argument("--eager", action="store_true", help="a timeline without graphs (a prefill): see above")
    ap.add_argument("--max-gap", type=float, default=100.0, help="--eager: idle us that end a window")
    a = ap.parse_args()
    if a.eager:
        main_eager(a.trace, a.max_gap)
        return

    rows = read_trace(a.trace)
    if not any(k[5] for k in rows):
        sys.exit("no graph kernels in the trace")
    steps = split_steps(rows, a.step, a.min_kernels)
    if not steps:
        sys.exit(f"no step of at least {a.min_kernels} graph kernels")
    r = summarize(steps)
    print(f"{r['steps']} steps; {r['kept']} with the common shape of {r['kernels']} kernels")
    print(f"step span (first start -> last end): median {r['span']:.1f} us")
    if r["gap"] is not None:
        print(f"between steps (last end -> next first start): median {r['gap']:.1f} us")
    print()
    print(f"{'pos':>4} {'dur us':>8} {'marg us':>8} {'start-prev end':>14}  grid / block  name")
    by_name = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for i, p in enumerate(r["positions"]):
        if i < a.top:
            print(f"{i:>4} {p['dur']:8.2f} {p['marg']:8.2f} {p['lead']:14.2f}  {p['grid']} / {p['block']}  {short(p['name'])}")
        e = by_name[f"{p['grid']} / {p['block']}  {short(p['name'], 200)}"]
        e[0] += p["dur"]
        e[1] += p["marg"]
        e[2] += 1
    print()
    print("by kernel (grid / block, name): count, sum of durations, sum of marginals (us per step)")
    total = 0.0
    for name, (d, m, c) in sorted(by_name.items(), key=lambda kv: -kv[1][1]):
        print(f"{c:5d} {d:10.1f} {m:10.1f}  {short(name, 120)}")
        total += m
    print(f"{'':5} {'':10} {total:10.1f}  total")

    b = between_steps(read_trace(a.trace, copies=True), a.min_kernels)
    if b:
        print()
        print(f"between graphs ({b['kept']} of {b['chains']} gaps with the common chain): median {b['total']:.1f} us")
        print(f"{'lead us':>8} {'dur us':>8}  item")
        for it in b["items"]:
            print(f"{it['lead']:8.2f} {it['dur']:8.2f}  {short(it['name'], 120)}")
        print(f"{b['next_lead']:8.2f} {'':8}  next graph")


if __name__ == "__main__":
    main()
