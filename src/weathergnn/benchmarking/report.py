"""Results of a benchmark run: header, speed-ups, JSON / CSV / markdown table / PNG plot.

Files (one run, ``<stem> = benchmark_<gpu>_<YYYY-MM-DD>[_runN]``), all written
atomically (temp file beside the target, then ``os.replace``):

- ``<stem>.json``: ``{"header": {...}, "records": [...]}``, one record per
  (case, op, graph, ordering, impl); rewritten after every record, so a run
  cut short keeps what it measured;
- ``<stem>.csv``: the records, columns :data:`CSV_COLUMNS`;
- ``<stem>.md``: the printed tables;
- ``<stem>.png``: grouped bars of median ms per case (log scale).

Speed-up (:func:`add_speedups`): within each group of records of one (case,
op, graph, ordering), ``ours_speedup = ms / ms(reference)`` for every record,
where the reference is ``ours-triton`` when it ran, else ``ours-torch`` (the
name is stored in ``reference_impl``): how many times faster ours is than that
row. Records of our own implementations also get ``speedup_vs``:
``{other impl: ms(other) / ms(this)}``, and ``queued_speedup_vs``, the same
with the launches-queued-ahead times (``queued_ms``,
:mod:`weathergnn.benchmarking.timing`) where both have one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import platform
import re
import subprocess
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

import torch

from weathergnn.atomic import atomic_open

__all__ = [
    "CSV_COLUMNS",
    "REFERENCE_IMPLS",
    "ResultFiles",
    "add_speedups",
    "environment",
    "format_tables",
    "plot_results",
    "write_csv",
    "write_json",
    "write_text",
]

#: Our implementations the speed-ups are computed against, first that ran wins.
REFERENCE_IMPLS = ("ours-triton", "ours-torch")

CSV_COLUMNS = (
    "case", "op", "graph", "ordering", "impl", "status", "device", "dtype", "latent",
    "num_src", "num_dst", "num_edges", "warmup", "repeats", "ms", "samples_ms", "host_ms", "queued_ms",
    "queued_samples_ms", "sm_MHz_median", "first_call_s",
    "compile_backend", "compile_s", "peak_GiB",
    "ideal_bytes", "gathered_bytes", "ideal_GBps", "gathered_GBps", "ideal_frac_copy",
    "gathered_frac_copy", "reference_impl", "ours_speedup", "anchor", "anchor_ms", "anchor_peak_GiB",
)


def _git_commit() -> str:
    """$WEATHERGNN_COMMIT when set (a copied working tree may carry a stale .git), else HEAD of the
    repository this file is in (``-dirty`` when modified), else ``unknown``."""
    if os.environ.get("WEATHERGNN_COMMIT"):
        return os.environ["WEATHERGNN_COMMIT"]
    root = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict:
    """Machine and library versions for the results header."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        props = torch.cuda.get_device_properties(device)
        memory_GiB = round(props.total_memory / 2**30, 1)
    else:
        name, memory_GiB = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)", None
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "gpu": name if device.type == "cuda" else None,
        "device_name": name,
        "device_memory_GiB": memory_GiB,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": _version("triton"),
        "torch_geometric": _version("torch_geometric") or _version("torch-geometric"),
        "python": platform.python_version(),
        "git_commit": _git_commit(),
    }


