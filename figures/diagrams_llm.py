"""Computed diagrams of part 5 (LLM systems, alignment, RAG, multimodal): one ``name(axes, data)`` per figure in
NAMES.md.

Same conventions as diagrams.py, whose drawing helpers are shared: theme colours only ("C0".."C7" and the rcParams
text and background colours), short labels for an image read about 380 px wide. Numbers come from the formulas the
cards quote (roofline, ZeRO, the pipeline schedules are simulated from their dependencies, the batching timelines
from a slot scheduler), and the block diagrams follow the papers' figures.
"""

import matplotlib as mpl
import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.patches import Patch, Rectangle

from .diagrams import _arrow, _box, _ink, _label_on_line, _schematic, _tint


def _background():
    return mpl.rcParams["axes.facecolor"]


def _cell(ax, x, y, width, height, color, amount=0.3, text=None, fontsize=10, edge=None, **text_kw):
    """A filled rectangle with its lower-left corner at (x, y) and optional centred text."""
    ax.add_patch(Rectangle((x, y), width, height, facecolor=_tint(color, amount), edgecolor=edge or color,
                           linewidth=1.0))
    if text is not None:
        ax.text(x + width / 2, y + height / 2, text, ha="center", va="center", fontsize=fontsize, **text_kw)


# --- inference: roofline, speculative decoding, PagedAttention, batching ---------------------------------------


def _linear_intensity(tokens, d_in=8192, d_out=8192):
    """FLOP per byte of an fp16 linear layer applied to ``tokens`` tokens: 2·B·d·d' / (2·d·d' + 2·B·(d + d'))."""
    return 2 * tokens * d_in * d_out / (2 * d_in * d_out + 2 * tokens * (d_in + d_out))


def roofline(ax, data):
    """Attainable throughput min(π, I·β) of an A100 (bf16 dense 312 TFLOPS, HBM 2.0 TB/s) against arithmetic
    intensity, with an 8192 × 8192 fp16 linear layer in decode (B = 1 and 64 sequences) and in prefill (4096 tokens)."""
    peak, bandwidth = 312.0, 2.0  # TFLOPS, TB/s: I FLOP/B × β TB/s = I·β TFLOPS
    ridge = peak / bandwidth
    intensity = np.logspace(-1, 4, 400)
    attainable = np.minimum(peak, intensity * bandwidth)
    ax.axvspan(0.1, ridge, color=_tint("C0", 0.12), linewidth=0, zorder=0)
    ax.axvspan(ridge, 1e4, color=_tint("C1", 0.12), linewidth=0, zorder=0)
    ax.loglog(intensity, attainable, color=_ink(), linewidth=2.2)
    ax.axvline(ridge, color=_tint(_ink(), 0.5), linestyle="--", linewidth=1)
    ax.text(ridge * 1.12, 0.25, f"ridge $\\pi/\\beta$\n$\\approx {ridge:.0f}$ FLOP/B", fontsize=10, va="bottom")
    ax.text(0.13, 40, "memory-bound\n$I\\cdot\\beta$", color="C0", fontsize=10.5, va="center")
    ax.text(8e3, 12, "compute-\nbound $\\pi$", color="C1", fontsize=10.5, va="center", ha="right")

    points = [  # (label, tokens per step, colour, text offset in points)
        ("decode $B=1$", 1, "C3", (8, -22), "left"),
        ("decode $B=64$", 64, "C4", (-10, 4), "right"),
        ("prefill 4096 tok", 4096, "C2", (22, 10), "right"),
    ]
    for label, tokens, color, offset, align in points:
        i = _linear_intensity(tokens)
        y = min(peak, i * bandwidth)
        ax.plot(i, y, "o", color=color, markersize=8, zorder=3)
        ax.annotate(f"{label}\n$I\\approx{i:.0f}$, {y:.0f} TFLOPS", (i, y), xytext=offset,
                    textcoords="offset points", fontsize=10, color=color, ha=align)
    ax.set(xlim=(0.1, 1e4), ylim=(0.1, 1500), xlabel="arithmetic intensity $I$ (FLOP/B)",
           ylabel="attainable TFLOPS")
    ax.set_title("A100: $\\pi$ = 312 TFLOPS bf16, $\\beta$ = 2.0 TB/s", fontsize=11.5)
    ax.text(9e3, 0.13, "8192×8192 fp16 linear layer", fontsize=10, ha="right")


