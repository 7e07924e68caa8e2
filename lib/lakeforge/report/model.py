"""What a report shows: sections of facts, tables and figures, independent of how they are rendered."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Figure", "Section", "Table"]


@dataclass
class Table:
    """A titled table; rows whose index is in `highlight` are marked (e.g. flagged slices)."""

    title: str
    columns: list[str]
    rows: list[list[object]]
    highlight: set[int] = field(default_factory=set)
    note: str = ""


@dataclass
class Figure:
    """A titled figure: inline SVG markup, or a PNG as a ``data:`` URI."""

    title: str
    svg: str = ""
    png_uri: str = ""


@dataclass
class Section:
    """One step of the run; `status` is the step's (``succeeded``, ``failed``) or ``not run``."""

    step: str
    title: str
    status: str
    facts: dict[str, object] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