class ResultFiles:
    """Paths of one run's files under ``out_dir``: ``benchmark_<device>_<date>[_runN].{json,csv,md,png}``.

    The stem is chosen once (first free ``_runN``), so rewrites during the run
    go to the same files.
    """

    def __init__(self, out_dir: str | os.PathLike, device_name: str, date: str):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", device_name.lower().split("(")[0]).strip("-") or "device"
        base = f"benchmark_{slug}_{date[:10]}"
        stem, n = base, 1
        while any((self.out_dir / f"{stem}{ext}").exists() for ext in (".json", ".csv")):
            n += 1
            stem = f"{base}_run{n}"
        self.stem = stem

    def path(self, ext: str) -> Path:
        return self.out_dir / f"{self.stem}.{ext}"


def _group_key(r: dict) -> tuple:
    return r["case"], r["op"], r["graph"], r["ordering"]


def add_speedups(records: Sequence[dict]) -> None:
    """Fill ``reference_impl``, ``ours_speedup`` and (ours) ``speedup_vs`` in place (see the module docstring)."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(_group_key(r), []).append(r)
    for group in groups.values():
        ok = {r["impl"]: r for r in group if r["status"] == "ok"}
        ref = next((ok[name] for name in REFERENCE_IMPLS if name in ok), None)
        for r in group:
            r["reference_impl"] = ref["impl"] if ref else None
            r["ours_speedup"] = r["ms"] / ref["ms"] if ref and r["status"] == "ok" else None
            if r["impl"].startswith("ours") and r["status"] == "ok":
                r["speedup_vs"] = {o["impl"]: o["ms"] / r["ms"] for o in ok.values() if o is not r}
                if r.get("queued_ms"):
                    r["queued_speedup_vs"] = {o["impl"]: o["queued_ms"] / r["queued_ms"] for o in ok.values()
                                              if o is not r and o.get("queued_ms")}


def write_json(path: Path, header: dict, records: Sequence[dict]) -> None:
    """``{"header": header, "records": records}`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump({"header": header, "records": list(records)}, f, indent=1, default=str, allow_nan=True)
        f.write("\n")


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ";".join(_csv_value(x) for x in v)
    return str(v)


def write_csv(path: Path, records: Iterable[dict]) -> None:
    """One row per record, columns :data:`CSV_COLUMNS` (lists joined with ``;``), atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in records:
            w.writerow([_csv_value(sm_mhz(r) if c == "sm_MHz_median" else r.get(c)) for c in CSV_COLUMNS])


def _fmt(v, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _gbps(v) -> str:
    return _fmt(v, ".0f" if v is not None and v >= 100 else ".3g")


def _pct(frac):
    return None if frac is None else 100.0 * frac


class _Notes:
    """Long statuses (skip reasons, errors) as numbered notes under a table."""

    def __init__(self):
        self.items: list[str] = []

    def cell(self, status: str) -> str:
        if status in ("ok", "oom") or ":" not in status:
            return status
        kind = status.split(":", 1)[0]
        if status not in self.items:
            self.items.append(status)
        return f"{kind} [{self.items.index(status) + 1}]"

    def text(self) -> str:
        return "\n".join(f"[{i + 1}] {s}" for i, s in enumerate(self.items))


def _main_table(records: Sequence[dict], copy_GBps: float | None) -> str:
    notes = _Notes()
    lines = [
        "| case | graph | impl | ms | queued ms | host ms | SM MHz | ideal GB/s | gathered GB/s | ideal % copy | peak GiB | "
        "compile s | ours x | anchor ms | status |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        if r["case"] == "locality":
            continue
        lines.append(
            f"| {r['case']} | {r['graph']} | {r['impl']} | {_fmt(r.get('ms'), '.3f')} | "
            f"{_fmt(r.get('queued_ms'), '.3f')} | {_fmt(r.get('host_ms'), '.3f')} | {_fmt(sm_mhz(r), '.0f')} | "
            f"{_gbps(r.get('ideal_GBps'))} | {_gbps(r.get('gathered_GBps'))} | "
            f"{_fmt(_pct(r.get('ideal_frac_copy')), '.1f')} | {_fmt(r.get('peak_GiB'), '.2f')} | "
            f"{_fmt(r.get('compile_s'), '.1f')} | {_fmt(r.get('ours_speedup'), '.2f')} | "
            f"{_fmt(r.get('anchor_ms'), '.2f')} | {notes.cell(r['status'])} |"
        )
    copy = f"Copy bandwidth {copy_GBps:.0f} GB/s (read + write), same run. " if copy_GBps else ""
    foot = (f"{copy}GB/s and % copy: sum aggregation only (bytes model in the JSON header). "
            "ours x = row ms / ms of ours-triton (ours-torch where triton did not run): "
            "how many times faster ours is than the row. queued ms: median with the launches queued ahead "
            "behind a spin kernel (GPU time without launch gaps); host ms: median time of the Python call "
            "that launches one step; SM MHz: median SM clock polled (NVML) while the timed samples ran.")
    return "\n".join(lines) + "\n\n" + foot + ("\n\n" + notes.text() if notes.items else "") + "\n"


def sm_mhz(r: dict) -> float | None:
    """Median SM clock (MHz) NVML saw during a record's timed samples, or None where not polled."""
    clocks = r.get("clocks") or {}
    return (clocks.get("sm_MHz") or {}).get("median")


def _with_queued(r: dict) -> str:
    """``"ms (queued ms)"``, or ``"ms"`` where no queued time was taken."""
    q = r.get("queued_ms")
    return _fmt(r.get("ms"), ".3f") + ("" if q is None else f" ({q:.3f})")


def _locality_table(records: Sequence[dict], orderings: Sequence[str]) -> str:
    rows: dict[tuple, dict] = {}
    for r in records:
        if r["case"] != "locality":
            continue
        rows.setdefault((r["op"], r["graph"], r["impl"]), {})[r["ordering"]] = r
    if not rows:
        return ""
    notes = _Notes()
    head = "| op | graph | impl | " + " | ".join(f"{o} ms" for o in orderings) + " |"
    lines = ["Locality (mesh node ordering), median ms (with the launches queued ahead):", "", head, "|---|---|---|" + "---:|" * len(orderings)]
    for (op, graph, impl), by_order in rows.items():
        cells = []
        for o in orderings:
            r = by_order.get(o)
            ok = r is not None and r["status"] == "ok"
            cells.append("-" if r is None else (_with_queued(r) if ok else notes.cell(r["status"])))
        lines.append(f"| {op} | {graph} | {impl} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + ("\n\n" + notes.text() if notes.items else "") + "\n"


def format_tables(header: dict, records: Sequence[dict]) -> str:
    """The results as markdown: main table, then the locality table."""
    title = (f"WeatherGNN benchmark on {header.get('device_name')} ({header.get('date')}), "
             f"grid {header['options']['grid_deg']} deg, refinement {header['options']['refinement']}, "
             f"latent {header['options']['latent']}, batch 1, median of {header['options']['repeats']}")
    parts = [title, "", _main_table(records, header.get("copy_GBps"))]
    loc = _locality_table(records, header.get("locality_orderings", ()))
    if loc:
        parts += [loc]
    return "\n".join(parts)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def plot_results(path: Path, header: dict, records: Sequence[dict]) -> None:
    """PNG of grouped bars: one panel per case, groups = edge set (or op/edge set), bars = implementation.

    Only records with status ``ok`` are drawn; the y axis (median ms) is logarithmic.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    cases = list(dict.fromkeys(r["case"] for r in records))
    impls = list(dict.fromkeys(r["impl"] for r in records))
    palette = [f"C{i}" for i in range(10)] + ["black", "olive", "navy", "maroon", "teal", "gold"]
    color = {name: palette[i % len(palette)] for i, name in enumerate(impls)}  # one colour per impl
    fig = Figure(figsize=(14, 3.6 * max(len(cases), 1)), layout="constrained")
    axes = fig.subplots(max(len(cases), 1), 1, squeeze=False)[:, 0]
    for ax, case in zip(axes, cases):
        rs = [r for r in records if r["case"] == case and r["status"] == "ok"]
        if case == "locality":
            group_of = lambda r: f"{r['op']}\n{r['graph']}"  # noqa: E731
            series_of = lambda r: f"{r['impl']} {r['ordering']}"  # noqa: E731
        else:
            group_of = lambda r: r["graph"]  # noqa: E731
            series_of = lambda r: r["impl"]  # noqa: E731
        groups = list(dict.fromkeys(group_of(r) for r in records if r["case"] == case))
        series = list(dict.fromkeys(series_of(r) for r in rs))
        width = 0.8 / max(len(series), 1)
        hatches = {o: h for o, h in zip(header.get("locality_orderings", ()), ("//", "..", ""))}
        for k, s in enumerate(series):
            xs, ys = [], []
            for r in rs:
                if series_of(r) == s:
                    xs.append(groups.index(group_of(r)) + (k - (len(series) - 1) / 2) * width)
                    ys.append(r["ms"])
            first = next(r for r in rs if series_of(r) == s)
            hatch = hatches.get(first["ordering"], "") if case == "locality" else ""
            ax.bar(xs, ys, width=width, label=s, color=color[first["impl"]], hatch=hatch, edgecolor="white")
        ax.set_xticks(range(len(groups)), groups)
        ax.set_yscale("log")
        ax.set_ylabel("median ms (log)")
        ax.set_title(f"{case}: forward + backward" + (" + AdamW step" if case == "step" else ""))
        if series:
            ax.legend(fontsize=7, ncols=1 + len(series) // 8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"WeatherGNN benchmark: {header.get('device_name')}, {header.get('date', '')[:10]}, "
                 f"grid {header['options']['grid_deg']} deg, refinement {header['options']['refinement']}, "
                 f"latent {header['options']['latent']}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