def speculative_decoding(ax, data):
    """One round of speculative sampling with γ = 4: the draft proposes, the target scores all positions in one
    pass, tokens are accepted while u < p(x)/q(x), the first rejection is resampled from norm(max(0, p − q))."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    guesses = ["cat", "sat", "down", "the"]
    q = [0.50, 0.40, 0.50, 0.30]  # draft probability of its own guess
    p = [0.60, 0.30, 0.10]  # target probability of the same token (x4 is never checked)
    u = [0.55, 0.42, 0.71]  # the uniform draws of the acceptance test
    xs = 0.25 + 0.165 * np.arange(5)
    width = 0.145

    ax.text(0.01, 0.96, "1  draft $M_q$ guesses $\\gamma = 4$ tokens", fontsize=10.5, va="center")
    _box(ax, 0.09, 0.87, "The", color="C7", width=0.13, height=0.07, fontsize=10.5)
    for k, (x, word) in enumerate(zip(xs, guesses)):
        _box(ax, x, 0.87, word, color="C0", width=width, height=0.07, fontsize=10.5)
        ax.text(x, 0.805, f"{q[k]:.2f}", ha="center", va="center", fontsize=10)
    ax.text(0.09, 0.805, "$q(x)$", ha="center", va="center", fontsize=10)

    ax.text(0.01, 0.73, "2  target $M_p$: one pass, 5 positions", fontsize=10.5, va="center")
    _box(ax, 0.57, 0.655, "", color="C1", width=0.8, height=0.07)
    for k, x in enumerate(xs):
        ax.text(x, 0.655, f"$p_{k + 1}$", ha="center", va="center", fontsize=10.5)
    for k, x in enumerate(xs[:3]):
        ax.text(x, 0.59, f"{p[k]:.2f}", ha="center", va="center", fontsize=10)
    ax.text(0.09, 0.59, "$p(x)$", ha="center", va="center", fontsize=10)

    ax.text(0.01, 0.515, "3  accept while $u < \\min(1,\\ p/q)$", fontsize=10.5, va="center")
    ax.text(0.09, 0.45, "$\\min(1,\\frac{p}{q})$", ha="center", va="center", fontsize=10)
    ax.text(0.09, 0.39, "$u$", ha="center", va="center", fontsize=10)
    for k, x in enumerate(xs[:4]):
        if k == len(p):
            ax.text(x, 0.42, "dropped", ha="center", va="center", fontsize=10, color=_tint(_ink(), 0.6))
            break
        ratio = min(1.0, p[k] / q[k])
        accepted = u[k] < ratio
        ax.text(x, 0.45, f"{ratio:.2f}", ha="center", va="center", fontsize=10)
        ax.text(x, 0.39, f"{u[k]:.2f} " + ("✓" if accepted else "✗"), ha="center", va="center", fontsize=10,
                color="C2" if accepted else "C3")

    ax.text(0.01, 0.31, "4  at the first ✗ resample from", fontsize=10.5, va="center")
    ax.text(0.99, 0.245, "$\\mathrm{norm}(\\max(0,\\ p_3-q_3))$", fontsize=10.5, va="center", ha="right",
            color="C3")
    _box(ax, 0.09, 0.15, "The", color="C7", width=0.13, height=0.07, fontsize=10.5)
    for k, word in enumerate(["cat", "sat", "on"]):
        _box(ax, xs[k], 0.15, word, color="C2" if k < 2 else "C3", width=width, height=0.07, fontsize=10.5)
    ax.text(xs[3] - width / 2, 0.15, "3 tokens from\n1 target call", fontsize=10.5, va="center")
    ax.text(0.5, 0.04, "(had all 4 passed: a 5th token from $p_5$)", ha="center", va="center", fontsize=10)


def paged_attention(ax, data):
    """Two sequences' KV cache in blocks of 4 tokens: each block table maps logical blocks to physical blocks that
    need not be contiguous; only a sequence's last block is partly empty."""
    block = 4
    sequences = {
        "A": (["The", "cat", "sat", "on", "the", "mat", "."], [5, 1], "C0"),
        "B": (["Hi", "how", "are", "you", "?"], [2, 6], "C1"),
    }
    physical_blocks = 8
    cell_w, cell_h = 0.095, 0.075
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    ax.text(0.2, 0.975, "logical blocks", ha="center", va="center", fontsize=10.5)
    ax.text(0.505, 0.975, "table", ha="center", va="center", fontsize=10.5)
    ax.text(0.8, 0.975, "physical KV blocks", ha="center", va="center", fontsize=10.5)

    phys_x = 0.64
    phys_top = 0.91
    phys_step = 0.112
    contents = {}
    for name, (tokens, table, color) in sequences.items():
        for logical, phys in enumerate(table):
            contents[phys] = (tokens[logical * block:(logical + 1) * block], color)
    for b in range(physical_blocks):
        y = phys_top - b * phys_step - cell_h
        ax.text(phys_x + block * 0.082 + 0.01, y + cell_h / 2, f"{b}", ha="left", va="center", fontsize=10)
        words, color = contents.get(b, ([], None))
        for slot in range(block):
            if slot < len(words):
                _cell(ax, phys_x + slot * 0.082, y, 0.082, cell_h, color, text=words[slot])
            else:
                _cell(ax, phys_x + slot * 0.082, y, 0.082, cell_h, _ink(), amount=0.06,
                      edge=_tint(_ink(), 0.35))

    row = 0
    for name, (tokens, table, color) in sequences.items():
        ax.text(0.0, 0.9 - row * 0.125 + 0.005, f"seq {name}", fontsize=10.5, va="top", color=color)
        row += 0.35
        for logical, phys in enumerate(table):
            y = 0.9 - row * 0.125 - cell_h
            words = tokens[logical * block:(logical + 1) * block]
            for slot in range(block):
                if slot < len(words):
                    _cell(ax, 0.01 + slot * cell_w, y, cell_w, cell_h, color, text=words[slot])
                else:
                    _cell(ax, 0.01 + slot * cell_w, y, cell_w, cell_h, _ink(), amount=0.06,
                          edge=_tint(_ink(), 0.35))
            _label_on_line(ax, 0.505, y + cell_h / 2, f"{logical}→{phys}", fontsize=10, color=color)
            target_y = phys_top - phys * phys_step - cell_h / 2
            _arrow(ax, (0.56, y + cell_h / 2), (phys_x - 0.006, target_y), color=color, linewidth=1.3)
            row += 1
        row += 0.25
    ax.text(0.0, 0.02, "block = 4 tokens here\n(vLLM: 16); gaps only\nin a last block",
            fontsize=10, va="bottom")


def _schedule_slots(lengths, slots, continuous):
    """(request, slot, start, end) per request, in decode steps; static batching admits a new batch only when the
    whole previous batch has finished, continuous batching refills a slot the step after it frees."""
    runs = []
    if continuous:
        free = [0] * slots
        for r, length in enumerate(lengths):
            slot = int(np.argmin(free))
            runs.append((r, slot, free[slot], free[slot] + length))
            free[slot] += length
    else:
        start = 0
        for first in range(0, len(lengths), slots):
            batch = lengths[first:first + slots]
            for slot, length in enumerate(batch):
                runs.append((first + slot, slot, start, start + length))
            start += max(batch)
    return runs


def batching_timeline(axes, data):
    """Eight requests with different output lengths on a 4-slot batch: static (request-level) batching leaves
    finished slots idle until the longest request ends; continuous batching refills them every iteration."""
    lengths = [3, 8, 5, 2, 6, 4, 7, 3]
    slots = 4
    colors = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    panels = {"static batching": False, "continuous batching": True}
    spans = {title: _schedule_slots(lengths, slots, cont) for title, cont in panels.items()}
    horizon = max(end for runs in spans.values() for *_, end in runs)
    for ax, (title, runs) in zip(axes, spans.items()):
        end = max(e for *_, e in runs)
        ax.add_patch(Rectangle((0, -0.5), end, slots, facecolor="none", hatch="///",
                               edgecolor=_tint(_ink(), 0.22), linewidth=0))
        for r, slot, start, stop in runs:
            ax.add_patch(Rectangle((start, slot - 0.4), stop - start, 0.8, facecolor=_tint(colors[r], 0.45),
                                   edgecolor=colors[r], linewidth=1.2))
            ax.text((start + stop) / 2, slot, f"R{r + 1}", ha="center", va="center", fontsize=10)
        busy = sum(lengths)
        ax.set_title(f"{title}: {end} steps, slots busy {busy / (end * slots):.0%}", fontsize=11)
        ax.set(xlim=(0, horizon + 0.2), ylim=(slots - 0.5, -0.5), ylabel="batch slot")
        ax.set_yticks(range(slots), [str(s) for s in range(slots)])
        ax.grid(False)
    axes[0].axvline(8, color=_ink(), linewidth=1.2, linestyle="--")
    axes[0].set_xlabel("R5–R8 wait for the longest (R2)", fontsize=10.5)
    for ax in axes:
        ax.xaxis.set_major_locator(mpl.ticker.MultipleLocator(3))
    axes[1].set_xlabel("decode iteration (hatched: idle slot)")


