"""Experiment: prefill vs decode, time per token against batch size, on a tiny GPT with a KV cache.

A GPT of figures/experiments/gpt.py with random weights (nothing is trained: only the arithmetic matters), larger
than the CPU's last-level cache in the full run. For each batch size B: prefill = one forward of B prompts of L
tokens that fills the KV cache; decode = ``new_tokens`` forwards of one token per sequence, each reading every
weight and the whole cache. Reported: median time per forward and per token for both phases, and the arithmetic
intensity (FLOPs per byte read from memory) each phase offers:
    prefill   ~ 2 N B L FLOPs over 4 N bytes of weights (fp32): B L / 2 FLOP/byte,
    decode    ~ 2 N B   FLOPs over 4 N bytes of weights + the cache: at most B / 2 FLOP/byte,
with N the parameters of the matrix multiplications. Decode at small B is memory-bound (time per step nearly flat in
B, so time per token falls ~1/B: the reason batching, and continuous batching, exist); prefill is compute-bound
(time ~ B L, time per token roughly constant). See Pope et al. 2022 ("Efficiently Scaling Transformer Inference")
for the analysis; Yu et al. 2022 (Orca) and Kwon et al. 2023 (vLLM) for batching at decode.
"""

import torch

from .common import Measurement
from .gpt import GPT, GPTConfig

CPU_THREADS = None  # timing: every core (see runs.py)
SIZES = {
    "quick": {"n_layer": 4, "n_embd": 256, "n_head": 8, "prompt": 64, "new_tokens": 8, "batches": [1, 4, 16],
              "reps": 3},
    "full": {"n_layer": 8, "n_embd": 512, "n_head": 8, "prompt": 128, "new_tokens": 16,
             "batches": [1, 2, 4, 8, 16, 32, 64], "reps": 3},
}

CLAIM = (
    "Decoding with a KV cache is memory-bound: each step reads all weights for one token per sequence, so its time is "
    "nearly flat in the batch size and the time per token falls ~1/B; prefill is compute-bound, its time per token "
    "roughly constant and far below decode's at batch 1 (Pope et al. 2022)."
)


def run(ctx, n_layer: int, n_embd: int, n_head: int, prompt: int, new_tokens: int, batches: list[int],
        reps: int) -> Measurement:
    dev = ctx.torch_device()
    L, n_new = prompt, new_tokens
    cfg = GPTConfig(vocab_size=256, block_size=L + n_new, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    ctx.seed_all()
    model = GPT(cfg).to(dev).eval()
    # parameters of the matrix multiplications: the blocks' Linears and the output head (embeddings are lookups)
    n_mm = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    n_all = sum(p.numel() for p in model.parameters())
    wbytes = n_mm * 4  # fp32
    ctx.log(f"GPT {n_layer}x{n_embd}: {n_all / 1e6:.1f} M parameters, {wbytes / 2**20:.0f} MiB of matmul weights")

    def attn_flops(q_tokens, ctx_len):  # QK^T and AV: 2 * 2 * d per (query, key) pair, per layer
        return 4 * n_embd * q_tokens * ctx_len * n_layer

    inputs = {}
    for B in batches:
        g = torch.Generator().manual_seed(ctx.seed + B)
        inputs[B] = (torch.randint(cfg.vocab_size, (B, L), generator=g).to(dev),  # (B, L) prompts
                     torch.randint(cfg.vocab_size, (B, 1), generator=g).to(dev))  # (B, 1) fed at every decode step

    @torch.no_grad()
    def prefill(B):
        caches = [{} for _ in model.blocks]
        model(inputs[B][0], caches=caches)  # fills (B, n_kv, L, hd) keys and values per layer
        return caches

    @torch.no_grad()
    def decode_round(B, filled):
        """Median seconds of one decode step over ``n_new`` steps, one token per sequence each."""
        caches = [dict(c) for c in filled]  # torch.cat makes new tensors: the prefilled cache stays intact
        return ctx.time_fn(lambda: model(inputs[B][1], caches=caches), reps=n_new, warmup=0)

    # Rounds over all batch sizes, medians over rounds: a burst of load from other processes on the shared cores
    # hits one round of every size, not every round of one size.
    t_pre = {B: [] for B in batches}
    t_dec = {B: [] for B in batches}
    for r in range(reps + 1):  # round 0 warms up
        for B in batches:
            t = ctx.time_fn(lambda: prefill(B), reps=1, warmup=0)
            d = decode_round(B, prefill(B))
            if r:
                t_pre[B].append(t)
                t_dec[B].append(d)
        if r:
            ctx.log(f"round {r}/{reps}")

    def median(v):
        v = sorted(v)
        return v[len(v) // 2]

    rows = []
    for B in batches:
        tp, td = median(t_pre[B]), median(t_dec[B])
        mean_ctx = L + (n_new + 1) / 2  # keys a decode step attends to, on average: step k (0..n_new-1) L + k + 1
        cache_bytes = 2 * n_layer * B * mean_ctx * n_embd * 4  # K and V read per step, fp32
        f_pre = 2 * n_mm * B * L + attn_flops(B * L, (L + 1) / 2)  # causal: (L+1)/2 keys per query on average
        f_dec = 2 * n_mm * B + attn_flops(B, mean_ctx)
        row = {
            "batch": B,
            "prefill_s": tp, "prefill_per_token_s": tp / (B * L),
            "decode_step_s": td, "decode_per_token_s": td / B,
            "prefill_s_all": t_pre[B], "decode_step_s_all": t_dec[B],  # per round
            "prefill_flops": f_pre, "decode_flops": f_dec,
            "prefill_intensity": f_pre / wbytes,  # FLOP per byte of weights read (the cache is written, not read)
            "decode_intensity": f_dec / (wbytes + cache_bytes),
            "decode_intensity_weights_only": f_dec / wbytes,
            "decode_cache_bytes": cache_bytes,
            "prefill_gflops": f_pre / tp / 1e9,
            "decode_gflops": f_dec / td / 1e9,
            "decode_gbytes_per_s": (wbytes + cache_bytes) / td / 1e9,
        }
        rows.append(row)
        ctx.log(f"B={B:3d}: prefill {tp * 1e3:8.1f} ms ({row['prefill_per_token_s'] * 1e6:7.1f} us/token, "
                f"{row['prefill_gflops']:5.1f} GFLOP/s)  decode step {td * 1e3:7.2f} ms "
                f"({row['decode_per_token_s'] * 1e6:8.1f} us/token, {row['decode_gflops']:5.1f} GFLOP/s, "
                f"{row['decode_gbytes_per_s']:5.1f} GB/s)")

    data = {
        "gpt": {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "vocab": cfg.vocab_size,
                "parameters": n_all, "matmul_parameters": n_mm, "weight_bytes": wbytes, "dtype": "float32"},
        "prompt": L,
        "new_tokens": n_new,
        "batches": list(batches),
        "reps": reps,
        "rows": rows,
    }
    return Measurement(model=f"tiny GPT {n_layer}x{n_embd}, random weights, KV cache, fp32", claim=CLAIM, data=data)
