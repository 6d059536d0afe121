"""The optimisation batch is a recipe constant: derive the per-device batch and gradient accumulation from it."""

from deepconv_cli.errors import usage


def plan_batches(batch_size: int, micro_batch_size: int | None, world_size: int) -> tuple[int, int]:
    """(per-device batch, accumulation steps) so that per_device * world_size * accumulation == batch_size.

    Synchronous data parallelism with this split is the same optimisation as one device holding the whole
    batch (VGG paper section 3.3), so a recipe trains identically on 1 or 8 GPUs.
    """
    if batch_size % world_size:
        raise usage(f"batch_size {batch_size} is not divisible by the {world_size} devices")
    per_device_total = batch_size // world_size
    micro = micro_batch_size or per_device_total
    if per_device_total % micro:
        raise usage(
            f"micro_batch_size {micro} does not divide the per-device batch {per_device_total} "
            f"(batch_size {batch_size} over {world_size} devices)"
        )
    return micro, per_device_total // micro