# --- training systems: pipeline schedules and ZeRO ---------------------------------------------------------------


def _pipeline_schedule(stages, micro_batches, order, t_forward=1, t_backward=2):
    """Simulate a pipeline: every stage runs its ops ("F"/"B", micro-batch) in ``order(stage)`` as soon as the
    stage is free and the op's input is ready (F after the previous stage's F, B after the next stage's B).
    Returns {(stage, kind, mb): (start, end)}."""
    done = {}
    queues = {s: list(order(s)) for s in range(stages)}
    clock = {s: 0 for s in range(stages)}
    while any(queues.values()):
        progressed = False
        for s in range(stages):
            if not queues[s]:
                continue
            kind, mb = queues[s][0]
            if kind == "F":
                dependency = (s - 1, "F", mb) if s > 0 else None
            else:
                dependency = (s + 1, "B", mb) if s < stages - 1 else (s, "F", mb)
            if dependency is not None and dependency not in done:
                continue
            ready = done[dependency][1] if dependency else 0
            start = max(clock[s], ready)
            end = start + (t_forward if kind == "F" else t_backward)
            done[(s, kind, mb)] = (start, end)
            clock[s] = end
            queues[s].pop(0)
            progressed = True
        if not progressed:
            raise RuntimeError("pipeline schedule deadlocked")
    return done


def _gpipe_order(stages, micro_batches):
    return lambda s: [("F", j) for j in range(micro_batches)] + [("B", j) for j in range(micro_batches)]


def _one_f_one_b_order(stages, micro_batches):
    def order(s):
        warmup = min(stages - s - 1, micro_batches)
        ops = [("F", j) for j in range(warmup)]
        forward, backward = warmup, 0
        while forward < micro_batches:
            ops += [("F", forward), ("B", backward)]
            forward += 1
            backward += 1
        ops += [("B", j) for j in range(backward, micro_batches)]
        return ops

    return order


def _peak_in_flight(done, stage, micro_batches):
    """Most micro-batches whose forward has run on ``stage`` but whose backward has not finished."""
    events = sorted([(done[(stage, "F", j)][0], 1) for j in range(micro_batches)]
                    + [(done[(stage, "B", j)][1], -1) for j in range(micro_batches)])
    level, peak = 0, 0
    for _, change in events:
        level += change
        peak = max(peak, level)
    return peak


def pipeline_bubble(axes, data):
    """GPipe and 1F1B for p = 4 stages and m = 6 micro-batches (t_b = 2 t_f), simulated from the dependencies:
    same length (m + p − 1)(t_f + t_b), same bubble (p − 1)/(m + p − 1); 1F1B keeps at most p micro-batches'
    activations on the first stage instead of m."""
    stages, micro_batches = 4, 6
    schedules = {
        "GPipe": _gpipe_order(stages, micro_batches),
        "1F1B": _one_f_one_b_order(stages, micro_batches),
    }
    for ax, (title, order) in zip(axes, schedules.items()):
        done = _pipeline_schedule(stages, micro_batches, order)
        total = max(end for _, end in done.values())
        ax.add_patch(Rectangle((0, -0.5), total, stages, facecolor="none", hatch="///",
                               edgecolor=_tint(_ink(), 0.22), linewidth=0))
        for (s, kind, mb), (start, end) in done.items():
            color = "C0" if kind == "F" else "C1"
            ax.add_patch(Rectangle((start, s - 0.42), end - start, 0.84, facecolor=_tint(color, 0.5 if kind == "F"
                                   else 0.35), edgecolor=color, linewidth=1.0))
            ax.text((start + end) / 2, s, f"{mb + 1}", ha="center", va="center", fontsize=10)
        busy = stages * micro_batches * 3
        peak = _peak_in_flight(done, 0, micro_batches)
        ax.set_title(f"{title}: bubble {1 - busy / (stages * total):.0%}, stage 1 keeps {peak} acts",
                     fontsize=11)
        ax.set(xlim=(0, total), ylim=(stages - 0.5, -0.5), ylabel="stage")
        ax.set_yticks(range(stages), [str(s + 1) for s in range(stages)])
        ax.grid(False)
    axes[1].set_xlabel(f"time ($t_f = 1$, $t_b = 2$);  $p = {stages}$, $m = {micro_batches}$\n"
                       f"bubble $(p-1)/(m+p-1) = {stages - 1}/{micro_batches + stages - 1}$", fontsize=10.5)
    axes[0].legend(handles=[Patch(facecolor=_tint("C0", 0.5), edgecolor="C0", label="forward"),
                            Patch(facecolor=_tint("C1", 0.35), edgecolor="C1", label="backward")],
                   loc="lower center", bbox_to_anchor=(0.5, 1.16), ncols=2, frameon=False, fontsize=10)


def zero_memory(ax, data):
    """Model-state memory per GPU (GB) for plain data parallelism and ZeRO-1/2/3 with mixed-precision Adam (K = 12),
    Ψ = 7.5B parameters and N_d = 64 GPUs (the ZeRO paper's example)."""
    psi, n_d, k = 7.5e9, 64, 12
    stages = {  # (fp16 parameters, fp16 gradients, optimizer states) in bytes per GPU
        "DP": (2 * psi, 2 * psi, k * psi),
        "ZeRO-1\n$P_{os}$": (2 * psi, 2 * psi, k * psi / n_d),
        "ZeRO-2\n$P_{os+g}$": (2 * psi, 2 * psi / n_d, k * psi / n_d),
        "ZeRO-3\n$P_{os+g+p}$": (2 * psi / n_d, 2 * psi / n_d, k * psi / n_d),
    }
    parts = ["params (2Ψ)", "grads (2Ψ)", "Adam (12Ψ)"]
    positions = np.arange(len(stages))
    bottom = np.zeros(len(stages))
    for i, part in enumerate(parts):
        values = np.array([parts_bytes[i] for parts_bytes in stages.values()]) / 1e9
        ax.bar(positions, values, 0.6, bottom=bottom, color=f"C{i}", label=part)
        bottom += values
    for x, total in zip(positions, bottom):
        ax.text(x, total + 2, f"{total:.1f}".removesuffix(".0") + " GB", ha="center", va="bottom", fontsize=10.5)
    ax.set_xticks(positions, list(stages))
    ax.set(ylim=(0, 140), ylabel="GB per GPU")
    ax.set_title("$\\Psi$ = 7.5B, $N_d$ = 64, mixed-precision Adam", fontsize=11.5)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right", fontsize=10)


