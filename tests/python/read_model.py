#!/usr/bin/env python3
"""Reads a tinycnn model file (safetensors layout) with the standard library and numpy only,
verifies its checksum, and prints the model's outputs for one input, one value per line.

    read_model.py MODEL.safetensors INPUT.f32

INPUT.f32 holds one sample as raw little-endian float32 in the model's per-sample input shape.
Supports Sequential models of Dense, ReLU, Activation, Softmax, Sigmoid, Tanh, LeakyReLU, Flatten,
Reshape and Dropout (identity at inference) layers -- enough to check the format independently.
"""
import json
import struct
import sys
import zlib

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1"}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        tensors[name] = (t["dtype"], t["shape"], data[b:e], arr.astype(np.float64))
    return tensors, meta


def checksum(tensors, meta):
    crc = 0

    def u64(v):
        nonlocal crc
        crc = zlib.crc32(struct.pack("<Q", v), crc)

    def s(x):
        nonlocal crc
        b = x.encode("utf-8")
        u64(len(b))
        crc = zlib.crc32(b, crc)

    s("tinycnn-checksum-v1")
    u64(len(tensors))
    for name in sorted(tensors, key=lambda k: k.encode("utf-8")):
        dtype, shape, raw, _ = tensors[name]
        s(name)
        s(dtype)
        u64(len(shape))
        for d in shape:
            u64(d)
        u64(len(raw))
        crc = zlib.crc32(raw, crc)
    for k in sorted(meta, key=lambda k: k.encode("utf-8")):
        if k != "checksum":
            s(k)
            s(meta[k])
    return "crc32:%08x" % crc


def activation(x, name, alpha=0.3):
    if name in ("", "linear"):
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "relu6":
        return np.minimum(np.maximum(x, 0), 6)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    if name == "softmax":
        e = np.exp(x - x.max())
        return e / e.sum()
    raise SystemExit("unsupported activation " + name)


def main():
    tensors, meta = read_safetensors(sys.argv[1])
    if meta.get("format") != "tinycnn-model":
        raise SystemExit("not a tinycnn model file")
    if checksum(tensors, meta) != meta["checksum"]:
        raise SystemExit("checksum mismatch")
    arch = json.loads(meta["architecture"])
    if arch["model_type"] != "Sequential":
        raise SystemExit("only Sequential models are supported here")
    x = np.fromfile(sys.argv[2], dtype="<f4").astype(np.float64).reshape(arch["input_shape"])
    for layer in arch["layers"]:
        t, name, cfg = layer["type"], layer["name"], layer["config"]
        if t == "Dense":
            x = x @ tensors[name + "/kernel"][3]
            if cfg.get("use_bias", True):
                x = x + tensors[name + "/bias"][3]
            x = activation(x, cfg.get("activation", "linear"))
        elif t == "ReLU":
            x = np.maximum(x, 0)
            if cfg.get("max_value", 0) > 0:
                x = np.minimum(x, cfg["max_value"])
        elif t == "Activation":
            x = activation(x, cfg["activation"])
        elif t in ("Softmax", "Sigmoid", "Tanh"):
            x = activation(x, t.lower())
        elif t == "LeakyReLU":
            x = activation(x, "leaky_relu", cfg.get("alpha", 0.3))
        elif t == "Flatten":
            x = x.reshape(-1)
        elif t == "Reshape":
            x = x.reshape(cfg["target_shape"])
        elif t == "Dropout":
            pass
        else:
            raise SystemExit("unsupported layer type " + t)
    for v in np.asarray(x).reshape(-1):
        print(repr(float(v)))


if __name__ == "__main__":
    main()
