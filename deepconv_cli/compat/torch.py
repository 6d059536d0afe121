"""torch behaviour without a public API: torch.export reasoning about sizes that may be 1.

torch.export specialises dynamic sizes 0 and 1, and the meta kernels' contiguity checks add guards that a
feature map is not 1 pixel wide; a network's score map is 1 x 1 at its crop size, so the exported graph would
refuse the crop itself. Size-oblivious reasoning (torch.fx's `backed_size_oblivious` setting) drops those
guards; tests/test_export.py's crop-sized probe fails loudly if an upgrade changes this.
"""

import contextlib

from torch.fx.experimental import _config as fx_config


def sizes_may_be_one() -> contextlib.AbstractContextManager:
    """The context torch.export runs in so that the graph takes a 1 x 1 feature map like any other size."""
    return fx_config.patch(backed_size_oblivious=True)
