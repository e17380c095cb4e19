#!/usr/bin/env python3
"""Markdown summary of tinycnn_cuda_bench's JSON output: per benchmark family (gemm shape, conv op +
layer + batch) the GFLOP/s of every variant side by side, the fastest tinycnn variant marked, and
the benchmarks that failed validation listed.

    python3 bench/gpu/summarize_bench.py bench_cuda.json
"""
import collections
import json
import sys


def main(path):
    with open(path) as f:
        data = json.load(f)
    table = collections.OrderedDict()
    errors = []
    variants = []
    for b in data.get("benchmarks", []):
        parts = b["name"].split("/")
        if b.get("error_occurred"):
            errors.append("%s: %s" % (b["name"], b.get("error_message", "")))
            continue
        if parts[0] == "gemm":  # gemm/<variant>/<dims>
            variant, key = parts[1], "gemm " + parts[2].split("/")[0] + " " + b.get("label", "")
        else:  # conv/<op>/<variant>/<layer>/<batch>
            variant, key = parts[2], "conv %s %s %s" % (parts[1], parts[3], parts[4].split("/")[0])
        if variant not in variants:
            variants.append(variant)
        table.setdefault(key, {})[variant] = b.get("GFLOP/s", 0) / 1e9
    print("| benchmark | " + " | ".join(variants) + " | best tinycnn |")
    print("|---|" + "---:|" * len(variants) + "---|")
    for key, row in table.items():
        ours = {v: g for v, g in row.items() if v.startswith("cuda")}
        best = max(ours, key=ours.get) if ours else ""
        cells = []
        for v in variants:
            cells.append("%.0f" % row[v] if v in row else "")
        print("| %s | %s | %s |" % (key, " | ".join(cells), best))
    if errors:
        print("\nFailed validation or errors:")
        for e in errors:
            print("- " + e)


if __name__ == "__main__":
    main(sys.argv[1])
