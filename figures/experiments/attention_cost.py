"""Experiment 9: what attention costs.

(a) Naive attention (materialise the (L, L) score matrix, mask, softmax, multiply) vs the fused
    torch.nn.functional.scaled_dot_product_attention, causal, forward pass, time against sequence length L.
(b) Greedy generation with a tiny GPT (random weights) with vs without a KV cache, time against the number of
    generated tokens; the two produce the same tokens.
(c) KV-cache bytes for MHA, GQA and MQA: measured on the tiny GPT's real cache tensors, and by the formula
    2 * layers * kv_heads * head_dim * bytes * tokens for a 7B-class configuration (32 layers, 32 query heads of 128).
"""

import math

import torch
import torch.nn.functional as F

from .common import Measurement
from .gpt import GPT, GPTConfig, cache_bytes

CPU_THREADS = None  # torch threads on the CPU; None = all cores (timings)
SIZES = {
    "quick": {"lengths": [128, 512], "reps": 2, "new_tokens": [32, 128], "cache_context": 128},
    "full": {"lengths": [128, 256, 512, 1024, 2048], "reps": 5, "new_tokens": [64, 128, 256, 512],
             "cache_context": 1024},
    "full-cuda": {"lengths": [256, 512, 1024, 2048, 4096, 8192], "reps": 5, "new_tokens": [64, 128, 256, 512],
                  "cache_context": 1024},
}

CLAIM = (
    "Fused attention (SDPA) beats the naive softmax(QK^T)V at every length; without a KV cache generation time grows "
    "quadratically with length, with it about linearly; GQA/MQA shrink the cache by n_head / n_kv_head."
)


def naive_attention(q, k, v):
    L = q.size(-2)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (B, H, L, L): the matrix SDPA never stores whole
    mask = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    return att @ v  # (B, H, L, hd)


def run(ctx, lengths: list[int], reps: int, new_tokens: list[int], cache_context: int) -> Measurement:
    dev = ctx.torch_device()
    out = {}

    # (a) naive vs fused --------------------------------------------------------------------------------------
    B, H, hd = (4, 8, 64)
    lens = lengths
    t_naive, t_sdpa, max_err = [], [], []
    for L in lens:
        ctx.seed_all()
        q, k, v = (torch.randn(B, H, L, hd, device=dev) for _ in range(3))  # (B, H, L, hd)
        with torch.no_grad():
            fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            err = (naive_attention(q, k, v) - fused).abs().max().item()
            tn = ctx.time_fn(lambda: naive_attention(q, k, v), reps=reps, budget_s=15)
            ts = ctx.time_fn(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), reps=reps, budget_s=15)
        t_naive.append(tn)
        t_sdpa.append(ts)
        max_err.append(err)
        ctx.log(f"attention L={L:5d}: naive {tn * 1e3:8.2f} ms  SDPA {ts * 1e3:8.2f} ms  x{tn / ts:.1f}  "
                f"(max |diff| {err:.1e})")
    out["attention"] = {
        "batch": B, "heads": H, "head_dim": hd, "causal": True, "lengths": lens, "reps": reps,
        "time_naive_s": t_naive, "time_sdpa_s": t_sdpa, "max_abs_diff": max_err,
        "score_matrix_bytes": [B * H * L * L * 4 for L in lens],
    }

    # (b) generation with vs without the KV cache -------------------------------------------------------------
    gen_lens = new_tokens
    cfg = GPTConfig(vocab_size=256, block_size=max(gen_lens) + 1, n_layer=4, n_head=8, n_embd=256)
    ctx.seed_all()
    model = GPT(cfg).to(dev).eval()
    prompt = torch.randint(cfg.vocab_size, (1, 1), device=dev)  # (1, 1)
    t_cache, t_nocache, same = [], [], []
    for n in gen_lens:
        tc = ctx.time_fn(lambda: model.generate(prompt, n, use_cache=True), reps=1, warmup=1)
        tn = ctx.time_fn(lambda: model.generate(prompt, n, use_cache=False), reps=1, warmup=0)
        a, _ = model.generate(prompt, n, use_cache=True)
        b, _ = model.generate(prompt, n, use_cache=False)
        t_cache.append(tc)
        t_nocache.append(tn)
        same.append(bool(torch.equal(a, b)))
        ctx.log(f"generate {n:5d} tokens: KV cache {tc:.3f} s  recompute {tn:.3f} s  x{tn / tc:.1f}  "
                f"same tokens {same[-1]}")
    out["generation"] = {
        "model": f"GPT {cfg.n_layer} layers, d={cfg.n_embd}, {cfg.n_head} heads, random weights, greedy, batch 1",
        "new_tokens": gen_lens, "time_cache_s": t_cache, "time_nocache_s": t_nocache, "same_tokens": same,
    }

    # (c) KV-cache bytes: measured on the tiny model, and the formula for a 7B-class model ----------------------
    n_ctx = cache_context
    measured = {}
    for name, kv in (("MHA", 8), ("GQA", 2), ("MQA", 1)):
        c = GPTConfig(vocab_size=256, block_size=n_ctx, n_layer=4, n_head=8, n_kv_head=kv, n_embd=256)
        ctx.seed_all()
        m = GPT(c).to(dev).eval()
        _, caches = m.generate(prompt, n_ctx, use_cache=True)  # 1 prompt token + n_ctx - 1 fed back = n_ctx cached
        measured[name] = {"kv_heads": kv, "bytes": cache_bytes(caches),
                          "formula_bytes": 2 * c.n_layer * kv * (c.n_embd // c.n_head) * 4 * n_ctx}
        ctx.log(f"tiny {name} ({kv} KV heads): cache after {n_ctx} tokens = {measured[name]['bytes'] / 1024:.0f} KiB")
    contexts = [1024, 2048, 4096, 8192, 16384, 32768]
    big = {"layers": 32, "query_heads": 32, "head_dim": 128, "bytes_per_value": 2}  # fp16, LLaMA-2-7B shape
    big_bytes = {name: [2 * 32 * kv * 128 * 2 * t for t in contexts]
                 for name, kv in (("MHA", 32), ("GQA", 8), ("MQA", 1))}
    out["kv_cache"] = {
        "tiny": {"context": n_ctx, "layers": 4, "query_heads": 8, "head_dim": 32, "dtype": "float32",
                 "measured": measured},
        "big": {"config": big, "kv_heads": {"MHA": 32, "GQA": 8, "MQA": 1}, "contexts": contexts, "bytes": big_bytes},
    }
    return Measurement(model="SDPA vs naive; tiny GPT 4x256 for generation", claim=CLAIM, data=out)
