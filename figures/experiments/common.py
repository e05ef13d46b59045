"""Shared plumbing for the experiments: the run context, seeds, timing on the chosen device, provenance, JSON out.

Everything torch-related is imported lazily, inside functions.
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


@dataclass
class Ctx:
    """What every experiment gets: the resolved device, the size switch, the seed, where to write."""

    device: str  # "cpu" or "cuda", resolved once by runs.py
    quick: bool
    seed: int
    out: Path
    model_path: str | None = None  # local all-MiniLM-L6-v2 folder; None = the installed package
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


PROVENANCE_KEYS = (
    "experiment", "model", "steps", "seed", "device", "device_name", "cpu_threads", "versions",
    "wall_time_s", "date", "quick", "claim",
)


def write_data(ctx: Ctx, stem: str, *, model: str, steps: int, claim: str, data: dict, packages=()) -> Path:
    """Write ``figures/data/<stem>.json``: provenance keys first, then the measurements."""
    doc = {
        "experiment": ctx.name,
        "model": model,
        "steps": int(steps),
        "seed": ctx.seed,
        "device": ctx.device,
        "device_name": device_name(ctx.device),
        "cpu_threads": ctx.threads,
        "versions": versions(*packages),
        "wall_time_s": round(time.perf_counter() - ctx.t0, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": ctx.quick,
        "claim": claim,
        "command": "python figures/runs.py " + " ".join(sys.argv[1:]),
    }
    clash = set(doc) & set(data)
    assert not clash, f"measurement keys clash with provenance: {clash}"
    doc.update(rounded(data))
    ctx.out.mkdir(parents=True, exist_ok=True)
    path = ctx.out / f"{stem}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    ctx.log(f"wrote {path.name} ({path.stat().st_size / 1024:.1f} KB)")
    return path
