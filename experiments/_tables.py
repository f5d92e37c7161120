"""Shared by the experiment scripts: print a results table and write it to a markdown file."""

from __future__ import annotations

from pathlib import Path


def emit(title: str, lines: list[str], out: str | None) -> None:
    """Print ``lines`` and, when ``out`` is given, write them under ``# title`` to that file."""
    table = "\n".join(lines)
    print(table)
    if out:
        Path(out).write_text(f"# {title}\n\n{table}\n")
