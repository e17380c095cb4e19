#!/usr/bin/env python3
"""Golden values for tests/test_golden.cpp, computed with PyTorch (Debian python3-torch).

A small CNN -- Conv2d 3->6 3x3 'same' (padding 1), BatchNorm2d (training mode), ReLU, MaxPool 2,
Flatten, Linear 96->5 -- with fixed weights: forward logits, cross-entropy loss, every parameter
gradient, then 5 steps of SGD (momentum 0.9) and, from the same start, 5 steps of Adam on one batch.

Run: /usr/bin/python3 tests/golden/make_golden.py > tests/data/golden_small_cnn.txt
Format: one tensor per line, "name rank d0 d1 ... : v0 v1 ..." (row-major, tinycnn layouts:
conv weight [K, C, R, S] as PyTorch, dense kernel [in, out] = Linear.weight transposed).
"""
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
rs = np.random.RandomState(0)


def u(*shape, lo=-0.3, hi=0.3):
    return rs.uniform(lo, hi, size=shape)


x_np = rs.normal(size=(4, 3, 8, 8))
labels_np = np.array([0, 3, 1, 4])
init = {
    "conv/kernel": u(6, 3, 3, 3),
    "conv/bias": u(6),
    "bn/gamma": u(6, lo=0.8, hi=1.2),
    "bn/beta": u(6, lo=-0.1, hi=0.1),
    "dense/kernel": u(96, 5),
    "dense/bias": u(5),
}
BN_EPS, BN_MOMENTUM_TORCH = 1e-3, 0.01  # = Keras momentum 0.99


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(6, eps=BN_EPS, momentum=BN_MOMENTUM_TORCH)
        self.fc = torch.nn.Linear(96, 5)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(init["conv/kernel"]))
            self.conv.bias.copy_(torch.tensor(init["conv/bias"]))
            self.bn.weight.copy_(torch.tensor(init["bn/gamma"]))
            self.bn.bias.copy_(torch.tensor(init["bn/beta"]))
            self.fc.weight.copy_(torch.tensor(init["dense/kernel"].T))
            self.fc.bias.copy_(torch.tensor(init["dense/bias"]))

    def forward(self, x):
        h = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(torch.flatten(h, 1))

    def named(self):
        return {
            "conv/kernel": self.conv.weight, "conv/bias": self.conv.bias,
            "bn/gamma": self.bn.weight, "bn/beta": self.bn.bias,
            "dense/kernel": self.fc.weight.t(), "dense/bias": self.fc.bias,
        }


def emit(name, arr):
    arr = np.asarray(arr, dtype=np.float64)
    dims = " ".join(str(d) for d in arr.shape)
    vals = " ".join(repr(float(v)) for v in arr.reshape(-1))
    print(f"{name} {arr.ndim} {dims} : {vals}")


x = torch.tensor(x_np)
y = torch.tensor(labels_np)
emit("input", x_np)
emit("labels", labels_np)
for k, v in init.items():
    emit("init/" + k, v)

net = Net()
logits = net(x)
loss = torch.nn.functional.cross_entropy(logits, y)
loss.backward()
emit("logits", logits.detach().numpy())
emit("loss", [loss.item()])
grads = {
    "conv/kernel": net.conv.weight.grad, "conv/bias": net.conv.bias.grad,
    "bn/gamma": net.bn.weight.grad, "bn/beta": net.bn.bias.grad,
    "dense/kernel": net.fc.weight.grad.t(), "dense/bias": net.fc.bias.grad,
}
for k, g in grads.items():
    emit("grad/" + k, g.numpy())

for opt_name in ("sgd", "adam"):
    net = Net()
    if opt_name == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=0.01, eps=1e-8)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    for k, v in net.named().items():
        emit(f"{opt_name}/{k}", v.detach().numpy())
    emit(f"{opt_name}/bn/moving_mean", net.bn.running_mean.numpy())
    emit(f"{opt_name}/bn/moving_variance", net.bn.running_var.numpy())
