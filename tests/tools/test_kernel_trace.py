"""scripts/dev/kernel_trace.py on a timeline written by hand: steps cut at the kernels
launched outside graphs, the common shape kept, medians of spans, gaps and marginals."""
import csv
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("TLLM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "dev"))
import kernel_trace  # noqa: E402

US = 1000  # the trace is in ns


def write_trace(path, kernels):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["start", "end", "graph_node", "grid", "block", "name"])
        for k in kernels:
            w.writerow(k)


def decode_step(t0, b_end):
    """Three graph kernels (B starts before A ends: a PDL overlap), then two sampling kernels
    and the token's copy to the host."""
    return [
        (t0 + 0 * US, t0 + 10 * US, 11, "1x1x1", "448x1x1", "void embed<bf16>"),
        (t0 + 5 * US, t0 + b_end * US, 12, "224x1x1", "256x1x1", "void gemv<8; 4>"),
        (t0 + b_end * US, t0 + (b_end + 4) * US, 13, "9504x1x1", "128x1x1", "void gemv<4; 4>"),
        (t0 + 40 * US, t0 + 45 * US, 0, "19x1x1", "512x1x1", "sample_partials"),
        (t0 + 46 * US, t0 + 48 * US, 0, "1x1x1", "512x1x1", "sample_finish"),
        (t0 + 50 * US, t0 + 52 * US, 0, "copy", "DtoH", "memcpy 4 B"),
    ]


class KernelTraceTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "t.csv")
        kernels = []
        # a prefill step of another shape first (eager: not graph kernels) and one graph step of
        # another shape, then three decode steps 100 us apart whose middle kernel ends at 30,
        # 31 and 29 us
        kernels.append((0, 50 * US, 0, "64x1x1", "128x1x1", "prefill"))
        kernels += [(100 * US + i * US, 101 * US + i * US, 20 + i, "2x1x1", "64x1x1", "other") for i in range(3)]
        kernels.append((110 * US, 111 * US, 0, "19x1x1", "512x1x1", "sample_partials"))
        for j, b_end in enumerate([30, 31, 29]):
            kernels += decode_step(200 * US + 100 * US * j, b_end)
        kernels.reverse()  # the reader sorts by start
        write_trace(self.path, kernels)

    def tearDown(self):
        self.dir.cleanup()

    def test_steps_and_medians(self):
        rows = kernel_trace.read_trace(self.path)
        steps = kernel_trace.split_steps(rows)
        self.assertEqual([len(s) for s in steps], [3, 3, 3, 3])
        r = kernel_trace.summarize(steps)
        self.assertEqual((r["steps"], r["kept"], r["kernels"]), (4, 3, 3))
        self.assertAlmostEqual(r["span"], 34.0)  # first start -> last end, median over 33, 34, 35
        self.assertAlmostEqual(r["gap"], 65.5)  # steps 100 us apart end at 34 and 35: gaps 66, 65
        p = r["positions"]
        self.assertEqual([x["grid"] for x in p], ["1x1x1", "224x1x1", "9504x1x1"])
        self.assertAlmostEqual(p[0]["marg"], 10.0)
        self.assertAlmostEqual(p[1]["dur"], 25.0)
        self.assertAlmostEqual(p[1]["marg"], 20.0)  # end - previous end
        self.assertAlmostEqual(p[1]["lead"], -5.0)  # started 5 us before A ended
        self.assertAlmostEqual(p[2]["marg"], 4.0)
        self.assertAlmostEqual(p[2]["lead"], 0.0)

    def test_chain_between_graphs(self):
        # kernels only by default: the copies neither cut steps nor count as kernels
        self.assertFalse(any(k[2] == "copy" for k in kernel_trace.read_trace(self.path)))
        b = kernel_trace.between_steps(kernel_trace.read_trace(self.path, copies=True))
        # three gaps follow a graph run: "other" -> decode 0 (only sample_partials between them),
        # decode 0 -> 1 and 1 -> 2 (the common chain: partials, finish, copy)
        self.assertEqual((b["chains"], b["kept"]), (3, 2))
        self.assertEqual([x["name"] for x in b["items"]],
                         ["19x1x1 / 512x1x1  sample_partials", "1x1x1 / 512x1x1  sample_finish", "copy / DtoH  memcpy 4 B"])
        self.assertAlmostEqual(b["items"][0]["lead"], 5.5)  # graphs ending at 34 and 35, partials at 40
        self.assertAlmostEqual(b["items"][0]["dur"], 5.0)
        self.assertAlmostEqual(b["items"][1]["lead"], 1.0)
        self.assertAlmostEqual(b["items"][2]["lead"], 2.0)
        self.assertAlmostEqual(b["items"][2]["dur"], 2.0)
        self.assertAlmostEqual(b["next_lead"], 48.0)  # copy ends at 52, the next graph starts at 100
        self.assertAlmostEqual(b["total"], 65.5)

    def test_cut_at_regex(self):
        # cutting at the middle kernel too splits each decode step in two
        steps = kernel_trace.split_steps(kernel_trace.read_trace(self.path), r"224x1x1", min_kernels=1)
        self.assertEqual([len(s) for s in steps], [3, 1, 2, 1, 2, 1, 2])

    def test_command_line(self):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "dev", "kernel_trace.py"), self.path],
                             check=True, capture_output=True, text=True).stdout
        self.assertIn("4 steps; 3 with the common shape of 3 kernels", out)
        self.assertIn("median 34.0 us", out)
        self.assertIn("34.0  total", out)  # the marginals add up to the span


