"""Plain-text tables for the terminal: a header row, then aligned columns (the last column is not padded)."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "",
          right: Sequence[int] = ()) -> list[str]:
    """Header and rows aligned on the widest cell of each column; columns in `right` are right-aligned."""
    everything = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in everything) for i in range(len(header))]
    out = []
    for row in everything:
        cells = [(c.rjust(widths[i]) if i in right else c.ljust(widths[i])) if i < len(row) - 1 else c
                 for i, c in enumerate(row)]
        out.append((indent + "  ".join(cells)).rstrip())
    return out
