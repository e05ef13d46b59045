"""Experiment 12: decoding with tiny character-level GPTs trained on the cards: speculative sampling and the
temperature / top-p trade-off.

One target GPT and several smaller draft GPTs are trained on the same card text (gpt.train_lm), then:

(a) Speculative sampling (Leviathan, Kalman & Matias 2023, "Fast Inference from Transformers via Speculative
    Decoding"; Chen, Borgeaud, Irving, Lespiau, Sifre & Jumper 2023, "Accelerating Large Language Model Decoding
    with Speculative Sampling"). Per round the draft proposes k tokens autoregressively (KV cache), the target
    scores all k + 1 positions in ONE forward (KV cache), draft token i is accepted with probability
    min(1, p(x)/q(x)), the first rejected one is replaced by a sample of norm(max(0, p - q)), and when all k are
    accepted a bonus token is sampled from p. Both caches are rolled back to the accepted prefix. Measured for
    each draft and k: the acceptance rate alpha, tokens per target forward, the wall-clock speed-up over
    target-only sampling (same prompts from held-out text, same temperature 1, same number of new tokens; medians
    over repeats), and the expectation (1 - alpha^(k+1)) / ((1 - alpha)(k c + 1)) of Leviathan et al. (Thm 3.8)
    with the measured alpha and the measured cost ratio c = t_draft / t_target of one forward.
    Distribution check: for fixed held-out prefixes, the first token emitted by many independent speculative
    rounds (the same acceptance rule) against the target's exact p: TV(spec, p) against the sampling noise
    TV(direct samples of p, p) at the same sample count, and TV(q, p) of the draft.
(b) Decoding sweep on the target (Holtzman, Buys, Du, Forbes & Choi 2020, "The Curious Case of Neural Text
    Degeneration"): continuations of held-out prompts for greedy, several temperatures (top-p 1) and several top-p
    values (T = 1): distinct-1/2/3 over characters (unique n-grams / all n-grams, over all samples), the mean NLL
    of the sampled characters under the untempered model, and the share of repeated 4-grams within a sample; the
    held-out text's own continuation as the human reference.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .common import Measurement
from .gpt import GPT, GPTConfig, char_dataset, train_lm

CPU_THREADS = 1  # small models, batch-1 decoding: single-threaded (see runs.py)
SIZES = {
    "quick": {"target": [3, 48, 4], "drafts": [[1, 16, 2], [2, 32, 4]], "steps": 120, "block": 56, "batch": 8,
              "prompt": 12, "new_tokens": 32, "ks": [1, 2, 4], "prompts": 3, "repeats": 1, "dist_prefixes": 3,
              "dist_samples": 3000, "sweep_prompts": 12, "sweep_new": 40, "temps": [0.5, 1.0, 1.6],
              "top_ps": [0.5, 0.9, 1.0]},
    "full": {"target": [4, 64, 4], "drafts": [[1, 16, 2], [1, 32, 2]], "steps": 500, "block": 80, "batch": 12,
             "prompt": 16, "new_tokens": 48, "ks": [1, 2, 3, 4, 6, 8], "prompts": 4, "repeats": 3,
             "dist_prefixes": 4, "dist_samples": 20000, "sweep_prompts": 32, "sweep_new": 64,
             "temps": [0.3, 0.5, 0.7, 1.0, 1.3, 1.6], "top_ps": [0.3, 0.5, 0.8, 0.9, 0.95, 1.0]},
}

CLAIM = (
    "Speculative sampling emits 1 to k+1 target-distributed tokens per target forward: the output distribution is "
    "the target's, the speed-up follows (1 - a^(k+1)) / ((1 - a)(k c + 1)), rising then falling in k, higher for a "
    "closer draft; low temperature / small top-p give likely but repetitive text, high temperature diverse but "
    "improbable text (Leviathan et al. 2023; Chen et al. 2023; Holtzman et al. 2020)."
)


def _name(arch) -> str:
    return f"{arch[0]}x{arch[1]}"


def _truncate(caches, n: int) -> None:
    """Roll a KV cache back to its first n positions (the rejected draft tokens' keys and values are dropped)."""
    for c in caches:
        c["k"], c["v"] = c["k"][:, :, :n], c["v"][:, :, :n]


def _cache_len(caches) -> int:
    return 0 if caches[0].get("k") is None else caches[0]["k"].size(2)


def _probs(logits, temp: float = 1.0):
    return torch.softmax(logits.float() / temp, dim=-1)


def accept_or_resample(p, q, x, u, generator):
    """The speculative-sampling rule, row by row: p, q (n, V) target / draft distributions, x (n,) draft tokens
    drawn from q, u (n,) uniforms. Returns (accepted (n,) bool, token (n,)): x where accepted, else a sample of
    norm(max(0, p - q))."""
    rows = torch.arange(len(x))
    px, qx = p[rows, x], q[rows, x]
    accepted = u * qx < px  # u < p(x) / q(x), i.e. probability min(1, p/q)
    token = x.clone()
    rej = (~accepted).nonzero().flatten()
    if len(rej):
        r = (p[rej] - q[rej]).clamp_min(0)  # (m, V); sums to 1 - beta > 0 where a rejection happened
        token[rej] = torch.multinomial(r / r.sum(-1, keepdim=True), 1, generator=generator).flatten()
    return accepted, token


@torch.no_grad()
def sample_target(model, prompt, new: int, generator):
    """Target-only autoregressive sampling at T = 1 with the KV cache, batch 1: ``new`` forwards."""
    caches = [{} for _ in model.blocks]
    seq = prompt.tolist()
    logits, _, _ = model(prompt[None], caches=caches)  # (1, P, V)
    for i in range(new):
        x = torch.multinomial(_probs(logits[0, -1]), 1, generator=generator)  # (1,)
        seq.append(int(x))
        if i < new - 1:
            logits, _, _ = model(x[None], caches=caches)
    return seq


@torch.no_grad()
def sample_speculative(target, draft, prompt, new: int, k: int, generator):
    """Speculative sampling, batch 1, T = 1. Returns (tokens, stats)."""
    tc, dc = [{} for _ in target.blocks], [{} for _ in draft.blocks]
    seq = prompt.tolist()
    n0 = len(seq)
    rounds = accepted_total = tested = 0
    beta_sum = 0.0
    while len(seq) - n0 < new:
        S = len(seq)
        # 1. the draft proposes k tokens; it first reads what it has not seen yet (1 or 2 tokens, the prompt at first)
        pending = torch.tensor(seq[_cache_len(dc):])
        xs, qs = [], []
        for _ in range(k):
            logits, _, _ = draft(pending[None], caches=dc)
            q = _probs(logits[0, -1])  # (V,)
            x = torch.multinomial(q, 1, generator=generator)  # (1,)
            xs.append(x)
            qs.append(q)
            pending = x
        x, q = torch.cat(xs), torch.stack(qs)  # (k,), (k, V)
        # 2. the target scores the k + 1 positions in one forward
        feed = torch.cat([torch.tensor(seq[_cache_len(tc):]), x])
        logits, _, _ = target(feed[None], caches=tc)
        p = _probs(logits[0, -(k + 1):])  # (k + 1, V): row i predicts the token after x_1..x_i
        # 3. verify left to right; the first rejection ends the round
        u = torch.rand(k, generator=generator)
        ok, tok = accept_or_resample(p[:k], q, x, u, generator)
        n = int(ok.long().cumprod(0).sum())  # accepted prefix length
        if n == k:  # all accepted: a bonus token from p_{k+1}
            y = int(torch.multinomial(p[k], 1, generator=generator))
        else:
            y = int(tok[n])
        t_n = min(n + 1, k)  # positions whose acceptance was decided
        beta_sum += float(torch.minimum(p[:t_n], q[:t_n]).sum())  # sum_i sum_x min(p_i, q_i): expected acceptances
        seq += x[:n].tolist() + [y]
        rounds += 1
        accepted_total += n
        tested += t_n
        _truncate(tc, S + n)  # keep the prompt + accepted drafts; y is read next round
        _truncate(dc, min(_cache_len(dc), S + n))
    emitted = len(seq) - n0
    seq = seq[:n0 + new]
    return seq, {"rounds": rounds, "emitted": emitted, "accepted": accepted_total, "tested": tested,
                 "beta_sum": beta_sum}


def _tv(a, b) -> float:
    return 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())