# --- alignment: which models each algorithm needs --------------------------------------------------------------


def rlhf_dataflows(ax, data):
    """PPO, GRPO and DPO side by side: the models each keeps in memory (trained or frozen) and where its training
    data comes from (online samples of the policy, or offline preference pairs)."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    algorithms = [
        ("PPO", "prompt → policy samples 1 answer → RM score,\nKL to ref per token → GAE advantage (critic)",
         [("policy $\\pi_\\theta$", True), ("critic $V_\\phi$", True), ("reward\nmodel", False),
          ("ref $\\pi_{ref}$", False)]),
        ("GRPO", "prompt → $G$ answers → rewards → $A_i = (r_i - \\bar r)/\\sigma_r$;\nno critic, KL in the loss",
         [("policy $\\pi_\\theta$", True), ("reward:\nRM or rule", False), ("ref $\\pi_{ref}$", False)]),
        ("DPO", "offline pairs $(x, y_w, y_l)$ → log-ratio loss;\nno sampling, no reward model",
         [("policy $\\pi_\\theta$", True), ("ref $\\pi_{ref}$", False)]),
    ]
    top = 0.985
    height = 0.305
    for name, flow, models in algorithms:
        ax.text(0.0, top, f"{name}: {len(models)} models", fontsize=11.5, fontweight="bold", va="top")
        ax.text(0.0, top - 0.06, flow, fontsize=10, va="top")
        y = top - 0.225
        for k, (label, trained) in enumerate(models):
            color = "C0" if trained else "C7"
            patch, _ = _box(ax, 0.125 + 0.25 * k, y, label, color=color, width=0.235, height=0.1, fontsize=10)
            if not trained:
                patch.set_linestyle("--")
        top -= height + 0.02
    ax.text(1.0, 0.005, "solid: trained   dashed: frozen", fontsize=10, ha="right", va="bottom")


# --- FlashAttention tiling -------------------------------------------------------------------------------------


def flashattention_tiling(ax, data):
    """FlashAttention v1's forward: S = QKᵀ is computed tile by tile (outer loop over K/V blocks j, inner loop over
    Q blocks i); only the tiles Q_i, K_j, V_j, O_i and S_ij live in SRAM, and no N × N matrix is written to HBM."""
    blocks = 4
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    size = 0.1  # one tile of the 4 × 4 grid
    left, top = 0.17, 0.83
    current = (2, 1)  # (i, j) being computed
    for j in range(blocks):
        _cell(ax, left + j * size, top + 0.015, size, 0.05, "C1", amount=0.45 if j == current[1] else 0.15,
              text=f"$K_{j + 1}^\\top$", fontsize=10)
    for i in range(blocks):
        _cell(ax, left - 0.015 - 0.07, top - (i + 1) * size, 0.07, size, "C0",
              amount=0.45 if i == current[0] else 0.15, text=f"$Q_{i + 1}$", fontsize=10)
        for j in range(blocks):
            visit = j * blocks + i + 1  # outer loop j, inner loop i
            is_current = (i, j) == current
            done = visit < current[1] * blocks + current[0] + 1
            amount = 0.55 if is_current else (0.2 if done else 0.05)
            _cell(ax, left + j * size, top - (i + 1) * size, size, size, "C2" if (is_current or done) else _ink(),
                  amount=amount, text=str(visit), fontsize=10, edge=_tint(_ink(), 0.45))
    ax.text(left + 2 * size, top + 0.12, "$S = QK^\\top$ in $B_r \\times B_c$ tiles", ha="center", fontsize=10.5)
    ax.text(left + 2 * size, top - blocks * size - 0.05, "number = visit order:\nouter $j$ (K/V), inner $i$ (Q)",
            ha="center", va="top", fontsize=10)

    _box(ax, 0.8, 0.66, "", color="C2", width=0.37, height=0.36)
    ax.text(0.8, 0.805, "SRAM (fast, small)", ha="center", va="center", fontsize=10.5)
    ax.text(0.8, 0.64, "$Q_i,\\ K_j,\\ V_j$\n$O_i,\\ m_i,\\ \\ell_i$\n$S_{ij} = Q_i K_j^\\top$", ha="center",
            va="center", fontsize=10.5)
    _box(ax, 0.5, 0.12, "", color="C4", width=0.98, height=0.2)
    ax.text(0.5, 0.175, "HBM (large, slow)", ha="center", va="center", fontsize=10.5)
    ax.text(0.5, 0.09, "$Q, K, V, O$ ($N \\times d$) and $m, \\ell$ ($N$); never $S$ or $P$ ($N \\times N$)",
            ha="center", va="center", fontsize=10)
    _arrow(ax, (0.72, 0.22), (0.72, 0.475), color="C2")
    ax.text(0.705, 0.35, "load\ntiles", ha="right", va="center", fontsize=10)
    _arrow(ax, (0.88, 0.475), (0.88, 0.22), color="C4")
    ax.text(0.895, 0.35, "write\n$O_i, m_i, \\ell_i$", ha="left", va="center", fontsize=10)


# --- retrieval-augmented generation ----------------------------------------------------------------------------


def rag_pipeline(ax, data):
    """RAG: offline, documents are parsed, chunked, embedded and indexed; online, a query is (optionally) rewritten,
    top-k chunks are retrieved and reranked, and the LLM answers from a prompt that cites them."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    offline = [("documents", "C7"), ("parse, clean", "C0"), ("chunk", "C0"), ("embed\n(bi-encoder)", "C0"),
               ("vector index\n+ BM25 index", "C2")]
    online = [("query", "C7"), ("rewrite\n(optional)", "C1"), ("retrieve top-$k$\ndense / sparse", "C1"),
              ("rerank\n(cross-encoder)", "C1"), ("prompt: query +\nnumbered chunks", "C1"),
              ("LLM answer\nwith citations", "C3")]
    width, height = 0.42, 0.1
    columns = {"offline (build once)": (0.23, offline), "online (per query)": (0.76, online)}
    positions = {}
    for title, (x, steps) in columns.items():
        ax.text(x, 0.975, title, ha="center", va="center", fontsize=11)
        ys = np.linspace(0.87, 0.07, len(online))[:len(steps)]
        for (label, color), y in zip(steps, ys):
            _box(ax, x, y, label, color=color, width=width, height=height, fontsize=10)
        for a, b in zip(ys[:-1], ys[1:]):
            _arrow(ax, (x, a - height / 2), (x, b + height / 2))
        positions[title] = (x, ys)
    index_x, index_ys = positions["offline (build once)"]
    retrieve_x, retrieve_ys = positions["online (per query)"]
    _arrow(ax, (index_x + width / 2, index_ys[-1]), (retrieve_x - width / 2, retrieve_ys[2]), color="C2",
           linewidth=2)


