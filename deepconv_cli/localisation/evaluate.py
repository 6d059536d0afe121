"""One `deepconv localise evaluate` run: localisers (+ classifier) and an annotated val tree in, result rows out.

Rows: one per localiser and, for dense-top5 with several localisers, their fusion (union of boxes before
merging), plus the "whole image" baseline; every image is counted once.
"""

from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deepconv_cli.data import packed
from deepconv_cli.data.annotations import Annotated, attach_boxes
from deepconv_cli.data.folder import ImageTree
from deepconv_cli.errors import usage
from deepconv_cli.evaluation.runner import check_classes, resolve_val_dir
from deepconv_cli.localisation.data import packed_annotated
from deepconv_cli.localisation.dense import Localiser, load_localisers
from deepconv_cli.localisation.protocols import centre_gt, dense_top5
from deepconv_cli.models.checkpoint import load_model

PROTOCOLS = ("centre-gt", "dense-top5")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise usage(f"unknown device {name!r} (cpu, cuda, cuda:1, ...)") from None


def annotated_val(data: str, boxes: str | None, classes: list[str], skip_bad: bool, limit: int = 0) -> tuple[
        list[Annotated], str]:
    """The val images that have boxes (evenly spaced `limit` of them when > 0) and what was left out; `data` is a
    val/ folder, a dataset root holding val/, or a pack made with boxes (`deepconv data pack`)."""
    if packed.is_packed(data):
        if boxes:
            raise usage(f"{data} is a packed dataset: its boxes were packed with it (--boxes is for folders)")
        meta = packed.read_meta(data)
        check_classes(Path(data), classes, meta["classes"])
        items, summary = packed_annotated(data, "val", meta), ""
    else:
        val_dir = resolve_val_dir(data)
        check_classes(val_dir, classes)
        source = Path(boxes) if boxes else next(
            (p for p in (val_dir / "boxes", val_dir.parent / "boxes") if p.exists()), val_dir.parent / "boxes")
        items, report = attach_boxes(ImageTree(val_dir).samples, classes, source, skip_bad)
        if not items:
            raise usage(f"no image under {val_dir} has a box in {source}")
        summary = report.summary()
    if 0 < limit < len(items):
        items = [items[round(i * (len(items) - 1) / max(1, limit - 1))] for i in range(limit)]
    return items, summary


def row(name: str, locs: list[Localiser], protocol: str, result: dict) -> dict:
    qs = result.pop("test_q", None)
    test_q = ",".join(map(str, qs)) if qs else "/".join(",".join(map(str, loc.scales)) for loc in locs)
    return {"localiser": name, "regression": "+".join(sorted({loc.regression for loc in locs})),
            "train_s": "/".join(str(loc.meta.s_min) for loc in locs), "protocol": protocol, "test_q": test_q,
            "arch": "+".join(loc.meta.arch for loc in locs), "crop": locs[0].meta.crop_size,
            "classes": len(locs[0].meta.classes),
            "fine_tuned": "+".join(sorted({loc.train_layers for loc in locs})),
            "members": [{"arch": loc.meta.arch, "train_s": str(loc.meta.s_min),
                         "test_q": ",".join(map(str, qs if qs else loc.scales))} for loc in locs],
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}}


def fused_ranking(classifiers: list, method: str):
    """picture -> class posteriors averaged over the classifiers [(model, meta, scales)] and the single methods of
    `method` (dense, multi-crop, dense+multi-crop, ...), as `deepconv evaluate` fuses them (Tables 5-6)."""
    from deepconv_cli.evaluation.dense import rescale_shorter, to_uint8_tensor
    from deepconv_cli.evaluation.fusion import components, method_posteriors

    singles = components(method)

    def rank(picture) -> torch.Tensor:
        parts = []
        for model, meta, qs in classifiers:
            images = [{q: to_uint8_tensor(rescale_shorter(picture, q)) for q in qs}]
            parts += [method_posteriors(model, images, qs, m, True, 64, meta.center_square)[0].cpu() for m in singles]
        return torch.stack(parts).mean(dim=0)

    return rank


def run(ckpts: list[str], data: str, protocol: str, classifier: str | list[str] | None = None,
        boxes: str | None = None, scales: list[list[int]] | None = None, classifier_scales: list[int] | None = None,
        topk: int = 5, merge_iou: float = 0.5, skip_bad_images: bool = False, limit: int = 0, device: str = "auto",
        offsets: int = 1, flip: bool = False, classifier_method: str = "dense") -> tuple[list[dict], str]:
    """Result rows and a note on the images left out (`offsets`, `flip`: the dense passes, see dense.views);
    several classifiers and a method other than dense: the top-k classes from their fused posteriors."""
    if protocol not in PROTOCOLS:
        raise usage(f"--protocol must be one of {', '.join(PROTOCOLS)}")
    dev = resolve_device(device)
    locs = load_localisers(ckpts, scales, dev, offsets, flip)
    items, left_out = annotated_val(data, boxes, locs[0].meta.classes, skip_bad_images, limit)
    per_step = len(locs) + (len(locs) > 1) if protocol == "dense-top5" else len(locs)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task(protocol, total=len(items) * per_step)

        def step() -> None:
            bar.advance(task)

        if protocol == "centre-gt":
            return [row(loc.name, [loc], protocol, centre_gt(loc, items, step=step)) for loc in locs], left_out
        if not classifier:
            raise usage("--protocol dense-top5 ranks the boxes by a classifier's scores: pass --classifier CKPT")
        classifiers = []
        for path in [classifier] if isinstance(classifier, str) else classifier:
            cls_model, cls_meta = load_model(path)
            if cls_meta.classes != locs[0].meta.classes:
                raise usage(f"{path} classifies other classes than the localisers")
            classifiers.append((cls_model.to(dev), cls_meta, classifier_scales or cls_meta.default_test_scales()))
        cls_model, _, qs = classifiers[0]  # its score maps weigh the boxes
        rank = fused_ranking(classifiers, classifier_method) if len(classifiers) > 1 or classifier_method != "dense" \
            else None
        system = {"classifiers": [m.arch for _, m, _ in classifiers], "classifier_method": classifier_method,
                  "classifier_q": [",".join(map(str, q)) for _, _, q in classifiers],
                  "classifier_s": [f"{m.s_min}" if m.s_min == m.s_max else f"{m.s_min}-{m.s_max}"
                                   for _, m, _ in classifiers]}
        groups = [(loc.name, [loc]) for loc in locs] + ([("fusion", locs)] if len(locs) > 1 else [])
        rows = [{**row(name, group, protocol, dense_top5(group, cls_model, qs, items, topk, merge_iou=merge_iou,
                                                          step=step, rank=rank)), **system} for name, group in groups]
    return rows, left_out
