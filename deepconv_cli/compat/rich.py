"""rich behaviour without a public API: the column widths rich gives a table at a console's width."""

from rich.console import Console
from rich.table import Table


def column_room(console: Console, table: Table) -> list[int]:
    """Per column, the characters its cells get inside the padding when `table` is laid out at the console's
    width, as rich lays it out (its private width calculation)."""
    options = console.options.update_width(console.width - table._extra_width)  # noqa: SLF001
    widths = table._calculate_column_widths(console, options)  # noqa: SLF001
    return [width - table._get_padding_width(index) for index, width in enumerate(widths)]  # noqa: SLF001