# --- multimodal: CLIP and ViT ----------------------------------------------------------------------------------


def clip_similarity(ax, data):
    """CLIP's N × N cosine-similarity matrix for a batch of N = 6 (image, text) pairs (random unit vectors, each text
    a noisy copy of its image): the diagonal holds the positives, the other N² − N cells are negatives; the image →
    text loss is a softmax over each row, text → image over each column."""
    pairs, dim = 6, 32
    rng = np.random.default_rng(0)
    images = rng.standard_normal((pairs, dim))
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts = images + rng.standard_normal((pairs, dim)) / np.sqrt(dim)  # noise of the same norm as the signal
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    similarity = images @ texts.T
    cmap = LinearSegmentedColormap.from_list("sim", [_tint("C0", 0.05), _tint("C0", 0.75)])
    ax.imshow(similarity, cmap=cmap, vmin=-0.5, vmax=1)
    for (i, j), value in np.ndenumerate(similarity):
        ax.text(j, i, f"{value:.2f}".replace("-0.00", "0.00"), ha="center", va="center", fontsize=10,
                fontweight="bold" if i == j else "normal")
    for k in range(pairs):
        ax.add_patch(Rectangle((k - 0.5, k - 0.5), 1, 1, facecolor="none", edgecolor="C1", linewidth=2.5))
    ax.set_xticks(range(pairs), [f"$T_{k + 1}$" for k in range(pairs)])
    ax.set_yticks(range(pairs), [f"$I_{k + 1}$" for k in range(pairs)])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("cell: $\\cos(u_i, v_j)$; orange: positive pair\n"
                  "image→text: softmax of each row $/\\tau$\ntext→image: softmax of each column $/\\tau$",
                  fontsize=10.5)


def vit_patching(ax, data):
    """ViT's input: an image cut into P × P patches (4 × 4 of them here), read in raster order, each flattened and
    linearly embedded, with a learned [CLS] token in front and a position embedding added to every token."""
    grid = 4
    pixels = 64
    yy, xx = np.mgrid[0:pixels, 0:pixels] / pixels
    sky, sun, ground = (np.array(_tint(c, a)) for c, a in (("C0", 0.35), ("C1", 0.9), ("C2", 0.6)))
    image = np.where((yy > 0.68)[..., None], ground, sky)
    image = np.where((((xx - 0.68) ** 2 + (yy - 0.3) ** 2) < 0.035)[..., None], sun, image)
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    stretch = 1 / 0.85  # the figure's width / height: a square is this much taller in y units
    x0, y0, side = 0.03, 0.44, 0.44
    ax.imshow(image, extent=(x0, x0 + side, y0, y0 + side * stretch), origin="upper", aspect="auto")
    for k in range(grid + 1):
        ax.plot([x0 + k * side / grid] * 2, [y0, y0 + side * stretch], color=_background(), linewidth=2.5)
        ax.plot([x0, x0 + side], [y0 + k * side * stretch / grid] * 2, color=_background(), linewidth=2.5)
    for r in range(grid):
        for c in range(grid):
            ax.text(x0 + (c + 0.5) * side / grid, y0 + (grid - r - 0.5) * side * stretch / grid,
                    f"{r * grid + c + 1}", ha="center", va="center", fontsize=10)
    ax.text(0.5, 0.9, "$H \\times W \\times C$ image,\n$N = HW/P^2$ patches", fontsize=10.5, va="center")
    ax.text(0.5, 0.62, "224×224, $P = 16$:\n$N = 196$ patches,\neach $P^2C = 768$\nvalues", fontsize=10.5,
            va="center")

    step = 0.94 / (grid * grid + 1)
    token_y, token_h = 0.2, step * 0.9 * stretch
    patch_px = pixels // grid
    _cell(ax, 0.03, token_y - token_h / 2, step * 0.9, token_h, "C3", amount=0.5)
    ax.text(0.03 + step * 0.45, token_y + token_h / 2 + 0.015, "CLS", ha="left", va="bottom", fontsize=10)
    for k in range(grid * grid):
        r, c = divmod(k, grid)
        x = 0.03 + (k + 1) * step
        tile = image[r * patch_px:(r + 1) * patch_px, c * patch_px:(c + 1) * patch_px]
        ax.imshow(tile, extent=(x, x + step * 0.9, token_y - token_h / 2, token_y + token_h / 2), origin="upper",
                  aspect="auto")
    for k in range(0, grid * grid + 1, 4):
        ax.text(0.03 + k * step + step * 0.45, token_y - token_h / 2 - 0.015, f"{k}", ha="center", va="top",
                fontsize=10)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.text(0.5, 0.345, "raster order; each patch flattened,\nshared linear $W_E$ → $D$ dims",
            ha="center", va="center", fontsize=10.5)
    ax.text(0.5, 0.03, "+ learned position embedding → encoder", ha="center", fontsize=10.5)


# --- scaling laws ------------------------------------------------------------------------------------------------


