#!/usr/bin/python3
"""Train digits-8x8, pifaas's own small digit classifier, reproducibly, and export it to ONNX.

Data: the UCI optical-recognition digits as shipped by scikit-learn (1797 rows of 64 values 0..16 = 8x8
pixels, ink bright, and the label), read from ../shared/testdata/digits/sklearn-digits-8x8.csv.gz or the
path given as the first argument. Rows whose index is a multiple of 5 (0, 5, 10, ...; 360 rows) are held
out and never trained on; the held-out accuracy is printed and recorded in models/catalog.json.

Model: a small dense network (64 -> 128 -> 64 -> 10, ReLU) with softmax inside the graph, so the ONNX
output is probabilities (catalog: "softmax": false). Input `pixels` float32 [N, 64], values 0..16,
row-major 8x8, bright ink on a dark background.

Deterministic: fixed seed, single thread, deterministic algorithms, full-batch training; re-running with
the same torch gives the same weights and the same .onnx bytes (sha256 printed at the end).
Run with Debian's python3-torch and python3-onnx: /usr/bin/python3 models/train-digits-8x8.py
"""
import gzip
import hashlib
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "testdata", "digits", "sklearn-digits-8x8.csv.gz")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "digits-8x8.onnx")
SEED = 20240501
EPOCHS = 400

torch.manual_seed(SEED)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

rows = []
with gzip.open(DATA, "rt") as f:
    for line in f:
        line = line.strip()
        if line:
            rows.append([int(v) for v in line.split(",")])
assert len(rows) == 1797 and all(len(r) == 65 for r in rows), "unexpected digits CSV shape"

train = [r for i, r in enumerate(rows) if i % 5 != 0]
held_out = [r for i, r in enumerate(rows) if i % 5 == 0]


def tensors(part):
    x = torch.tensor([r[:64] for r in part], dtype=torch.float32)
    y = torch.tensor([r[64] for r in part], dtype=torch.int64)
    return x, y


def shifted(x, dx, dy):
    """The same digits moved by (dx, dy) pixels, zero filled: a cheap augmentation for 8x8 bitmaps."""
    img = x.view(-1, 8, 8)
    out = torch.zeros_like(img)
    ys = slice(max(dy, 0), 8 + min(dy, 0))
    yd = slice(max(-dy, 0), 8 + min(-dy, 0))
    xs = slice(max(dx, 0), 8 + min(dx, 0))
    xd = slice(max(-dx, 0), 8 + min(-dx, 0))
    out[:, ys, xs] = img[:, yd, xd]
    return out.view(-1, 64)


class Digits8x8(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 10),
        )

    def forward(self, pixels):
        return torch.softmax(self.net(pixels / 16.0), dim=1)

    def logits(self, pixels):
        return self.net(pixels / 16.0)


x_train, y_train = tensors(train)
x_aug = torch.cat([x_train] + [shifted(x_train, dx, dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))])
y_aug = torch.cat([y_train] * 5)
x_test, y_test = tensors(held_out)

model = Digits8x8()
opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
loss_fn = torch.nn.CrossEntropyLoss()
for epoch in range(EPOCHS):
    model.train()
    opt.zero_grad()
    loss = loss_fn(model.logits(x_aug), y_aug)
    loss.backward()
    opt.step()

model.eval()
with torch.no_grad():
    acc = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    train_acc = (model(x_train).argmax(dim=1) == y_train).float().mean().item()

torch.onnx.export(
    model, torch.zeros(1, 64), OUT,
    input_names=["pixels"], output_names=["probabilities"],
    dynamic_axes={"pixels": {0: "N"}, "probabilities": {0: "N"}},
    opset_version=13, do_constant_folding=True,
)
with open(OUT, "rb") as f:
    data = f.read()
print(f"torch {torch.__version__}; train rows {len(train)} (x5 with 1-pixel shifts), held-out rows {len(held_out)}")
print(f"final loss {loss.item():.4f}; train accuracy {train_acc:.4f}; held-out accuracy {acc:.4f}")
print(f"wrote {OUT}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
