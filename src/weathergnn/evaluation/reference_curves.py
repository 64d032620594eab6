"""Published reference scores (small CSV tables) drawn on the score plots for context.

A table is a CSV file; lines starting with ``#`` are comments (the source
citation lives there; a ``# label: ...`` comment gives the short legend text). Columns: ``system`` (e.g. ``Operational IFS``),
``channel`` (WeatherBench2 channel name, e.g. ``geopotential_500``),
``lead_hours``, ``metric`` (``rmse``, ``acc``, ...), ``value``, ``units``.

The packaged table ``reference/weatherbench_5.625deg.csv`` holds the
WeatherBench numbers of Rasp et al. (2020, JAMES 12, e2020MS002203, Table 2):
operational IFS, persistence and climatology RMSE for z500 and t850 at 3 and
5 days, ERA5 5.625 deg, test period 2017-2018. Pass ``"weatherbench"`` to
:func:`load_reference_curves` for it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from weathergnn.data.errors import DataError

__all__ = ["BUILTIN_TABLES", "ReferenceCurve", "load_reference_curves"]

#: Names of the packaged tables -> file name in ``weathergnn/evaluation/reference/``.
BUILTIN_TABLES: dict[str, str] = {"weatherbench": "weatherbench_5.625deg.csv"}
_COLUMNS = ("system", "channel", "lead_hours", "metric", "value", "units")


@dataclass
class ReferenceCurve:
    """One published curve: a system's metric for one channel at a few lead times.

    Attributes:
        system: e.g. ``Operational IFS``.
        channel: e.g. ``geopotential_500``.
        metric: e.g. ``rmse``.
        units: e.g. ``m2 s-2``.
        lead_hours: lead times [n], ascending.
        values: scores [n], in ``units``.
        source: the table it came from.
        label: the table's ``# label:`` comment (e.g. the citation), else its file name.
    """

    system: str
    channel: str
    metric: str
    units: str
    lead_hours: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    source: str = ""
    label: str = ""


def load_reference_curves(table: str | Path) -> list[ReferenceCurve]:
    """Read a reference table (a packaged name such as ``weatherbench``, or a CSV path).

    Returns:
        Curves, one per (system, channel, metric), points sorted by lead time.

    Raises:
        DataError: unknown name / missing file, missing columns, a bad number
            (names the file, the row and the column).
    """
    name = str(table)
    if name in BUILTIN_TABLES:
        res = resources.files("weathergnn.evaluation") / "reference" / BUILTIN_TABLES[name]
        text, where = res.read_text(), f"packaged table {name!r} ({BUILTIN_TABLES[name]})"
    else:
        path = Path(table)
        if not path.is_file():
            raise DataError(f"no such reference table; packaged tables: {sorted(BUILTIN_TABLES)}", file=name,
                            option="reference")
        text, where = path.read_text(), str(path)
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    labels = [ln.split("label:", 1)[1].strip() for ln in text.splitlines()
              if ln.lstrip().startswith("#") and "label:" in ln]
    label = labels[0] if labels else Path(where.split(" (")[-1].rstrip(")")).name
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"reference table lacks columns {missing}; expected {list(_COLUMNS)}", file=where,
                        option="reference")
    curves: dict[tuple[str, str, str], ReferenceCurve] = {}
    for row_no, row in enumerate(reader, start=1):
        try:
            lead, value = float(row["lead_hours"]), float(row["value"])
        except (TypeError, ValueError):
            raise DataError(f"data row {row_no}: lead_hours {row['lead_hours']!r} / value {row['value']!r} "
                            "is not a number", file=where, option="reference") from None
        key = (row["system"].strip(), row["channel"].strip(), row["metric"].strip().lower())
        curve = curves.setdefault(key, ReferenceCurve(*key, units=row["units"].strip(), source=where, label=label))
        curve.lead_hours.append(lead)
        curve.values.append(value)
    for curve in curves.values():
        order = sorted(range(len(curve.lead_hours)), key=curve.lead_hours.__getitem__)
        curve.lead_hours = [curve.lead_hours[i] for i in order]
        curve.values = [curve.values[i] for i in order]
    return list(curves.values())
