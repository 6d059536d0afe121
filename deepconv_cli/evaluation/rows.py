"""The result rows of an evaluation: one per model and method (plus the ensemble's), each with running
top-1/top-5 accuracies (torchmetrics, micro-averaged: the same numbers however the images are chunked; never
synchronised across processes: `--devices N` gathers the posteriors first, see sharded.py)."""

from dataclasses import dataclass, field

import torch
from torchmetrics.classification import MulticlassAccuracy

from deepconv_cli.evaluation.fusion import FUSED, components


@dataclass
class Row:
    """Running metrics and forward time of one result row (one model or the ensemble, one method)."""

    model: str
    ckpt: str
    arch: str
    train_s: str
    test_q: str
    method: str
    top1: MulticlassAccuracy
    top5: MulticlassAccuracy
    parts: list[tuple[int, str]] = field(default_factory=list)  # (member, single method) whose time it sums
    # what `deepconv report` matches a published row on: crop size (scales in the paper's units), the fused nets
    crop: int = 224
    members: list[dict] = field(default_factory=list)
    preprocessing: str = "mean_rgb"
    classes: int = 0  # 1000: an ILSVRC result; else a laptop-scale or other dataset

    def result(self, flip: bool, images: int, seconds: dict[tuple[int, str], float]) -> dict:
        return {
            "model": self.model, "ckpt": self.ckpt, "arch": self.arch, "train_s": self.train_s,
            "test_q": self.test_q, "method": self.method, "flip": flip,
            "top1_error": round(100.0 * (1.0 - self.top1.compute().item()), 4),
            "top5_error": round(100.0 * (1.0 - self.top5.compute().item()), 4),
            "images": images, "seconds": round(sum(seconds[p] for p in self.parts), 3),
            "crop": self.crop, "members": self.members, "preprocessing": self.preprocessing, "classes": self.classes,
        }


def make_rows(members: list, method: str) -> dict[tuple[str, str], Row]:
    """Rows keyed (model key, method): each model's single methods and their fusion, then the ensemble's."""
    singles = components(method)
    methods = singles + ([FUSED] if method == FUSED else [])
    n = members[0].meta.num_classes
    k = min(5, n)
    rows: dict[tuple[str, str], Row] = {}

    def add(key: str, label: str, ckpt: str, arch: str, train_s: str, test_q: str, who: list[int]) -> None:
        for m in methods:
            parts = [(w, s) for w in who for s in (singles if m == FUSED else [m])]
            top1, top5 = (MulticlassAccuracy(n, top_k=t, average="micro", sync_on_compute=False) for t in (1, k))
            nets = [{"arch": members[w].meta.arch, "train_s": members[w].train_s,
                     "test_q": ",".join(map(str, members[w].scales))} for w in who]
            rows[key, m] = Row(label, ckpt, arch, train_s, test_q, m, top1, top5, parts, members[who[0]].meta.crop_size,
                               nets, members[who[0]].meta.preprocessing, n)

    for i, m in enumerate(members):
        add(str(i), m.name, str(m.path), m.meta.arch, m.train_s, ",".join(map(str, m.scales)), [i])
    if len(members) > 1:
        qs = {",".join(map(str, m.scales)) for m in members}
        add("ensemble", f"ensemble of {len(members)}", ";".join(str(m.path) for m in members),
            "+".join(m.meta.arch for m in members), "/".join(m.train_s for m in members),
            qs.pop() if len(qs) == 1 else "/".join(",".join(map(str, m.scales)) for m in members),
            list(range(len(members))))
    return rows


def update_rows(rows: dict[tuple[str, str], Row], posteriors: dict, target: torch.Tensor) -> None:
    for key, p in posteriors.items():
        rows[key].top1.update(p, target)
        rows[key].top5.update(p, target)