class EagerWindowTest(unittest.TestCase):
    """--eager: a warm-up prefill (long), a timed prefill, then a short decode step, each
    after the GPU idled 500 us; the timed prefill is the last window spanning at least half
    the longest."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "t.csv")

        def prefill(t0, gemm_us):
            return [
                (t0, t0 + 2 * US, 0, "copy", "HtoD", "memcpy 64 B"),
                (t0 + 3 * US, t0 + (3 + gemm_us) * US, 0, "2x66x1", "384x1x1", "nvjet_gemm"),
                # the norm starts 1 us before the GEMM ends (PDL): no gap
                (t0 + (2 + gemm_us) * US, t0 + (12 + gemm_us) * US, 0, "4096x1x1", "256x1x1",
                 "void tllm::cuda::(anonymous namespace)::rms_norm<float; true>(float const*)"),
                (t0 + (14 + gemm_us) * US, t0 + (14 + 2 * gemm_us) * US, 0, "2x66x1", "384x1x1", "nvjet_gemm"),
                (t0 + (15 + 2 * gemm_us) * US, t0 + (35 + 2 * gemm_us) * US, 0, "4096x1x1", "256x1x1",
                 "void tllm::cuda::(anonymous namespace)::rms_norm<float; false>(float const*)"),
            ]

        kernels = prefill(0, 300)  # ends at 635 us
        kernels += prefill(1200 * US, 200)  # 1,200 .. 1,635
        kernels += [(2200 * US, 2210 * US, 7, "224x1x1", "256x1x1", "gemv")]
        write_trace(self.path, kernels)

    def tearDown(self):
        self.dir.cleanup()

    def test_windows_and_totals(self):
        windows = kernel_trace.eager_windows(kernel_trace.read_trace(self.path, copies=True), 100.0)
        self.assertEqual([len(w) for w in windows], [5, 5, 1])
        w = kernel_trace.last_long_window(windows)
        self.assertEqual(w[0][0], 1200 * US)
        r = kernel_trace.eager_summary(w)
        self.assertAlmostEqual(r["span"], 435.0)
        # 1 us before the first GEMM, 2 before the second, 1 before the second norm; none
        # before the first norm, which started while the GEMM ran
        self.assertAlmostEqual(r["gaps"], 4.0)
        k = r["kernels"]
        self.assertEqual(k["nvjet_gemm 2x66x1"][:2], [400.0, 2])
        self.assertEqual(k["rms_norm 4096x1x1"][:2], [30.0, 2])  # the two instantiations under one name
        self.assertAlmostEqual(k["rms_norm 4096x1x1"][2], 15.0)

    def test_command_line(self):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "dev", "kernel_trace.py"), self.path, "--eager"],
                             check=True, capture_output=True, text=True).stdout
        self.assertIn("3 windows; the last long one has 5 items", out)
        self.assertIn("span 435.0 us, gaps between items 4.0 us", out)


if __name__ == "__main__":
    unittest.main()