def _distinct(samples, n: int) -> float:
    grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / max(1, len(grams))


def _repeat4(samples) -> float:
    """Mean share of a sample's 4-grams that already occurred earlier in the same sample."""
    shares = []
    for s in samples:
        grams = [tuple(s[i:i + 4]) for i in range(len(s) - 3)]
        shares.append(1 - len(set(grams)) / max(1, len(grams)))
    return float(np.mean(shares))


def _filter(probs, top_p: float):
    """Nucleus: keep the smallest set of most probable tokens whose mass reaches top_p, renormalise. (B, V)."""
    if top_p >= 1.0:
        return probs
    sp, order = probs.sort(-1, descending=True)
    keep = (sp.cumsum(-1) - sp) < top_p  # the token that crosses top_p is kept
    sp = sp * keep
    out = torch.zeros_like(probs).scatter_(-1, order, sp)
    return out / out.sum(-1, keepdim=True)


@torch.no_grad()
def sample_batch(model, prompts, new: int, temp: float, top_p: float, generator):
    """Batched sampling (B prompts of equal length). temp 0 = greedy. Returns (tokens (B, new), NLL per sampled
    token under the untempered model (B, new))."""
    caches = [{} for _ in model.blocks]
    logits, _, _ = model(prompts, caches=caches)
    toks, nll = [], []
    for i in range(new):
        lg = logits[:, -1].float()  # (B, V)
        if temp == 0:
            x = lg.argmax(-1, keepdim=True)
        else:
            x = torch.multinomial(_filter(_probs(lg, temp), top_p), 1, generator=generator)  # (B, 1)
        nll.append(-torch.log_softmax(lg, -1).gather(-1, x))
        toks.append(x)
        if i < new - 1:
            logits, _, _ = model(x, caches=caches)
    return torch.cat(toks, 1), torch.cat(nll, 1)


