"""A tiny GPT in the style of nanoGPT, with the switches the experiments need.

- ``pre_ln``: Pre-LN (x + f(LN(x)), final LN) or Post-LN (LN(x + f(x)), as in the original Transformer and BERT).
- ``n_kv_head``: MHA (= n_head), GQA (a divisor) or MQA (1) key/value heads.
- ``forward(idx, cache=..., need_weights=...)``: an optional KV cache for generation and the attention maps.

Also the character-level data from the cards both tiny-GPT experiments train on, and ``get_batch`` for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 256
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None  # None = n_head (MHA)
    n_embd: int = 128
    pre_ln: bool = True
    dropout: float = 0.0
    init: str = "gpt2"  # "gpt2": N(0, 0.02) everywhere; "xavier": Xavier-uniform linears, N(0, 1) embeddings

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0 and cfg.n_head % cfg.kv_heads == 0
        self.n_head, self.n_kv, self.hd = cfg.n_head, cfg.kv_heads, cfg.n_embd // cfg.n_head
        self.q = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.kv = nn.Linear(cfg.n_embd, 2 * self.n_kv * self.hd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x, cache=None, need_weights=False):
        B, T, C = x.shape
        q = self.q(x).view(B, T, self.n_head, self.hd).transpose(1, 2)  # (B, nh, T, hd)
        k, v = self.kv(x).view(B, T, 2, self.n_kv, self.hd).permute(2, 0, 3, 1, 4)  # 2 x (B, nkv, T, hd)
        if cache is not None:  # append to this layer's cache: (B, nkv, T_past + T, hd)
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        Tk = k.size(2)
        if self.n_kv != self.n_head:  # GQA / MQA: each K/V head serves n_head / n_kv query heads
            rep = self.n_head // self.n_kv
            k = k.repeat_interleave(rep, dim=1)  # (B, nh, Tk, hd)
            v = v.repeat_interleave(rep, dim=1)
        # queries sit at positions Tk-T .. Tk-1: a query may see keys up to its own position
        causal = T > 1
        if need_weights:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd)  # (B, nh, T, Tk)
            mask = torch.ones(T, Tk, dtype=torch.bool, device=x.device).tril(Tk - T)
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = att @ v  # (B, nh, T, hd)
        else:
            att = None
            if causal and Tk != T:  # chunk appended to a cache: explicit offset mask
                mask = torch.ones(T, Tk, dtype=torch.bool, device=x.device).tril(Tk - T)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.proj(y), att


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.pre_ln = cfg.pre_ln
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cache=None, need_weights=False):
        if self.pre_ln:  # x + f(LN(x))
            a, att = self.attn(self.ln1(x), cache, need_weights)
            x = x + self.drop(a)
            x = x + self.drop(self.mlp(self.ln2(x)))
        else:  # LN(x + f(x))
            a, att = self.attn(x, cache, need_weights)
            x = self.ln1(x + self.drop(a))
            x = self.ln2(x + self.drop(self.mlp(x)))
        return x, att


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        # Post-LN as in BERT: a LayerNorm on the embeddings, then LN(x + f(x)) in every block, no final LN
        self.ln_e = nn.Identity() if cfg.pre_ln else nn.LayerNorm(cfg.n_embd)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd) if cfg.pre_ln else nn.Identity()  # Post-LN output is normalised already
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.apply(self._init)

    def _init(self, m):
        if self.cfg.init == "xavier":  # the original Transformer / Xiong et al. 2020 setting
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=1.0)
        elif isinstance(m, (nn.Linear, nn.Embedding)):  # GPT-2 / BERT: N(0, 0.02)
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx, targets=None, caches=None, need_weights=False):
        B, T = idx.shape  # (B, T) token ids
        past = 0 if caches is None or caches[0].get("k") is None else caches[0]["k"].size(2)
        pos = torch.arange(past, past + T, device=idx.device)
        x = self.ln_e(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        maps = []
        for i, blk in enumerate(self.blocks):
            x, att = blk(x, None if caches is None else caches[i], need_weights)
            maps.append(att)
        logits = self.head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss, (maps if need_weights else None)

    @torch.no_grad()
    def generate(self, idx, new_tokens: int, use_cache: bool = True):
        """Greedy decoding. With the cache each step feeds one token; without it each step re-runs the prefix."""
        caches = [{} for _ in self.blocks] if use_cache else None
        out = idx
        logits, _, _ = self(idx, caches=caches)
        for i in range(new_tokens):
            nxt = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            out = torch.cat([out, nxt], dim=1)
            if i == new_tokens - 1:
                break
            if use_cache:
                logits, _, _ = self(nxt, caches=caches)
            else:
                logits, _, _ = self(out)
        return out, caches


def cache_bytes(caches) -> int:
    return sum(c[k].numel() * c[k].element_size() for c in caches for k in ("k", "v"))


def corpus(cards_dir) -> tuple[str, int]:
    """The deck's card text, cards/**/*.md, without cards/experiments/ (those cards quote these runs' numbers:
    training on them would make the numbers depend on themselves)."""
    root = Path(cards_dir)
    files = sorted(f for f in root.rglob("*.md") if "experiments" not in f.relative_to(root).parts)
    return "\n".join(f.read_text(encoding="utf-8") for f in files), len(files)


def char_dataset(cards_dir):
    """Character-level data from the card text: (text, vocabulary, train ids, held-out ids (last 10%), file count)."""
    text, n_files = corpus(cards_dir)
    if len(text) < 2_000:
        raise RuntimeError(f"too little card text under {cards_dir} ({len(text)} chars)")
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)  # (len(text),)
    n_val = len(ids) // 10
    return text, chars, ids[:-n_val], ids[-n_val:], n_files


def get_batch(ids, block: int, batch: int, generator, device):
    """``batch`` random windows of ``ids``: inputs (B, T) and the next characters (B, T), T = ``block``."""
    ix = torch.randint(len(ids) - block - 1, (batch,), generator=generator)
    x = torch.stack([ids[i:i + block] for i in ix])  # (B, T)
    y = torch.stack([ids[i + 1:i + block + 1] for i in ix])  # (B, T)
    return x.to(device), y.to(device)


def train_lm(model, ids, *, steps: int, block: int, batch: int, lr: float, generator, device, warmup: int = 0,
             min_lr: float = 0.1, log=None) -> list[float]:
    """Train a language model on random windows of ``ids`` (next-token loss) and return every step's loss.

    Adam(0.9, 0.98); the learning rate rises linearly over ``warmup`` steps, then follows a cosine down to
    ``min_lr`` x ``lr``. ``log(step, loss)`` is called on a few evenly spaced steps. The one training loop for the
    experiments that need a trained tiny GPT and nothing special about the training itself.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    model.train()
    losses = []
    for step in range(steps):
        if step < warmup:
            f = (step + 1) / warmup
        else:
            t = (step - warmup) / max(1, steps - warmup)
            f = min_lr + (1 - min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        for pg in opt.param_groups:
            pg["lr"] = lr * f
        _, loss, _ = model(*get_batch(ids, block, batch, generator, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log is not None and (step == steps - 1 or (steps >= 4 and step % max(1, steps // 4) == 0 and step)):
            log(step, loss.item())
    model.eval()
    return losses
