"""``lakeforge init``: a starter pipeline YAML from the sample files of a landing folder.

Each sub-folder (or loose file) of the folder is a source; its columns and types are inferred with
pyarrow from its files (csv, json lines, parquet). The dataset, label, windows and model are placeholders
that validate, marked ``TODO`` for the user to replace.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import yaml

from lakeforge.errors import ConfigError

__all__ = ["FORMATS", "InferredSource", "column_type", "infer_source", "starter_yaml", "write_starter"]

FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet"}
NULL_VALUES = ["", "NA"]
SAMPLE_FILES = 3


@dataclass(frozen=True)
class InferredSource:
    """A source found in the landing folder: its name, format, glob relative to the folder and typed columns."""

    name: str
    format: str
    path: str
    columns: dict[str, str]

    def of_type(self, *types: str) -> list[str]:
        return [c for c, t in self.columns.items() if t in types]


def column_type(arrow: pa.DataType) -> str | None:
    """The lakeforge column type of an Arrow type; None for types a source column cannot have (lists, structs)."""
    checks = [(pa.types.is_boolean, "boolean"), (pa.types.is_integer, "bigint"), (pa.types.is_floating, "double"),
              (pa.types.is_decimal, "double"), (pa.types.is_timestamp, "timestamp"), (pa.types.is_date, "date"),
              (pa.types.is_string, "string"), (pa.types.is_large_string, "string"), (pa.types.is_null, "string")]
    return next((name for check, name in checks if check(arrow)), None)


def _read_sample(path: Path, fmt: str) -> pa.Table:
    try:
        if fmt == "csv":
            return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(null_values=NULL_VALUES,
                                                                               strings_can_be_null=True))
        if fmt == "json":
            return pa_json.read_json(path)
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"init: cannot read sample file {path} as {fmt}: {exc}") from None


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text).strip("_").lower() or "source"
    return name if not name[0].isdigit() else f"s_{name}"


def infer_source(name: str, files: list[Path], folder: Path) -> InferredSource:
    """Columns and types of the first sample files (a column's types unified across files; mixed -> string)."""
    fmt = FORMATS[files[0].suffix.lower()]
    types: dict[str, str] = {}
    for sample in files[:SAMPLE_FILES]:
        for field in _read_sample(sample, fmt).schema:
            kind = column_type(field.type)
            if kind is None:
                continue
            types[field.name] = kind if types.get(field.name, kind) == kind else "string"
    if not types:
        raise ConfigError(f"init: no columns of a supported type in {files[0]}")
    relative = files[0].parent.relative_to(folder)
    glob = str(relative / f"*{files[0].suffix}") if relative.parts else files[0].name
    return InferredSource(_identifier(name), fmt, glob, types)


def _groups(folder: Path) -> Iterable[tuple[str, list[Path]]]:
    """(source name, its files): one source per sub-folder with data files (of its first file's suffix), one per
    loose data file."""
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            files = sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() in FORMATS)
            if files:
                yield entry.name, [p for p in files if p.suffix == files[0].suffix]
        elif entry.suffix.lower() in FORMATS:
            yield entry.stem, [entry]


def _starter(project: str, folder: Path, storage_root: Path, sources: list[InferredSource]) -> dict[str, Any]:
    spine = max(sources, key=lambda s: (bool(s.of_type("timestamp", "date")), len(s.columns)))  # timed, widest
    times = spine.of_type("timestamp", "date")
    numeric = spine.of_type("bigint", "double")
    flags = spine.of_type("boolean")
    label_column = flags[0] if flags else (numeric[-1] if numeric else None)
    if label_column is None:
        raise ConfigError(f"init: source '{spine.name}' has no boolean or numeric column to start a label from")
    label = label_column if flags else f"{label_column} > 0"
    features = [c for c in numeric if c != label_column]
    derived = {} if features else {"placeholder_feature": "0.0"}
    time = times[0] if times and spine.columns[times[0]] == "timestamp" else (
        f"CAST({times[0]} AS TIMESTAMP)" if times else "TIMESTAMP '2000-01-01 00:00:00'")
    return {
        "project": project,
        "storage_root": str(storage_root),
        "landing": {"dir": str(folder)},
        "sources": {s.name: {"format": s.format, "path": s.path, "columns": s.columns} for s in sources},
        "dataset": {"table": "dataset", "spine": {"source": spine.name, "time": time},
                    **({"derived": derived} if derived else {})},
        "task": {"type": "binary_classification", "label": label},
        "windows": {"train": ["2000-01-01", "2100-01-01"], "score": ["2100-01-01", "2200-01-01"]},
        "model": {"numeric_features": features or list(derived)},
    }


def starter_yaml(project: str, folder: Path, storage_root: Path) -> str:
    """The starter pipeline YAML for the files under `folder`, with ``TODO`` comments on the placeholders."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise ConfigError(f"init: --from {folder}: not a folder")
    sources = [infer_source(name, files, folder) for name, files in _groups(folder)]
    if not sources:
        raise ConfigError(f"init: no data files ({', '.join(sorted(FORMATS))}) in {folder} or its sub-folders")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"init: sources would share a name: {names}; rename the folders or files")
    data = _starter(project, folder, storage_root.resolve(), sources)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    notes = {"dataset:": "# TODO: the rows to predict: spine source, its time column, optional key and filter",
             "task:": "# TODO: the label, a SQL expression over the spine row",
             "windows:": "# TODO: half-open [start, end) ranges of the spine time to train and score on",
             "model:": "# TODO: the model's feature columns (spine columns, feature views, derived columns)"}
    lines = [f"{notes[key]}\n{line}" if (key := line.split(":", 1)[0] + ":") in notes else line
             for line in text.splitlines()]
    header = f"# Starter pipeline written by `lakeforge init {project}`; columns inferred from {folder}.\n"
    return header + "\n".join(lines) + "\n"


def write_starter(project: str, folder: Path, out: Path, storage_root: Path) -> Path:
    """Write the starter YAML to `out` (refusing to overwrite) and return it."""
    if out.exists():
        raise ConfigError(f"init: {out} exists; remove it or pass another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(starter_yaml(project, folder, storage_root))
    return out
