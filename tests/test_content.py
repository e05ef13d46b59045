"""The real deck: coverage of the guide, size, and formulas that MathJax 3.2.2 (as Anki ships it) can typeset."""
from __future__ import annotations

import html
import re

import pytest

from ankideck import gather, load_config
from ankideck.stats import stats
from tests.conftest import ROOT

MATH_RE = re.compile(r"\\\((.*?)\\\)|\\\[(.*?)\\\]", re.S)
MACRO_RE = re.compile(r"\\([A-Za-z]+)")
ENV_RE = re.compile(r"\\(begin|end)\{([^}]*)\}")

# Macros of MathJax 3's TeX input with the packages Anki loads (base, ams, boldsymbol, ...), restricted to what a
# deck like this needs. A macro outside this list fails the test: add it here only after checking MathJax knows it.
GREEK = """alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi varpi rho
varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi
Omega""".split()
KNOWN_MACROS = set(GREEK) | set("""
frac dfrac tfrac cfrac binom dbinom tbinom sqrt sum prod int iint oint lim limsup liminf max min sup inf arg argmax
argmin log ln exp sin cos tan tanh sinh cosh sec det dim ker Pr deg gcd mod bmod pmod
left right big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr middle
mathrm mathbf mathbb mathcal mathit mathsf mathtt mathfrak mathscr boldsymbol bm operatorname text textbf textit
textrm texttt mbox hat tilde bar overline underline widehat widetilde vec dot ddot overbrace underbrace
overrightarrow overleftarrow underset overset stackrel
cdot cdots ldots dots vdots ddots times div pm mp ast star circ bullet odot oplus otimes oslash setminus
le leq ge geq ne neq approx sim simeq cong equiv propto ll gg prec succ preceq succeq subset subseteq supset supseteq
in notin ni cup cap vee wedge land lor lnot neg forall exists nexists emptyset varnothing infty partial nabla
to gets mapsto rightarrow leftarrow Rightarrow Leftarrow Leftrightarrow leftrightarrow longrightarrow
longleftarrow Longrightarrow iff implies uparrow downarrow
mid parallel perp top bot angle triangle ell hbar Re Im aleph
lVert rVert lvert rvert Vert vert lfloor rfloor lceil rceil langle rangle lbrace rbrace backslash
quad qquad enspace thinspace negthinspace hspace vspace phantom hphantom vphantom displaystyle textstyle
scriptstyle color boxed cancel
begin end tag notag nonumber label limits nolimits substack
""".split())
KNOWN_ENVIRONMENTS = {"aligned", "align", "align*", "cases", "matrix", "pmatrix", "bmatrix", "vmatrix", "Vmatrix",
                      "array", "gathered", "split", "smallmatrix", "equation", "equation*"}


@pytest.fixture(scope="module")
def plan():
    return gather(load_config(ROOT), now=0)


def test_every_guide_question_has_cards():
    data = stats(load_config(ROOT))
    # The interview guide's own 35 questions (parts 1-3), then the deck's parts beyond it (4, 5).
    own = {qid: entry for qid, entry in data["guide"].items() if qid.split(".")[0] in {"1", "2", "3"}}
    beyond = {qid: entry for qid, entry in data["guide"].items() if qid not in own}
    assert len(own) == 35
    uncovered = [qid for qid, entry in data["guide"].items() if not entry["cards"]]
    assert uncovered == []
    assert [qid for qid, entry in own.items() if len(entry["cards"]) < 3] == []
    assert [qid for qid, entry in beyond.items() if len(entry["cards"]) < 5] == []


def test_deck_size_and_structure(plan):
    assert len(plan.notes) >= 150
    decks = {note.source.deck for note in plan.notes}
    assert {"AIGC面经::1 个人项目介绍", "AIGC面经::2 深度学习基础::2.1 公式理解类",
            "AIGC面经::2 深度学习基础::2.2 模型训练通识", "AIGC面经::3 细分算法::3.1 NLP问题",
            "AIGC面经::3 细分算法::3.2 Transformer细节", "AIGC面经::3 细分算法::3.3 大模型问题"} <= decks
    assert sum(note.source.kind == "cloze" for note in plan.notes) >= 20
    assert all(note.source.guide for note in plan.notes), "every card points at a guide question"


