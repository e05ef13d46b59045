"""Benchmark the build: N synthetic cards with formulas and code, cold and after editing one card.

    python benchmarks/bench_build.py [--sizes 100,1000,10000]

Each build runs as its own process (`python build.py build`), as a user runs it, so start-up is counted. Prints
seconds, cards per second and peak memory (largest resident set of the build process or one of its workers).
Targets (issue #2, 2-core machine): 10,000 cards cold < 6 s; rebuild after editing one card < 1.5 s.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARDS_PER_FILE = 50

CARD = """# card: syn-{i}
tags: [bench]

## Front
第 {i} 题：写出 softmax 与交叉熵，并说明 $\\epsilon$ 的位置 (card {i})。

## Back
$$\\mathrm{{softmax}}(z)_j = \\frac{{e^{{z_j - m}}}}{{\\sum_{{k=1}}^{{K}} e^{{z_k - m}}}},\\quad m = \\max_k z_k$$

交叉熵 $L = -\\sum_j y_j \\log p_j$，BN 为 $\\hat x = (x-\\mu)/\\sqrt{{\\sigma^2+\\epsilon}}$。

```python
import numpy as np

def softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)  # card {i}
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
```

## Extra
- 减去最大值防止 **overflow**；结果不变。
- 参考 $\\log\\sum\\exp$ 技巧。

# cloze: syn-{i}-c
数值稳定的 softmax 先减去 {{{{c1::$\\max_k z_k$}}}}，再做 {{{{c2::`np.exp`}}}} (card {i})。

"""


def write_project(root: Path, n: int) -> None:
    cards = root / "cards"
    cards.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.ankideck]\nout = "dist/bench.apkg"\n', "utf-8")
    (cards / "deck.yaml").write_text("name: Bench\nnamespace: bench\n", "utf-8")
    notes_per_card_block = 2
    blocks = n // notes_per_card_block
    for start in range(0, blocks, CARDS_PER_FILE):
        text = "".join(CARD.format(i=i) for i in range(start, min(start + CARDS_PER_FILE, blocks)))
        (cards / f"part-{start // CARDS_PER_FILE:04d}.md").write_text(text, "utf-8")


def timed_build(root: Path) -> tuple[float, float]:
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "build", "--quiet"], cwd=root,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"build failed:\n{result.stdout}\n{result.stderr}")
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return seconds, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated numbers of notes")
    args = parser.parse_args()
    print(f"{'notes':>7} {'build':<14} {'seconds':>8} {'notes/s':>9} {'peak MB':>8}")
    for n in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_project(root, n)
            runs = [("cold", timed_build(root))]
            runs.append(("warm, no edit", timed_build(root)))
            first = root / "cards" / "part-0000.md"
            first.write_text(first.read_text("utf-8").replace("第 0 题", "第 0 题（改）"), "utf-8")
            runs.append(("one card edited", timed_build(root)))
            for label, (seconds, peak) in runs:
                print(f"{n:>7} {label:<14} {seconds:>8.2f} {n / seconds:>9.0f} {peak:>8.0f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