def scaling_frontiers(ax, data):
    """Compute-optimal model size N_opt(C): Kaplan et al. 2020 (∝ C^0.73) vs Chinchilla (∝ C^0.5). Both lines are
    drawn through one shared point (C = 10^21 FLOPs on the Chinchilla line through 70B at 5.76·10^23 FLOPs), so
    only the slopes are compared; ×10 compute means ×5.4 vs ×3.2 parameters."""
    chinchilla_c, chinchilla_n = 5.76e23, 70e9
    anchor_c = 1e21
    anchor_n = chinchilla_n * (anchor_c / chinchilla_c) ** 0.5
    compute = np.logspace(18, 26, 200)
    lines = {"Kaplan: $N \\propto C^{0.73}$": (0.73, "C3"), "Chinchilla: $N \\propto C^{0.50}$": (0.5, "C0")}
    for label, (exponent, color) in lines.items():
        ax.loglog(compute, anchor_n * (compute / anchor_c) ** exponent, color=color, label=label)
    ax.plot(anchor_c, anchor_n, "o", color=_ink(), markersize=7, zorder=3)
    ax.annotate(f"shared anchor\n$10^{{21}}$ FLOPs, {anchor_n / 1e9:.1f}B", (anchor_c, anchor_n), xytext=(6, -34),
                textcoords="offset points", ha="left", fontsize=10)
    ax.plot(chinchilla_c, chinchilla_n, "s", color="C0", markersize=7, zorder=3)
    ax.annotate("Chinchilla\n70B", (chinchilla_c, chinchilla_n), xytext=(8, -30), textcoords="offset points",
                fontsize=10, color="C0")
    tenfold = anchor_c * 10
    for exponent, color, dx, dy in ((0.73, "C3", -42, 6), (0.5, "C0", 8, -20)):
        n = anchor_n * 10**exponent
        ax.plot([tenfold], [n], "o", color=color, markersize=6, zorder=3)
        ax.annotate(f"×{10**exponent:.1f}", (tenfold, n), xytext=(dx, dy), textcoords="offset points",
                    fontsize=10.5, color=color)
    ax.axvline(tenfold, color=_tint(_ink(), 0.4), linestyle=":", linewidth=1.2)
    ax.text(tenfold * 1.3, 2e7, "10× compute", fontsize=10)
    ax.set(xlim=(1e18, 1e26), ylim=(1e7, 1e13), xlabel="training compute $C$ (FLOPs)",
           ylabel="compute-optimal $N$ (params)")
    ax.xaxis.set_major_locator(mpl.ticker.LogLocator(numticks=5))
    ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
    ax.yaxis.set_minor_locator(mpl.ticker.NullLocator())
    ax.legend(loc="upper left", fontsize=10)


# --- training systems: tensor parallelism and the 3D layout ------------------------------------------------------


