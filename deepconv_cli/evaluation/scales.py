"""Test scales Q as users write them (`--scales 256,384,512`), shared by evaluate and predict."""

from deepconv_cli.errors import usage


def parse_scales(text: str) -> list[int]:
    """--scales '256,384,512' -> [256, 384, 512]; anything else is a one-line usage error."""
    try:
        scales = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        scales = []
    if not scales or min(scales) <= 0:
        raise usage(f"--scales takes comma-separated positive integers like 256,384,512, got {text!r}")
    return scales