def formulas(plan):
    for note in plan.notes:
        for field, field_html in note.fields.items():
            for match in MATH_RE.finditer(field_html):
                yield note.source, match.group(1) if match.group(1) is not None else match.group(2)


def brace_problem(tex: str) -> str | None:
    depth = 0
    for token in re.findall(r"\\.|[{}]", tex.replace("\\\\", "")):
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth < 0:
                return "a '}' closes nothing"
    return "unclosed '{'" if depth else None


def formula_problems(tex: str) -> list[str]:
    """What keeps MathJax 3.2.2, as Anki ships it, from typesetting ``tex`` as written."""
    problems = []
    if problem := brace_problem(tex):
        problems.append(problem)
    stack = []
    for kind, env in ENV_RE.findall(tex):
        if env not in KNOWN_ENVIRONMENTS:
            problems.append(f"unknown environment '{env}'")
        if kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            problems.append(f"\\end{{{env}}} does not match")
    if stack:
        problems.append(f"\\begin{{{stack[-1]}}} is never ended")
    lefts, rights = len(re.findall(r"\\left\b", tex)), len(re.findall(r"\\right\b", tex))
    if lefts != rights:
        problems.append(f"{lefts} \\left but {rights} \\right")
    for macro in sorted(set(MACRO_RE.findall(tex)) - KNOWN_MACROS):
        problems.append(f"macro \\{macro} is not in the list MathJax is known to support")
    for text in re.findall(r"\\text\{([^{}]*)\}", tex):
        if "\\" in text:  # Anki's MathJax has no textmacros package: a macro in \text{} prints literally
            problems.append(f"macro inside \\text{{{text}}}")
    if "$" in tex.replace("\\$", ""):
        problems.append("a '$' inside math (nested delimiters?)")
    return problems


def test_formulas_are_well_formed_for_mathjax(plan):
    problems = [f"{card.location} ({card.id}): {tex[:60]!r}: {problem}"
                for card, tex in formulas(plan) for problem in formula_problems(tex)]
    assert problems == []


def test_the_formula_checker_catches_bad_tex():
    assert brace_problem(r"\frac{a}{b") == "unclosed '{'"
    assert brace_problem(r"a}") == "a '}' closes nothing"
    assert brace_problem(r"\{x\} \frac{a}{b}") is None
    assert formula_problems(r"\begin{aligned} a &= b \\ &= c \end{aligned}") == []
    assert formula_problems(r"\newcommand{\x}{1} \x") == [
        "macro \\newcommand is not in the list MathJax is known to support",
        "macro \\x is not in the list MathJax is known to support"]
    assert formula_problems(r"\begin{eqnarray} a \end{aligned}") == [
        "unknown environment 'eqnarray'", "\\end{aligned} does not match"]
    assert formula_problems(r"\left( x") == ["1 \\left but 0 \\right"]
    assert formula_problems(r"\text{\alpha} $x$") == ["macro inside \\text{\\alpha}",
                                                      "a '$' inside math (nested delimiters?)"]


MAX_DELETIONS = 4         # per note: a cloze with more is a list to split (the minimum-information principle)
MAX_DELETION_CHARS = 30   # a deletion is recalled word for word: a whole sentence is not a deletion


def cloze_problems(plan) -> list[str]:
    from ankideck.cloze import DELETION_RE

    problems = []
    for note in plan.notes:
        if note.source.kind != "cloze":
            continue
        # The rendered field, as Anki parses it: "}}" inside TeX is already written "} }" there.
        text = html.unescape(re.sub(r"<[^>]+>", "", note.fields["Text"]))
        deletions = DELETION_RE.findall(text)
        if len(deletions) > MAX_DELETIONS:
            problems.append(f"{note.source.location} ({note.source.id}): {len(deletions)} deletions, "
                            f"at most {MAX_DELETIONS}")
        for _, answer, _ in deletions:
            shown = re.sub(r"\\\(.*?\\\)|\\\[.*?\\\]", "X", answer, flags=re.S)   # a formula counts as one character
            if len(shown) > MAX_DELETION_CHARS:
                problems.append(f"{note.source.location} ({note.source.id}): a {len(shown)}-character deletion "
                                f"'{shown[:20]}...' (at most {MAX_DELETION_CHARS}): split it or cue a shorter one")
    return problems


def test_clozes_are_atomic(plan):
    assert cloze_problems(plan) == []