def _tp_panel(ax, title, first, second, notes):
    """One Megatron block on t = 2 GPUs: X → f → (first_i → second_i per GPU) → g (all-reduce) → Z."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    ax.text(0.0, 1.0, title, fontsize=11, va="top", fontweight="bold")
    mid = 0.6
    lanes = {"GPU 1": (0.775, "C0"), "GPU 2": (0.425, "C1")}
    _box(ax, 0.045, mid, "$X$", color="C7", width=0.075, height=0.15, fontsize=11)
    for name, (y, color) in lanes.items():
        ax.add_patch(Rectangle((0.2, y - 0.15), 0.59, 0.3, facecolor=_tint(color, 0.08), edgecolor="none"))
        ax.text(0.205, y + 0.145, name, fontsize=10, va="top", color=color)
        k = name[-1]
        _box(ax, 0.36, y - 0.02, first.replace("#", k), color=color, width=0.29, height=0.175, fontsize=10)
        _box(ax, 0.68, y - 0.02, second.replace("#", k), color=color, width=0.18, height=0.175, fontsize=10)
        _arrow(ax, (0.505, y - 0.02), (0.59, y - 0.02))
        _arrow(ax, (0.165, mid), (0.215, y - 0.02), color=_tint(_ink(), 0.7))
        _arrow(ax, (0.77, y - 0.02), (0.83, mid + (0.04 if y > mid else -0.04)), color=_tint(_ink(), 0.7))
    for x, label, color in ((0.135, "$f$", "C2"), (0.865, "$g$", "C3")):
        _box(ax, x, mid, label, color=color, width=0.06, height=0.15, fontsize=11)
    _arrow(ax, (0.083, mid), (0.105, mid))
    _arrow(ax, (0.895, mid), (0.94, mid))
    ax.text(0.97, mid, "$Z$", ha="center", va="center", fontsize=11)
    ax.text(0.0, 0.25, notes, fontsize=10, va="top")


def tp_layout(axes, data):
    """Megatron-LM tensor parallelism on t = 2 GPUs (Shoeybi et al. 2019, Fig. 3): MLP with A split by columns
    (Y_i = GeLU(X A_i), no communication) and B by rows (Z = Σ Y_i B_i, one all-reduce); attention split by heads
    (Q, K, V projections by columns, the output projection by rows). f: identity forward, all-reduce backward;
    g: all-reduce forward, identity backward."""
    mlp, attention = axes
    _tp_panel(mlp, "MLP: $A$ split by columns, $B$ by rows", "$Y_# = \\mathrm{GeLU}(XA_#)$", "$Y_#B_#$",
              "$Y_i$ stays on its GPU: no communication\n$Z = Y_1B_1 + Y_2B_2$: one all-reduce in $g$")
    _tp_panel(attention, "self-attention: heads split across GPUs", "$Y_#$ = attention\nof $a/t$ heads",
              "$Y_#B_#$", "$W^Q, W^K, W^V$ by columns (heads); $B = W^O$ by rows\n"
              "$f$: forward identity, backward all-reduce\n$g$: forward all-reduce, backward identity")


def parallel_3d_grid(ax, data):
    """3D parallelism with t = 2, p = 4, d = 2 on 16 GPUs (8 nodes of 2 GPUs here): each node is one tensor-parallel
    group, the 24 layers are split into 4 pipeline stages down a column, and the two columns are data-parallel
    replicas. Global ranks in Megatron's default order (tensor fastest, then data, then pipeline):
    rank = tp + t·(dp + d·pp)."""
    t, p, d, layers = 2, 4, 2, 24
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    xs = (0.39, 0.79)  # the data-parallel replicas
    ys = 0.8 - 0.185 * np.arange(p)  # the pipeline stages
    node_w, node_h = 0.32, 0.12
    for dp, x in enumerate(xs):
        ax.text(x, 0.91, f"DP replica {dp + 1}", ha="center", va="center", fontsize=10.5, color="C2")
    for pp, y in enumerate(ys):
        first = pp * layers // p + 1
        ax.text(0.0, y, f"stage {pp + 1}\nlayers\n{first}–{first + layers // p - 1}", va="center", fontsize=10)
        for dp, x in enumerate(xs):
            patch, _ = _box(ax, x, y, "", color="C0", width=node_w, height=node_h)
            for tp in range(t):
                rank = tp + t * (dp + d * pp)
                _cell(ax, x - node_w / 2 + 0.02 + tp * 0.145, y - 0.04, 0.135, 0.08, "C0", amount=0.45,
                      text=f"{rank}", fontsize=10.5)
            if pp < p - 1:
                _arrow(ax, (x, y - node_h / 2), (x, ys[pp + 1] + node_h / 2), color="C1", linewidth=2)
        _label_on_line(ax, (xs[0] + xs[1]) / 2, y, "⇄", fontsize=12, color="C2")
        ax.plot([xs[0] + node_w / 2, xs[1] - node_w / 2], [y, y], color="C2", linestyle="--", linewidth=1.5,
                zorder=0)
    ax.text(0.0, 0.13, "box = node: its 2 GPUs are one TP group (NVLink)\n"
            "orange ↓: PP sends activations (point-to-point)\n"
            "green ⇄: DP all-reduces gradients (once a step)", fontsize=10, va="top", linespacing=1.4)
    ax.set_title(f"$t={t}$, $p={p}$, $d={d}$: {t * p * d} GPUs (numbers: global ranks)", fontsize=10.5)


# --- retrieval: sparse vs dense vs cross-encoder ------------------------------------------------------------------


def _bm25(query, docs, k1=1.2, b=0.75):
    """BM25 scores of whitespace-tokenised ``docs`` for ``query`` (Lucene's IDF ln(1 + (N − n + 0.5)/(n + 0.5)));
    returns (scores, {term: (documents containing it, IDF)})."""
    tokens = [doc.split() for doc in docs]
    avgdl = np.mean([len(doc) for doc in tokens])
    postings = {}
    for term in query.split():
        having = [i for i, doc in enumerate(tokens) if term in doc]
        idf = np.log(1 + (len(docs) - len(having) + 0.5) / (len(having) + 0.5))
        postings[term] = (having, idf)
    scores = []
    for doc in tokens:
        k_d = k1 * (1 - b + b * len(doc) / avgdl)
        scores.append(sum(idf * doc.count(t) * (k1 + 1) / (doc.count(t) + k_d) for t, (_, idf) in postings.items()))
    return scores, postings


def dense_vs_sparse(ax, data):
    """Sparse retrieval (BM25 over an inverted index, exact terms; scores computed for a four-document toy corpus,
    k1 = 1.2, b = 0.75), dense retrieval (bi-encoder: query and documents encoded separately, dot product, ANN
    index) and the cross-encoder reranker (query and document in one sequence, one forward pass per pair)."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    query = "car repair cost"
    docs = ["car repair price list", "automobile fixing costs", "used car prices", "bike repair shop"]
    scores, postings = _bm25(query, docs)

    ax.text(0.0, 0.995, "sparse: BM25, inverted index", fontsize=11, fontweight="bold", va="top")
    ax.text(0.0, 0.945, f"query “{query}”, 4 docs", fontsize=10, va="top")
    y = 0.88
    for term, (having, idf) in postings.items():
        listed = ", ".join(f"d{i + 1}" for i in having) or "(none)"
        _box(ax, 0.08, y, term, color="C0", width=0.16, height=0.042, fontsize=10)
        ax.text(0.18, y, f"→ {listed}", fontsize=10, va="center")
        ax.text(0.44, y, f"IDF {idf:.2f}", fontsize=10, va="center", color="C0")
        y -= 0.05
    ax.text(0.99, 0.925, "score", fontsize=10, va="center", ha="right")
    for i, score in enumerate(scores):
        ax.text(0.99, 0.88 - 0.037 * i, f"d{i + 1} {score:.2f}", fontsize=10, va="center", ha="right",
                color="C3" if score == 0 else _ink())
    ax.text(0.0, 0.72, f"d2 “{docs[1]}”: 0,\nnot one exact term in common", fontsize=10, va="top", color="C3")

    ax.text(0.0, 0.625, "dense: bi-encoder + ANN index", fontsize=11, fontweight="bold", va="top")
    _box(ax, 0.075, 0.535, "query", color="C7", width=0.15, height=0.06, fontsize=10)
    _box(ax, 0.075, 0.425, "docs", color="C7", width=0.15, height=0.06, fontsize=10)
    _box(ax, 0.31, 0.535, "$E_Q$ online", color="C1", width=0.24, height=0.06, fontsize=10)
    _box(ax, 0.31, 0.425, "$E_D$ offline", color="C1", width=0.24, height=0.06, fontsize=10)
    _box(ax, 0.585, 0.425, "ANN index\nHNSW / IVF", color="C2", width=0.26, height=0.085, fontsize=10)
    _box(ax, 0.87, 0.48, "top-$k$ by\n$q \\cdot d$", color="C2", width=0.24, height=0.1, fontsize=10)
    for a, b in (((0.15, 0.535), (0.19, 0.535)), ((0.15, 0.425), (0.19, 0.425)),
                 ((0.43, 0.425), (0.455, 0.425)), ((0.715, 0.44), (0.75, 0.46))):
        _arrow(ax, a, b)
    _arrow(ax, (0.43, 0.535), (0.75, 0.505))
    ax.text(0.0, 0.36, "q and d never see each other: one vector\neach, docs indexed once; "
            "d2 can match\nby meaning, not by words", fontsize=10, va="top")

    ax.text(0.0, 0.225, "rerank: cross-encoder", fontsize=11, fontweight="bold", va="top")
    _box(ax, 0.19, 0.13, "[CLS] query\n[SEP] doc [SEP]", color="C7", width=0.38, height=0.09, fontsize=10)
    _box(ax, 0.585, 0.13, "Transformer,\nfull attention", color="C4", width=0.33, height=0.09, fontsize=10)
    _box(ax, 0.9, 0.13, "score", color="C4", width=0.18, height=0.06, fontsize=10)
    _arrow(ax, (0.38, 0.13), (0.42, 0.13))
    _arrow(ax, (0.75, 0.13), (0.81, 0.13))
    ax.text(0.0, 0.06, "one forward pass per (query, doc) pair:\nonly the top-$k$, never the whole corpus",
            fontsize=10, va="top")


# --- agents: the ReAct loop ----------------------------------------------------------------------------------------


def react_loop(ax, data):
    """ReAct (Yao et al. 2023): the LLM writes a Thought and an Action; the program stops generation at
    "Observation:", runs the action on the environment (a Wikipedia API with search / lookup / finish for HotpotQA)
    and appends the real result; the loop ends with Finish[answer]. Below, a trajectory of the paper's HotpotQA
    prompt, shortened."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    _box(ax, 0.5, 0.95, "question + few-shot ReAct examples", color="C7", width=0.8, height=0.06, fontsize=10)
    _box(ax, 0.18, 0.77, "LLM writes\nThought $n$\nAction $n$", color="C0", width=0.32, height=0.14, fontsize=10)
    _box(ax, 0.82, 0.77, "environment\n(tools)", color="C2", width=0.32, height=0.14, fontsize=10)
    _box(ax, 0.5, 0.575, "context += Observation $n$", color="C1", width=0.66, height=0.06, fontsize=10)
    _box(ax, 0.18, 0.455, "Finish[answer]", color="C3", width=0.32, height=0.06, fontsize=10)
    _arrow(ax, (0.18, 0.92), (0.18, 0.84))
    _arrow(ax, (0.34, 0.79), (0.66, 0.79), color="C0")
    ax.text(0.5, 0.805, "Action $n$", ha="center", va="bottom", fontsize=10, color="C0")
    ax.text(0.5, 0.74, "LLM stops at\n“Observation:”", ha="center", va="center", fontsize=10)
    _arrow(ax, (0.82, 0.7), (0.82, 0.605), color="C2")
    _arrow(ax, (0.2, 0.605), (0.2, 0.7), color="C1")
    ax.text(0.84, 0.652, "real result", ha="left", va="center", fontsize=10, color="C2")
    ax.text(0.22, 0.652, "next step", ha="left", va="center", fontsize=10, color="C1")
    _arrow(ax, (0.06, 0.7), (0.06, 0.485), color="C3")
    ax.text(0.36, 0.455, "once the Action is Finish", ha="left", va="center", fontsize=10, color="C3")

    steps = [
        ("Thought 1", "search both, compare start dates", "C0"),
        ("Action 1", "Search[Arthur's Magazine]", "C0"),
        ("Obs 1", "Arthur's Magazine (1844–1846) was ...", "C2"),
        ("Thought 2", "started 1844; now First for Women", "C0"),
        ("Action 2", "Search[First for Women]", "C0"),
        ("Obs 2", "... The magazine was started in 1989.", "C2"),
        ("Thought 3", "1844 < 1989", "C0"),
        ("Action 3", "Finish[Arthur's Magazine]", "C3"),
    ]
    ax.text(0.0, 0.375, "Which magazine was started first, Arthur's\nMagazine or First for Women? (HotpotQA)",
            fontsize=10, va="top", fontweight="bold")
    for k, (tag, text, color) in enumerate(steps):
        y = 0.27 - 0.037 * k
        ax.text(0.0, y, tag, fontsize=10, va="center", color=color)
        ax.text(0.25, y, text, fontsize=10, va="center")


# --- multimodal: two ways to connect a vision encoder to an LLM ------------------------------------------------


def _module(ax, x, y, text, color, trained, width, height=0.085):
    """A model box: solid edge when trained (in some stage), dashed and grey when frozen throughout."""
    patch, label = _box(ax, x, y, text, color=color if trained else "C7", width=width, height=height, fontsize=10)
    if not trained:
        patch.set_linestyle("--")
    return patch, label


def _token_strip(ax, x, y, counts, width=0.022):
    """A row of token cells, one colour per (count, colour, label) group, the label above each group."""
    for count, color, label in counts:
        start = x
        for k in range(count):
            _cell(ax, x, y - 0.015, width * 0.9, 0.03, color, amount=0.55)
            x += width
        ax.text((start + x) / 2, y + 0.025, label, ha="center", va="bottom", fontsize=10, color=color)
        x += width * 0.6
    return x


def llava_qformer(ax, data):
    """LLaVA (Liu et al. 2023): CLIP ViT-L/14 patch features → projection W (linear; LLaVA-1.5: 2-layer MLP) → one
    LLM token per patch, concatenated with the text. BLIP-2 (Li et al. 2023): frozen image encoder → Q-Former whose
    32 learned queries cross-attend to the image features → FC → 32 soft prompts for a frozen LLM. Solid: trained
    in some stage, dashed: frozen throughout."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    ax.text(0.0, 0.995, "LLaVA: one LLM token per patch", fontsize=11, fontweight="bold", va="top")
    y = 0.88
    _box(ax, 0.07, y, "image", color="C7", width=0.14, height=0.075, fontsize=10)
    _module(ax, 0.33, y, "CLIP\nViT-L/14", "C0", False, 0.24)
    _module(ax, 0.7, y, "$W$: linear\n(1.5: MLP)", "C1", True, 0.28)
    _arrow(ax, (0.14, y), (0.21, y))
    _arrow(ax, (0.45, y), (0.56, y))
    ax.text(0.505, y + 0.01, "$Z_v$", ha="center", va="bottom", fontsize=10)
    y2 = 0.72
    end = _token_strip(ax, 0.03, y2, [(10, "C1", "$H_v = W Z_v$"), (6, "C7", "text")])
    _arrow(ax, (0.62, y - 0.0425), (0.16, y2 + 0.075), color="C1")
    _module(ax, 0.75, y2, "LLM\n(Vicuna)", "C3", True, 0.26)
    _arrow(ax, (end, y2), (0.62, y2))
    ax.text(0.0, 0.64, "256 visual tokens at 224 px (16×16 patches);\nLLaVA-1.5: 576 at 336 px\n"
            "stage 1 trains $W$; stage 2 $W$ + LLM", fontsize=10, va="top")

    ax.text(0.0, 0.47, "BLIP-2: 32 queries read the image", fontsize=11, fontweight="bold", va="top")
    y = 0.355
    _box(ax, 0.07, y, "image", color="C7", width=0.14, height=0.075, fontsize=10)
    _module(ax, 0.3, y, "image enc.\nViT-g/14", "C0", False, 0.24)
    _arrow(ax, (0.14, y), (0.18, y))
    qformer_x, qformer_w = 0.74, 0.5
    _module(ax, qformer_x, y, "", "C4", True, qformer_w, height=0.13)
    ax.text(qformer_x, y + 0.025, "Q-Former: 32 learned\nqueries cross-attend", ha="center", va="center",
            fontsize=10)
    for k in range(16):
        _cell(ax, qformer_x - qformer_w / 2 + 0.03 + k * 0.0275, y - 0.055, 0.022, 0.022, "C4", amount=0.6)
    _arrow(ax, (0.42, y), (qformer_x - qformer_w / 2, y))
    y2 = 0.185
    _module(ax, qformer_x, y2, "FC", "C1", True, 0.16)
    _module(ax, 0.27, y2, "LLM (OPT /\nFlanT5)", "C3", False, 0.3)
    _arrow(ax, (qformer_x, y - 0.065), (qformer_x, y2 + 0.0425))
    _arrow(ax, (qformer_x - 0.08, y2), (0.42, y2))
    ax.text(0.54, y2 + 0.012, "32 soft\nprompts", ha="center", va="bottom", fontsize=10)
    ax.text(0.0, 0.115, "stage 1: Q-Former (ITC, ITM, ITG); stage 2:\n+ FC, language modelling; "
            "image encoder\nand LLM frozen in both (dashed)", fontsize=10, va="top")
