#!/usr/bin/env python3
"""Markdown summary of tinycnn_cuda_bench's JSON output (and, if given, compare_pytorch_gpu.py's):

    python3 bench/gpu/summarize_bench.py bench_cuda.json [pytorch_gpu.json]

1. model3 whole-step rows: tinycnn images/s (eager and CUDA graph) beside PyTorch's for the same batch
   and precision, with the ratio issue 7 asks about (>= 1.0 is the target);
2. per kernel benchmark family (GEMM shape, conv op + layer + batch) the GFLOP/s of every variant side
   by side with the fastest tinycnn variant named;
3. the benchmarks that failed validation or raised errors.
Note: tinycnn's tf32/bf16 rows use tensor-core GEMM variants inside an fp32 model; PyTorch's bf16 is
autocast. The comparison is only as fair as that.
"""
import collections
import json
import sys


def model_rows(benchmarks, torch_rows):
    ours = {}
    for b in benchmarks:
        parts = b["name"].split("/")
        if parts[0] != "model3" or b.get("error_occurred"):
            continue
        kind, batch, prec = parts[1], int(parts[2][1:]), parts[3]
        graph = len(parts) > 4 and parts[4] == "graph"
        ours[(kind, batch, prec, graph)] = b.get("images/s", 0.0)
    if not ours:
        return
    torch = {}
    for r in torch_rows:
        if r["model"] == "model3":
            torch[("train", r["batch"], r["precision"])] = r["train_images_s"]
            torch[("infer", r["batch"], r["precision"])] = r["infer_images_s"]
    print("| model3 | batch | precision | tinycnn images/s | tinycnn + CUDA graph | PyTorch images/s | ratio (best tinycnn / PyTorch) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for kind in ("train", "infer"):
        for batch in (256, 32):
            for prec in ("fp32", "fp32-implicit", "tf32", "bf16"):
                eager = ours.get((kind, batch, prec, False))
                graph = ours.get((kind, batch, prec, True))
                if eager is None and graph is None:
                    continue
                pt = torch.get((kind, batch, "fp32" if prec.startswith("fp32") else prec))
                best = max(v for v in (eager, graph) if v is not None)
                print("| %s | %d | %s | %s | %s | %s | %s |" % (
                    kind, batch, prec, "%.0f" % eager if eager else "", "%.0f" % graph if graph else "",
                    "%.0f" % pt if pt else "", "%.2f" % (best / pt) if pt else ""))
    print()


def main(path, torch_path=None):
    with open(path) as f:
        data = json.load(f)
    torch_rows = []
    if torch_path:
        try:
            with open(torch_path) as f:
                torch_rows = json.load(f).get("rows", [])
        except (OSError, ValueError) as e:
            print("(no PyTorch numbers: %s)\n" % e)
    benchmarks = data.get("benchmarks", [])
    model_rows(benchmarks, torch_rows)
    table = collections.OrderedDict()
    errors = []
    variants = []
    for b in benchmarks:
        parts = b["name"].split("/")
        if b.get("error_occurred"):
            errors.append("%s: %s" % (b["name"], b.get("error_message", "")))
            continue
        if parts[0] == "gemm":  # gemm/<variant>/<dims>
            variant, key = parts[1], "gemm " + parts[2] + " " + b.get("label", "")
        elif parts[0] == "conv":  # conv/<op>/<variant>/<layer>/<batch>
            variant, key = parts[2], "conv %s %s %s" % (parts[1], parts[3], parts[4])
        else:
            continue
        if variant not in variants:
            variants.append(variant)
        table.setdefault(key, {})[variant] = b.get("GFLOP/s", 0) / 1e9
    if table:
        print("| benchmark (GFLOP/s) | " + " | ".join(variants) + " | best tinycnn |")
        print("|---|" + "---:|" * len(variants) + "---|")
        for key, row in table.items():
            ours = {v: g for v, g in row.items() if v.startswith("cuda")}
            best = max(ours, key=ours.get) if ours else ""
            cells = ["%.0f" % row[v] if v in row else "" for v in variants]
            print("| %s | %s | %s |" % (key, " | ".join(cells), best))
    if errors:
        print("\nFailed validation or errors:")
        for e in errors:
            print("- " + e)


if __name__ == "__main__":
    main(*sys.argv[1:3])
