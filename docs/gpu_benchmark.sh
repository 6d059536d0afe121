#!/usr/bin/env bash
# `deepconv benchmark gpu` on a GPU machine without network access, run from the repository root in one call
# (about 6-7 minutes, estimated): `bash docs/gpu_benchmark.sh`. For a machine that has torch, lightning, etc. but
# lacks jsonargparse, docstring-parser, typeshed-client, importlib-resources and simplejpeg, download their
# wheels once per checkout into the git-ignored .whl/ on a machine with network access:
#   echo /.whl/ >> .git/info/exclude
#   P="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
#   for p in jsonargparse docstring-parser typeshed-client importlib-resources simplejpeg; do
#     python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $P -d .whl $p
#   done
# Results come back under $OUT: gpu.json, gpu.md, train.log, benchmark.log, resize.txt, nvidia-smi.csv.
set -uo pipefail
OUT=${OUT:-/tmp/deepconv-gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --target .site .whl/*.whl
export PYTHONPATH=$PWD/.site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
# data.decode_on cuda: the batched crop resize against one interpolate per image, batch 256 (decides the design)
timeout 60 python3 - <<'PY' 2>&1 | tee "$OUT/resize.txt"
import time, torch, torch.nn.functional as F
from deepconv_cli.data.device_decode import resize_boxes
g = torch.Generator().manual_seed(0)
sides = torch.randint(164, 440, (256,), generator=g).tolist()
boxes = [torch.randint(0, 256, (3, s, s), dtype=torch.uint8, generator=g).cuda() for s in sides]
flips = [i % 2 == 0 for i in range(256)]
def each():
    out = torch.empty(256, 3, 224, 224, device="cuda")
    for k, b in enumerate(boxes):
        out[k] = F.interpolate(b[None].float(), size=(224, 224), mode="bilinear", antialias=True)[0]
    return out
for name, fn in (("one interpolate per image", each), ("resize_boxes", lambda: resize_boxes(boxes, 224, flips))):
    for _ in range(3): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(10): fn()
    torch.cuda.synchronize(); print(f"{name}: {(time.perf_counter() - t) * 100:.2f} ms per batch of 256")
PY
# the JPEGs (~1 GB) and the training run folder stay outside $OUT; only the results come back
timeout 520 python3 -m deepconv_cli benchmark gpu --out /tmp/deepconv-gpu --size full 2>&1 | tee "$OUT/benchmark.log" | tail -40
cp /tmp/deepconv-gpu/gpu.json /tmp/deepconv-gpu/gpu.md /tmp/deepconv-gpu/train.log "$OUT"/ 2>/dev/null
ls -la "$OUT"
