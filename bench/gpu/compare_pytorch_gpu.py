#!/usr/bin/env python3
"""PyTorch on the GPU: the numbers tinycnn's CUDA backend is measured against (issue 7).

    python3 bench/gpu/compare_pytorch_gpu.py [--models model2,model3,model004] [--batches 256,32]
                                             [--precisions fp32,tf32,bf16] [--steps 20] [--json FILE]

PyTorch eager with torch.backends.cudnn.benchmark = True, input 3x150x150, 6 classes, Adam (lr 1e-3),
cross-entropy. Precisions: fp32 (TF32 off for matmul and cuDNN), tf32 (TF32 on), bf16 (autocast to
bfloat16, TF32 on; no grad scaler needed for bf16). Per (model, batch, precision): 5 warm-up steps
(cudnn.benchmark picks its algorithms there), then STEPS timed steps, each ended by
torch.cuda.synchronize(); images/s = batch / median step time. Training = zero_grad + forward + loss +
backward + Adam step; inference = eval mode under torch.inference_mode(). The model definitions are
imported from bench/compare_pytorch.py.
"""
import argparse
import json
import os
import statistics
import sys
import time

# The model definitions are bench/compare_pytorch.py's (one copy for the CPU and GPU comparisons).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compare_pytorch import CLASSES, build_torch_model  # noqa: E402


def measure(torch, name, batch, precision, steps):
    torch.manual_seed(0)
    tf32 = precision in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    dev = torch.device("cuda")
    model = build_torch_model(name).to(dev)
    x = torch.rand(batch, 3, 150, 150, device=dev)
    y = torch.arange(batch, device=dev) % CLASSES
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    amp = precision == "bf16"

    def train_step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            model(x)

    def timed(fn):
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        t = []
        for _ in range(steps):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            t.append(time.perf_counter() - t0)
        return batch / statistics.median(t)

    model.train()
    train = timed(train_step)
    model.eval()
    infer = timed(infer_step)
    peak = torch.cuda.max_memory_allocated() / 2**20
    del model, opt, x, y
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return {"model": name, "batch": batch, "precision": precision, "train_images_s": train,
            "infer_images_s": infer, "peak_mib": peak}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="model2,model3,model004")
    ap.add_argument("--batches", default="256,32")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", help="write the rows as JSON here")
    a = ap.parse_args()
    import torch
    if not torch.cuda.is_available():
        print("compare_pytorch_gpu: no CUDA device visible to PyTorch; nothing measured")
        return 0
    torch.backends.cudnn.benchmark = True
    print("PyTorch %s, cuDNN %s, %s; eager, cudnn.benchmark, Adam, 3x150x150, %d timed steps (median)\n" %
          (torch.__version__, torch.backends.cudnn.version(), torch.cuda.get_device_name(0), a.steps))
    print("| model | batch | precision | train images/s | inference images/s | peak MiB |")
    print("|---|---:|---|---:|---:|---:|")
    rows = []
    for name in a.models.split(","):
        for batch in (int(b) for b in a.batches.split(",")):
            for prec in a.precisions.split(","):
                try:
                    r = measure(torch, name, batch, prec, a.steps)
                except Exception as e:  # report and go on (e.g. out of memory)
                    print("| %s | %d | %s | failed: %s | | |" % (name, batch, prec, str(e).splitlines()[0][:80]))
                    continue
                rows.append(r)
                print("| %s | %d | %s | %.0f | %.0f | %.0f |" % (name, batch, prec, r["train_images_s"],
                                                               r["infer_images_s"], r["peak_mib"]))
                sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                       "device": torch.cuda.get_device_name(0), "steps": a.steps, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
