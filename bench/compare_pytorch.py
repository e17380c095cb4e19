#!/usr/bin/python3
"""tinycnn vs PyTorch: training step (forward + backward + Adam) and inference at batch 32, 3x150x150.

Run with the system Python (Debian python3-torch 1.13):

    /usr/bin/python3 bench/compare_pytorch.py --build build-perf [--models baseline,model2,model3,model004]
                                              [--reps 3] [--steps 5] [--threads 2] [--torch-jemalloc]

--torch-jemalloc runs the PyTorch side with Debian's jemalloc (libjemalloc2) preloaded and told to keep
freed memory (MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1). PyTorch's CPU tensors come from
malloc, and glibc returns every block above 32 MiB to the kernel when it is freed, so each step
faults in its large activations again; on a VM where a page fault costs ~10 us (92 MB touched in
250 ms) that, not the arithmetic, dominates PyTorch's time (model3: conv1 362 ms, its ReLU 173 ms,
against 86 and 3 ms with jemalloc). tinycnn reuses its buffers, so it is unaffected either way.

PyTorch side: one subprocess per model (so ru_maxrss is that model's peak), torch.set_num_threads(THREADS),
one warm-up step, then STEPS timed steps; images/s = batch / median step time. Each subprocess is
repeated REPS times and the median taken.
tinycnn side, in the same run: `intel_scenes bench --model NAME --batch 32 --steps STEPS --threads THREADS`
(its last two lines: `train images/s: X`, `infer images/s: Y`, means over STEPS steps after a warm-up),
REPS processes, medians; peak RSS from /usr/bin/time -v (or the child's ru_maxrss when time(1) is
missing). Without the intel_scenes binary it falls back to `tinycnn_bench --benchmark_filter=models/...`
(model3 and model004 only) and says so. The tinycnn kernels used there are validated against their
references by bench_conv / bench_gemm before they are timed; this script compares whole models only.
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

BATCH = 32
CLASSES = 6


def build_torch_model(name):
    import torch.nn as nn

    def conv(cin, cout, pad):
        return [nn.Conv2d(cin, cout, 3, padding=pad), nn.ReLU()]

    if name == "baseline":
        layers = [nn.Flatten(), nn.Linear(3 * 150 * 150, 128), nn.ReLU(), nn.Linear(128, CLASSES)]
    elif name == "model2":
        layers = (conv(3, 32, 0) + [nn.MaxPool2d(3)] + conv(32, 64, 0) + [nn.MaxPool2d(2)] + conv(64, 128, 0) +
                  [nn.Flatten(), nn.Linear(128 * 21 * 21, 128), nn.ReLU(), nn.Linear(128, CLASSES)])
    elif name == "model3":
        layers = (conv(3, 32, 1) + [nn.MaxPool2d(3)] + conv(32, 64, 1) + [nn.MaxPool2d(2)] + conv(64, 128, 1) +
                  [nn.MaxPool2d(2)] + conv(128, 256, 1) + [nn.MaxPool2d(2)] + conv(256, 512, 1) + conv(512, 1024, 1) +
                  [nn.Flatten(), nn.Linear(1024 * 6 * 6, 1024), nn.ReLU(), nn.Linear(1024, CLASSES)])
    elif name == "model004":
        layers, cin = [], 3
        for f in (32, 64, 128, 256):
            layers += conv(cin, f, 0) + [nn.MaxPool2d(2), nn.BatchNorm2d(f), nn.Dropout(0.2)]
            cin = f
        layers += [nn.Flatten()]
        width = 256 * 7 * 7
        for _ in range(4):
            layers += [nn.Linear(width, 128), nn.ReLU(), nn.Dropout(0.2)]
            width = 128
        layers += [nn.Linear(128, CLASSES)]
    else:
        raise SystemExit("unknown model " + name)
    return nn.Sequential(*layers)


def torch_child(name, steps, threads):
    """Runs in a subprocess: prints one JSON line with train/infer images/s and peak RSS."""
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_torch_model(name)
    x = torch.rand(BATCH, 3, 150, 150)
    y = torch.arange(BATCH) % CLASSES
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def timed(fn):
        fn()  # warm-up
        t = []
        for _ in range(steps):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        return BATCH / statistics.median(t)

    model.train()
    train = timed(train_step)
    model.eval()
    with torch.no_grad():
        infer = timed(lambda: model(x))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"train": train, "infer": infer, "rss_mib": rss}))


JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def run_torch(name, steps, threads, jemalloc=False):
    env = dict(os.environ)
    if jemalloc:
        env["LD_PRELOAD"] = JEMALLOC
        env["MALLOC_CONF"] = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
    out = subprocess.run([sys.executable, __file__, "--torch-child", name, "--steps", str(steps), "--threads",
                          str(threads)], check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def with_time(cmd):
    """Runs cmd (under /usr/bin/time -v when present); returns (stdout, peak RSS MiB or None)."""
    if os.path.exists("/usr/bin/time"):
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
        if p.returncode != 0:
            raise SystemExit("failed: " + " ".join(cmd) + "\n" + p.stderr[-2000:])
        return p.stdout, (int(m.group(1)) / 1024.0 if m else None)
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return p.stdout, None


def run_tinycnn(build, name, steps, threads):
    exe = os.path.join(build, "examples", "intel_scenes", "intel_scenes")
    env_threads = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if os.path.exists(exe):
        out, rss = with_time([exe, "bench", "--model", name, "--batch", str(BATCH), "--steps", str(steps),
                              "--threads", str(threads)])
        tr = float(re.search(r"train images/s: ([0-9.]+)", out).group(1))
        inf = float(re.search(r"infer images/s: ([0-9.]+)", out).group(1))
        return {"train": tr, "infer": inf, "rss_mib": rss, "source": "intel_scenes bench"}
    bench = os.path.join(build, "bench", "tinycnn_bench")
    if name not in ("model3", "model004") or not os.path.exists(bench):
        return None
    r = {"source": "tinycnn_bench models/ (intel_scenes not built)"}
    for kind in ("train", "infer"):
        p = subprocess.run([bench, "--benchmark_filter=^models/%s/%s" % (name, kind), "--benchmark_format=json",
                            "--benchmark_min_time=%d" % steps], capture_output=True, text=True, check=True,
                           env=env_threads)
        b = json.loads(p.stdout)["benchmarks"][0]
        r[kind] = b["images/s"]
        r["rss_mib"] = max(r.get("rss_mib") or 0, b["peak_rss_MiB"])
    return r


def med(rows, key):
    vals = [r[key] for r in rows if r and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-perf", help="tinycnn CMake build directory")
    ap.add_argument("--models", default="baseline,model2,model3,model004")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-jemalloc", action="store_true",
                    help="PyTorch with jemalloc keeping freed memory (see above)")
    ap.add_argument("--torch-child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:
        torch_child(a.torch_child, a.steps, a.threads)
        return
    if a.torch_jemalloc and not os.path.exists(JEMALLOC):
        raise SystemExit("--torch-jemalloc: %s not found (apt-get install libjemalloc2)" % JEMALLOC)
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    rows = []
    for name in a.models.split(","):
        t_runs, c_runs = [], []
        for _ in range(a.reps):  # interleaved so both see the same load
            t_runs.append(run_torch(name, a.steps, a.threads, a.torch_jemalloc))
            c_runs.append(run_tinycnn(a.build, name, a.steps, a.threads))
        rows.append((name, t_runs, c_runs))
        sys.stderr.write("done %s\n" % name)
    print("load average at end:   %.2f %.2f %.2f" % os.getloadavg())
    print("batch %d, %d threads, medians of %d runs x %d steps; PyTorch's allocator: %s" %
          (BATCH, a.threads, a.reps, a.steps, "jemalloc, freed memory kept" if a.torch_jemalloc else "glibc malloc"))
    print("| model | PyTorch train img/s | tinycnn train img/s | ratio | PyTorch infer img/s | tinycnn infer img/s "
          "| ratio | PyTorch peak RSS MiB | tinycnn peak RSS MiB |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    sources = set()
    for name, tr, cr in rows:
        pt, pi, pm = med(tr, "train"), med(tr, "infer"), med(tr, "rss_mib")
        ct, ci, cm = med(cr, "train"), med(cr, "infer"), med(cr, "rss_mib")
        for r in cr:
            if r:
                sources.add(r["source"])
        f = lambda v: "-" if v is None else "%.1f" % v
        ratio = lambda c, p: "-" if c is None or not p else "%.2fx" % (c / p)
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (name, f(pt), f(ct), ratio(ct, pt), f(pi), f(ci),
                                                               ratio(ci, pi), f(pm), f(cm)))
    print("tinycnn numbers from: " + ", ".join(sorted(sources)))


if __name__ == "__main__":
    main()