def run(ctx, target, drafts, steps, block, batch, prompt, new_tokens, ks, prompts, repeats, dist_prefixes,
        dist_samples, sweep_prompts, sweep_new, temps, top_ps) -> Measurement:
    dev = ctx.torch_device()  # training on ctx's device; the decoding measurements run batch 1 on the CPU
    text, chars, train, val, n_files = char_dataset(ctx.cards_dir)
    ctx.log(f"corpus: {n_files} card files, {len(text):,} chars, vocabulary {len(chars)}")
    assert prompt + new_tokens + max(ks) <= block and prompt + sweep_new <= block  # positions the models learned

    # -- train the target and the drafts on the same text, the same batches -----------------------------------
    archs = {"target": target, **{_name(a): a for a in drafts}}
    models, info = {}, {}
    for i, (name, (n_layer, n_embd, n_head)) in enumerate(archs.items()):
        ctx.seed_all(10 * i)
        cfg = GPTConfig(vocab_size=len(chars), block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
        m = GPT(cfg).to(dev)
        t0 = time.perf_counter()
        losses = train_lm(m, train, steps=steps, block=block, batch=batch, lr=3e-3, warmup=steps // 10,
                          generator=torch.Generator().manual_seed(ctx.seed + 1), device=dev)
        train_s = time.perf_counter() - t0
        m = m.cpu().eval()
        gv = torch.Generator().manual_seed(ctx.seed + 2)
        ix = torch.randint(len(val) - block - 1, (32,), generator=gv)
        xv = torch.stack([val[j:j + block] for j in ix])
        yv = torch.stack([val[j + 1:j + block + 1] for j in ix])
        with torch.no_grad():
            vl = float(m(xv, yv)[1])
        models[name] = m
        info[name] = {"layers": n_layer, "d_model": n_embd, "heads": n_head,
                      "params": sum(p.numel() for p in m.parameters()), "train_time_s": train_s,
                      "train_loss_end": float(np.mean(losses[-20:])), "val_loss": vl}
        ctx.log(f"{name} {n_layer}x{n_embd}: {info[name]['params']:,} params, {steps} steps in {train_s:.1f}s, "
                f"val loss {vl:.3f}")
    tgt = models["target"]
    dnames = [_name(a) for a in drafts]

    # held-out prompts: the start of a line of held-out text
    gp = torch.Generator().manual_seed(ctx.seed + 3)
    starts = torch.randint(len(val) - block - 1, (max(prompts, sweep_prompts, dist_prefixes) * 4,), generator=gp)
    nl = chars.index("\n") if "\n" in chars else None
    starts = [int(s) for s in starts if nl is None or int(val[s]) != nl]  # no prompt starts with a line break

    def prompt_at(j, length=prompt):
        return val[starts[j]:starts[j] + length]

    # -- (a1) cost of one forward: draft vs target, 1 token and k + 1 tokens, at a mid-generation context ---------
    ctx_len = prompt + new_tokens // 2

    def forward_cost(m, n_tok, reps=20):
        caches = [{} for _ in m.blocks]
        with torch.no_grad():
            m(val[:ctx_len][None], caches=caches)
            x = val[ctx_len:ctx_len + n_tok][None]

            def f():
                for _ in range(reps):
                    m(x, caches=caches)
                    _truncate(caches, ctx_len)
            return ctx.time_fn(f, reps=7, warmup=1) / reps

    cost = {name: {"t1_s": forward_cost(m, 1)} for name, m in models.items()}
    for k in ks:
        cost["target"][f"t{k + 1}_s"] = forward_cost(tgt, k + 1)
    c = {d: cost[d]["t1_s"] / cost["target"]["t1_s"] for d in dnames}
    ctx.log("forward ms: " + ", ".join(f"{n} {v['t1_s'] * 1e3:.3f}" for n, v in cost.items())
            + f"; target with {max(ks) + 1} tokens {cost['target'][f't{max(ks) + 1}_s'] * 1e3:.3f}; c = "
            + ", ".join(f"{d} {v:.2f}" for d, v in c.items()))

    # -- (a2) speculative sampling vs target-only sampling: interleaved repeats, medians ----------------------
    t_base, t_spec = [], {(d, k): [] for d in dnames for k in ks}
    stats = {(d, k): {"rounds": 0, "emitted": 0, "accepted": 0, "tested": 0, "beta_sum": 0.0}
             for d in dnames for k in ks}
    for r in range(repeats):
        t0 = time.perf_counter()
        for j in range(prompts):
            sample_target(tgt, prompt_at(j), new_tokens, torch.Generator().manual_seed(ctx.seed + 100 * r + j))
        t_base.append(time.perf_counter() - t0)
        for d in dnames:
            for k in ks:
                t0 = time.perf_counter()
                for j in range(prompts):
                    seq, st = sample_speculative(tgt, models[d], prompt_at(j), new_tokens, k,
                                                 torch.Generator().manual_seed(ctx.seed + 100 * r + j))
                    assert len(seq) == prompt + new_tokens
                    for key in st:
                        stats[(d, k)][key] += st[key]
                t_spec[(d, k)].append(time.perf_counter() - t0)
        ctx.log(f"repeat {r + 1}/{repeats}: target-only {t_base[-1]:.2f}s for {prompts} x {new_tokens} tokens")
    base = float(np.median(t_base))
    spec = {}
    for d in dnames:
        rows = []
        for k in ks:
            st = stats[(d, k)]
            alpha = st["beta_sum"] / st["tested"]
            t = float(np.median(t_spec[(d, k)]))
            rows.append({
                "k": k, "alpha": alpha, "accept_rate": st["accepted"] / st["tested"],
                "tokens_per_target_forward": st["emitted"] / st["rounds"],
                "tokens_theory": (1 - alpha ** (k + 1)) / (1 - alpha),
                "time_s": t, "speedup": base / t,
                "speedup_theory": (1 - alpha ** (k + 1)) / ((1 - alpha) * (k * c[d] + 1)),
            })
        spec[d] = {"c": c[d], "alpha_mean": float(np.mean([row["alpha"] for row in rows])), "by_k": rows}
        ctx.log(f"draft {d} (c {c[d]:.2f}): " + "  ".join(
            f"k={row['k']}: a {row['alpha']:.2f} tok/fwd {row['tokens_per_target_forward']:.2f} "
            f"x{row['speedup']:.2f} (theory x{row['speedup_theory']:.2f})" for row in rows))

    # -- (a3) distribution of the first emitted token: speculative rule vs direct samples vs the draft --------
    dist = []
    small = dnames[0]  # the least accurate draft: the largest TV(q, p) to correct
    gd = torch.Generator().manual_seed(ctx.seed + 4)
    for j in range(dist_prefixes):
        pre = prompt_at(len(starts) - 1 - j)  # prefixes not used as prompts above
        with torch.no_grad():
            p = _probs(tgt(pre[None])[0][0, -1])  # (V,)
            q = _probs(models[small](pre[None])[0][0, -1])
        N = dist_samples
        x = torch.multinomial(q, N, replacement=True, generator=gd)  # N independent draft proposals
        ok, tok = accept_or_resample(p.expand(N, -1), q.expand(N, -1), x, torch.rand(N, generator=gd), gd)
        direct = torch.multinomial(p, N, replacement=True, generator=gd)
        h_spec = torch.bincount(tok, minlength=len(p)).double() / N
        h_direct = torch.bincount(direct, minlength=len(p)).double() / N
        dist.append({"prefix": "".join(chars[t] for t in pre.tolist()), "accepted": float(ok.double().mean()),
                     "beta": float(torch.minimum(p, q).sum()), "tv_spec": _tv(h_spec, p), "tv_direct": _tv(h_direct, p),
                     "tv_draft": _tv(q, p), "support_90": int((p.sort(descending=True)[0].cumsum(0) < 0.9).sum()) + 1})
        ctx.log(f"prefix {j}: TV(spec, p) {dist[-1]['tv_spec']:.4f}  TV(direct, p) {dist[-1]['tv_direct']:.4f}  "
                f"TV(q, p) {dist[-1]['tv_draft']:.3f}  ({N} samples)")

    # -- (b) decoding sweep on the target ---------------------------------------------------------------------
    P = torch.stack([prompt_at(j) for j in range(sweep_prompts)])  # (B, prompt)
    human = torch.stack([val[starts[j] + prompt:starts[j] + prompt + sweep_new] for j in range(sweep_prompts)])
    with torch.no_grad():  # the held-out continuation's NLL under the same model: the human reference
        full = torch.cat([P, human], 1)
        lp = torch.log_softmax(tgt(full[:, :-1])[0].float(), -1)
        h_nll = -lp[:, prompt - 1:].gather(-1, full[:, prompt:, None]).squeeze(-1)  # (B, sweep_new)

    def summarise(toks, nll, **kw):
        s = toks.tolist()
        return {**kw, "nll": float(nll.mean()), "distinct_1": _distinct(s, 1), "distinct_2": _distinct(s, 2),
                "distinct_3": _distinct(s, 3), "repeat_4": _repeat4(s),
                "example": "".join(chars[t] for t in s[0])}

    settings = [("greedy", 0.0, 1.0)] + [("temperature", t, 1.0) for t in temps] + [("top_p", 1.0, p) for p in top_ps]
    sweep = [summarise(human, h_nll, kind="human", temperature=None, top_p=None)]
    for s_i, (kind, temp, top_p) in enumerate(settings):
        toks, nll = sample_batch(tgt, P, sweep_new, temp, top_p, torch.Generator().manual_seed(ctx.seed + 5))
        sweep.append(summarise(toks, nll, kind=kind, temperature=temp, top_p=top_p))
        r = sweep[-1]
        ctx.log(f"{kind:11s} T {temp:.2f} p {top_p:.2f}: NLL {r['nll']:.3f} distinct-2 {r['distinct_2']:.3f} "
                f"repeat-4 {r['repeat_4']:.3f}  | {r['example'][:30]!r}")

    data = {
        "corpus": {"files": n_files, "chars": len(text), "vocab": len(chars), "val_chars": len(val)},
        "train": {"steps": steps, "block": block, "batch": batch, "lr": 3e-3, "warmup_steps": steps // 10},
        "models": info,
        "prompt_chars": prompt,
        "spec": {"new_tokens": new_tokens, "prompts": prompts, "repeats": repeats, "temperature": 1.0,
                 "target_only_time_s": base, "target_only_times_s": t_base,
                 "forward_time_s": cost, "context": ctx_len, "drafts": spec},
        "distribution": {"draft": small, "samples": dist_samples, "prefixes": dist},
        "sweep": {"prompts": sweep_prompts, "new_tokens": sweep_new, "rows": sweep},
    }
    return Measurement(model=f"char GPTs: target {_name(target)}, drafts {', '.join(dnames)}", claim=CLAIM,
                       data=data, steps=steps)
