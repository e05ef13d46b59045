"""The serving experiments of part 5.2: quantisation of MiniLM and prefill vs decode timing. The claims are checked
on a fresh --quick run (the session's ``quick`` fixture) and on the committed full-run data the cards quote."""

from __future__ import annotations

from tests.conftest import ROOT, load_run

DATA = ROOT / "figures" / "data"


def check_quantization(d: dict) -> None:
    w = d["weight"]
    for bits in ("int8", "int4"):  # per channel beats per tensor: a smaller weight error and a closer output
        tensor, channel = w[f"{bits}_tensor"], w[f"{bits}_channel"]
        assert channel["rel_weight_error"] < 0.5 * tensor["rel_weight_error"], (bits, tensor, channel)
        assert channel["one_minus_cos_mean"] < 0.5 * tensor["one_minus_cos_mean"], (bits, tensor, channel)
    # four bits per tensor is far worse than eight; groups of 64 are finer than whole rows
    assert w["int4_tensor"]["one_minus_cos_mean"] > 10 * w["int8_tensor"]["one_minus_cos_mean"]
    assert w["int4_group"]["rel_weight_error"] < w["int4_channel"]["rel_weight_error"]
    # a few hidden dimensions of the LayerNorm outputs carry outliers; the attention output has none so large
    o = d["outliers"]
    assert o["shown"]["ratio"] > 8 and o["shown"]["ratio"] > 2 * o["control"]["ratio"], o["shown"]["ratio"]
    # W8A8 at the LayerNorm-fed inputs: per-tensor activations lose accuracy, keeping the outlier columns in
    # floating point (LLM.int8()) or migrating them into the weights (SmoothQuant) wins most of it back
    act = d["activation"]["ln_inputs"]
    base = d["activation"]["w8_only"]["one_minus_cos_mean"]
    lost = act["per_tensor"]["one_minus_cos_mean"] - base
    assert lost > 0, act
    for fix in ("int8_decomp", "smoothquant"):
        assert act[fix]["one_minus_cos_mean"] - base < 0.5 * lost, (fix, act[fix], act["per_tensor"])


def test_quantization_per_channel_beats_per_tensor_and_outliers_need_a_fix(quick):
    check_quantization(load_run(quick[0], "quantization"))


def test_committed_quantization_data_shows_what_the_cards_say():
    d = load_run(DATA, "quantization")
    check_quantization(d)
    assert d["sentences"] >= 64 and d["linears"] == 36
    # at all 36 inputs (fc2 reads the GELU output, which SmoothQuant's factors do not cover) only the fp columns help
    act = d["activation"]["all_inputs"]
    assert act["int8_decomp"]["one_minus_cos_mean"] < 0.2 * act["per_tensor"]["one_minus_cos_mean"]
    assert act["smoothquant"]["one_minus_cos_mean"] > 0.5 * act["per_tensor"]["one_minus_cos_mean"]
    # the per-tensor gap comes from the FFN output matrices (fc2), whose rows' max |w| differ the most
    w = d["weight"]["int8_tensor"]["rel_weight_error_per_matrix"]
    worst = max(range(len(w)), key=w.__getitem__)
    assert d["linear_names"][worst].endswith("output.dense") and ".attention." not in d["linear_names"][worst]
    assert d["weight_row_amax_spread"][worst] == max(d["weight_row_amax_spread"])


def check_prefill_decode(d: dict) -> None:
    rows = {r["batch"]: r for r in d["rows"]}
    big = max(b for b in rows if b <= 16)
    # decode is memory-bound: batching B sequences costs far less than B times one step
    assert rows[big]["decode_per_token_s"] < 0.5 * rows[1]["decode_per_token_s"], (rows[1], rows[big])
    # prefill processes a whole prompt per forward: per token far cheaper than decoding one token alone
    assert rows[big]["prefill_per_token_s"] < rows[1]["decode_per_token_s"], (rows[1], rows[big])
    assert rows[1]["prefill_per_token_s"] < rows[1]["decode_per_token_s"], rows[1]


def test_decode_gets_cheaper_per_token_with_batch_size_and_prefill_is_cheaper_still(quick):
    check_prefill_decode(load_run(quick[0], "prefill_decode"))


def test_committed_prefill_decode_data_shows_what_the_card_says():
    d = load_run(DATA, "prefill_decode")
    check_prefill_decode(d)
    rows = {r["batch"]: r for r in d["rows"]}
    assert max(rows) >= 32 and d["gpt"]["weight_bytes"] > 64 * 2**20  # weights far beyond the CPU's caches
    # decode's time per step grows far slower than the batch: 16 sequences cost well under 16 single steps
    assert rows[16]["decode_step_s"] < 8 * rows[1]["decode_step_s"], (rows[1], rows[16])
    # from B=32 on the KV cache read per step outweighs the weights and cannot be shared: per token stops falling
    assert rows[32]["decode_cache_bytes"] > d["gpt"]["weight_bytes"] > rows[16]["decode_cache_bytes"]
    assert rows[64]["decode_per_token_s"] > 0.7 * rows[32]["decode_per_token_s"], (rows[32], rows[64])
