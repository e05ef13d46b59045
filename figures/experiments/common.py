"""Shared plumbing for the experiments: the run context, seeds, timing on the chosen device, the typed result, the
size tables, provenance and the JSON out.

Each experiment module ``figures/experiments/<name>.py`` has ``SIZES = {"quick": {...}, "full": {...}}`` (and
``"full-cuda"`` where a GPU affords more) and ``run(ctx, **row) -> Measurement``; its name is the experiment's name
everywhere: the key in runs.py's EXPERIMENTS, the data file ``figures/data/<name>.json``, the ``experiment`` field.

This module is imported by runs.py before torch is known to be there: it imports only the standard library at the
top; the few torch helpers of Ctx import torch when called.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIZE_NAMES = ("quick", "full")   # a "<name>-<device>" row replaces "<name>" on that device ("full-cuda")


@dataclass
class Measurement:
    """What an experiment measured: ``data`` is written after the provenance; the rest is provenance."""

    model: str                           # what ran, in a few words (the figures' footers show it)
    claim: str                           # the published claim the measurement tests
    data: dict                           # the measurements (keys must not clash with provenance keys)
    steps: int | None = None             # optimisation steps, where the experiment trains; None where it does not
    packages: tuple[str, ...] = ()       # libraries beyond numpy and torch whose versions matter


def size(sizes: dict[str, dict], quick: bool, device: str) -> tuple[str, dict]:
    """The row of an experiment's SIZES table for this run: (its name, its values)."""
    base = SIZE_NAMES[0] if quick else SIZE_NAMES[1]
    name = f"{base}-{device}" if f"{base}-{device}" in sizes else base
    return name, sizes[name]


@dataclass
class Ctx:
    """What every experiment gets: the resolved device, the size switch, the seed, where to write."""

    device: str  # "cpu" or "cuda", resolved once by runs.py
    quick: bool
    seed: int
    out: Path
    model_path: str | None = None  # local all-MiniLM-L6-v2 folder; None = the installed package
    size: str = ""  # the row of the SIZES table this run uses ("quick", "full", "full-cuda")
    cards_dir: Path = REPO / "cards"
    name: str = ""
    index: str = ""  # "[3/9]" for progress lines
    threads: int = 0  # torch CPU threads this experiment ran with
    t0: float = field(default_factory=time.perf_counter)

    # -- seeds in one place -------------------------------------------------------------------------------------
    def seed_all(self, offset: int = 0) -> int:
        import random

        import numpy as np
        import torch

        s = self.seed + offset
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)  # also seeds CUDA
        return s

    def torch_device(self):
        import torch

        return torch.device(self.device)

    # -- progress -----------------------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(f"{self.index} {self.name}: {msg}  ({time.perf_counter() - self.t0:.1f}s)", flush=True)

    def every(self, step: int, total: int, n: int = 4) -> bool:
        """True on about ``n`` evenly spaced steps of a loop, and on the last one: when to print progress."""
        return step == total - 1 or (total >= n and step % max(1, total // n) == 0 and step > 0)

    # -- timing on the device -----------------------------------------------------------------------------------
    def sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def time_fn(self, fn, reps: int = 5, warmup: int = 1, budget_s: float | None = None) -> float:
        """Median seconds of ``fn()`` over ``reps`` calls after ``warmup`` calls, synchronised on CUDA.

        ``budget_s`` stops early (after at least one timed call) once that much time has been spent.
        """
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        start = time.perf_counter()
        for _ in range(reps):
            self.sync()
            t = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t)
            if budget_s is not None and time.perf_counter() - start > budget_s:
                break
        times.sort()
        return times[len(times) // 2]


def device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{name} ({os.cpu_count()} cores)"


def versions(*packages: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in ("numpy", "torch", *packages):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def rounded(x, sig: int = 4):
    """Floats to ``sig`` significant digits, recursively (keeps the committed files small and diffs readable)."""
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return None  # JSON has no NaN; a diverged run reads as null
        return float(f"{x:.{sig}g}")
    if isinstance(x, dict):
        return {str(k): rounded(v, sig) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [rounded(v, sig) for v in x]
    try:  # numpy / torch scalars and arrays
        import numpy as np

        a = np.asarray(x)
        if a.ndim == 0:
            v = a.item()
            return rounded(v, sig) if isinstance(v, float) else v
        return rounded(a.tolist(), sig)
    except Exception:  # pragma: no cover - last resort
        return str(x)


# In every data file; "config" (the SIZES row, verbatim) only in files written since the tables exist.
PROVENANCE_KEYS = (
    "experiment", "model", "steps", "seed", "device", "device_name", "cpu_threads", "versions",
    "wall_time_s", "date", "quick", "claim",
)


def write_data(ctx: Ctx, result: Measurement, config: dict) -> Path:
    """Write ``<out>/<experiment>.json``: provenance first (with ``config``, the SIZES row used), then the data."""
    doc = {
        "experiment": ctx.name,
        "model": result.model,
        "steps": result.steps,
        "seed": ctx.seed,
        "device": ctx.device,
        "device_name": device_name(ctx.device),
        "cpu_threads": ctx.threads,
        "versions": versions(*result.packages),
        "wall_time_s": round(time.perf_counter() - ctx.t0, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": ctx.quick,
        "claim": result.claim,
        "command": "python figures/runs.py " + " ".join(sys.argv[1:]),
        "config": {"size": ctx.size, **config},
    }
    clash = set(doc) & set(result.data)
    if clash:
        raise ValueError(f"measurement keys clash with provenance: {sorted(clash)}")
    doc.update(rounded(result.data))
    ctx.out.mkdir(parents=True, exist_ok=True)
    path = ctx.out / f"{ctx.name}.json"
    path.write_text(dumps(doc) + "\n", encoding="utf-8")
    ctx.log(f"wrote {path.name} ({path.stat().st_size / 1024:.1f} KB)")
    return path


def dumps(value, indent: str = "") -> str:
    """JSON with one key per line and each list of numbers on one line: diffs show which measurement changed,
    and the files stay small (a (T, T) map is T lines)."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + dumps(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
