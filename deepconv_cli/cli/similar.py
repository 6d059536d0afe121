"""`deepconv similar --features FEATS --query IMAGE -k 6`: the images whose descriptors are nearest the query's."""

from pathlib import Path

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import usage

ALIASES = {"-k": "--k"}


def similar(features: str, query: str, k: int = 6, sheet: str | None = None, device: str = "auto") -> list[dict]:
    """The k images of a descriptor file nearest to a query image (AlexNet paper, Figure 4), by Euclidean distance
    between L2-normalised descriptors; the query's descriptor is made with the file's own networks and settings.

    Args:
        features: a file written by `deepconv features`.
        query: the query image (when it is one of the file's images, it is left out of the results).
        k: how many neighbours.
        sheet: also write a contact sheet PNG: the query, then its neighbours nearest first.
        device: cpu, cuda, ... (default: cuda when available).
    """
    if k < 1:
        raise usage(f"-k must be at least 1, got {k}")
    if sheet and Path(sheet).is_dir():
        raise usage(f"--sheet is a folder: {sheet}")
    from rich.table import Table

    from deepconv_cli.features.retrieval import contact_sheet, nearest, query_descriptor, read_query, relative_to_data
    from deepconv_cli.features.store import read_features
    from deepconv_cli.tables import show

    feats = read_features(features)
    img = read_query(query)
    hits = nearest(feats, query_descriptor(feats, img, device), k, relative_to_data(feats, Path(query)))
    rows = []
    for rank, (i, distance) in enumerate(hits, 1):
        label = int(feats.labels[i])
        rows.append({"rank": rank, "image": feats.paths[i], "class": feats.classes[label] if label >= 0 else "",
                     "distance": round(distance, 4)})
    table = Table(title=f"nearest to {query} in {features}")
    for col, justify in (("rank", "right"), ("image", "left"), ("class", "left"), ("distance", "right")):
        table.add_column(col, justify=justify)
    for r in rows:
        table.add_row(str(r["rank"]), r["image"], r["class"], f"{r['distance']:.4f}")
    show(table)
    if sheet:
        contact_sheet(sheet, img, feats, hits)
        print(f"wrote {sheet}")
    return rows


def main(argv: list[str]) -> int:
    similar(**parse_options(similar, argv, "deepconv similar", ALIASES))
    return 0
