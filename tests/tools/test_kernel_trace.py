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
    """Three graph kernels (B starts before A ends: a PDL overlap), then two sampling kernels."""
    return [
        (t0 + 0 * US, t0 + 10 * US, 11, "1x1x1", "448x1x1", "void embed<bf16>"),
        (t0 + 5 * US, t0 + b_end * US, 12, "224x1x1", "256x1x1", "void gemv<8; 4>"),
        (t0 + b_end * US, t0 + (b_end + 4) * US, 13, "9504x1x1", "128x1x1", "void gemv<4; 4>"),
        (t0 + 40 * US, t0 + 45 * US, 0, "19x1x1", "512x1x1", "sample_partials"),
        (t0 + 46 * US, t0 + 48 * US, 0, "1x1x1", "512x1x1", "sample_finish"),
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


if __name__ == "__main__":
    unittest.main()
