"""Every table deepconv prints, readable at any terminal width: wrapped cells when the table fits, else one record
per line (never a cell cut to "…")."""

import os

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from deepconv_cli.compat.rich import column_room

LOG_WIDTH = 200  # a log or a pipe without COLUMNS: print whole tables rather than fold them into rich's 80


def console_for_tables(stderr: bool = False) -> Console:
    """The terminal's console; for a log or a pipe (no terminal, no COLUMNS) a wide one, so tables stay whole."""
    console = Console(stderr=stderr)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(stderr=stderr, width=LOG_WIDTH)
    return console


def show(table: Table, console: Console | None = None) -> None:
    """Print `table` so that no cell is cut: as a table with wrapped cells when its words fit the width, else as
    one record per line ("header: value; ..."), folded at the width."""
    console = console or console_for_tables()
    for column in table.columns:
        column.no_wrap = False
        column.overflow = "fold"
    if Measurement.get(console, console.options, table).minimum <= console.width and _words_fit(console, table):
        console.print(table)
        return
    if table.title:
        console.print(table.title, style="italic", overflow="fold")
    headers = [str(column.header) for column in table.columns]
    for row in zip(*(list(column.cells) for column in table.columns)):
        fields = [f"{h}: {_plain(v)}" if h else _plain(v) for h, v in zip(headers, row) if _plain(v)]
        console.print("  " + "; ".join(fields), overflow="fold", highlight=False)


def _plain(cell: object) -> str:
    return " ".join(str(getattr(cell, "plain", cell)).split())


def _words_fit(console: Console, table: Table) -> bool:
    """Whether the table, rendered at the console's width, shows every cell's longest word whole."""
    for room, column in zip(column_room(console, table), table.columns):
        texts = [str(column.header), *(_plain(c) for c in column.cells)]
        if max((len(word) for text in texts for word in text.split()), default=0) > room:
            return False
    return True
