"""Markdown -> field HTML, through Python-Markdown's extension API (imported only when something must render).

``Renderer.render(text, cloze)`` returns a ``Rendered``: sanitising, media resolution and the cache are the build's.
"""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from functools import lru_cache
from urllib.parse import unquote

import markdown
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.preprocessors import HtmlBlockPreprocessor, Preprocessor
from markdown.treeprocessors import InlineProcessor as InlineTreeprocessor
from markdown.treeprocessors import Treeprocessor, UnescapeTreeprocessor
from markdown.util import STX, AtomicString

from .cloze import DELETION_RE
from .fences import FENCE_OPEN_RE, closes
from .highlight import highlight
from .regex_promises import needed_literals
from .rendered import PLACEHOLDER, REMOTE_RE, Rendered
from .theme import VARIANTS, figure_class

# The widest code line that fits a 390 px phone without scrolling: the code box in the Extra is 360 px wide, minus
# padding and border, at 13 px monospace (0.6 em a column). A wide (CJK) character takes two columns.
CODE_COLUMNS = 42
CLOSE_BRACES_RE = re.compile(r"\}(?=\})")   # "}}" inside TeX in a cloze note: written "} }"


def display_columns(line: str) -> int:
    """Columns a line of code takes in a monospace font, cloze markers shown as their answer."""
    import unicodedata

    line = DELETION_RE.sub(lambda m: m.group(2), line).expandtabs(4)
    if line.isascii():  # most code: no wide character to look up
        return len(line)
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in line)


class RendererBound:
    """A processor that reports references and problems to the Renderer that owns it, and reads its cloze flag."""

    def __init__(self, md, renderer: "Renderer"):
        super().__init__(md)
        self.renderer = renderer


class FencedCodePreprocessor(RendererBound, Preprocessor):
    """Fenced code blocks -> highlighted HTML in the stash (before math and inline Markdown can touch them)."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        index = 0
        while index < len(lines):
            opened = FENCE_OPEN_RE.match(lines[index])
            if not opened:
                out.append(lines[index])
                index += 1
                continue
            fence, indent = opened.group("fence"), len(opened.group("indent"))
            info = opened.group("info").split()
            language = info[0].lower() if info else ""
            body: list[str] = []
            index += 1
            while index < len(lines):
                if closes(lines[index], fence):
                    break
                body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
                index += 1
            index += 1  # the closing fence (the parser has already reported a missing one)
            code, known = highlight("\n".join(body), language)
            if not known:
                self.renderer.problems.append((opened.group(0).strip(), f"unknown code language '{language}'"))
            for line in body:
                if (columns := display_columns(line)) > CODE_COLUMNS:
                    self.renderer.problems.append((line.strip(), f"code line {columns} columns wide: at most "
                                                   f"{CODE_COLUMNS} fit a 390 px phone (break it, or put the comment "
                                                   "on its own line)"))
            css = f' class="language-{language}"' if language else ""
            placeholder = self.md.htmlStash.store(f'<div class="codehilite"><pre><code{css}>{code}</code></pre></div>')
            out.extend(["", placeholder, ""])
        return out


class ListAfterTextPreprocessor(Preprocessor):
    """A list right after a line of text is a list, as in CommonMark (and as authors expect).

    Python-Markdown only starts a list after a blank line: without one, ``text\n- a\n- b`` renders as one run-on
    paragraph with literal " - " markers. A blank line is put before a list item that follows a paragraph line (not
    inside a list already, not in a block quote). As in CommonMark, an ordered list interrupts a paragraph only when
    it starts at 1, so "2024. 年" stays prose.
    """

    ITEM_RE = re.compile(r"^ {0,3}(?:[-*+]|1\.)[ \t]+\S")
    QUOTE_RE = re.compile(r"^ {0,3}>")

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        block_is_list = block_is_quote = False   # what the current run of non-blank lines is
        for line in lines:
            if not line.strip():
                block_is_list = block_is_quote = False
            elif self.ITEM_RE.match(line):
                if out and out[-1].strip() and not (block_is_list or block_is_quote):
                    out.append("")
                block_is_list = True
            elif not (out and out[-1].strip()):
                block_is_quote = bool(self.QUOTE_RE.match(line))
            out.append(line)
        return out


# --- math ---------------------------------------------------------------------------------------------------------

class DisplayMathPreprocessor(RendererBound, Preprocessor):
    """``$$`` blocks -> ``\\[...\\]`` in the stash, whether or not blank lines surround them.

    Python-Markdown's block parser only sees blocks between blank lines, so two display formulas on consecutive
    lines, or one glued to a paragraph, would otherwise merge into one broken formula.
    """

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        index = 0
        while index < len(lines):
            stripped = lines[index].strip()
            one_line = stripped.startswith("$$") and stripped.endswith("$$") and stripped.count("$$") == 2 \
                and len(stripped) > 4
            opener = stripped.startswith("$$") and "$$" not in stripped[2:]
            if lines[index].startswith("    ") or not (one_line or opener):
                out.append(lines[index])  # not a display block: prose, or $$..$$ inside a line (inline pattern)
                index += 1
                continue
            end = index
            if opener:
                end = next((i for i in range(index + 1, len(lines)) if lines[i].rstrip().endswith("$$")), None)
                if end is None:  # never closed: the parser reports it; leave the text as it is
                    return out + lines[index:]
            tex = "\n".join([stripped[2:], *lines[index + 1:end + 1]] if end > index else [stripped[2:]])
            tex = tex.rstrip()[:-2].strip()
            if self.renderer.cloze:
                tex = CLOSE_BRACES_RE.sub("} ", tex)
            block = f'<div class="arithmatex">\\[{html.escape(tex, quote=False)}\\]</div>'
            out.extend(["", self.md.htmlStash.store(block), ""])
            index = end + 1
        return out


class InlineDisplayMathProcessor(InlineProcessor):
    """``$$...$$`` in the middle of a line: display math, as ``\\[...\\]`` (arithmatex only knows it as a block)."""

    def handleMatch(self, m, data):
        element = etree.Element("span", {"class": "arithmatex display"})
        element.text = AtomicString("\\[" + m.group(1) + "\\]")
        return element, m.start(0), m.end(0)


class ClozeSafeMathTreeprocessor(RendererBound, Treeprocessor):
    """In cloze notes, ``}}`` inside TeX would end the deletion early: Anki's manual says to write ``} }``."""

    def run(self, root):
        if not self.renderer.cloze:
            return
        for element in root.iter():
            if "arithmatex" in element.get("class", "").split() and element.text:
                element.text = AtomicString(CLOSE_BRACES_RE.sub("} ", element.text))


# --- inline patterns ---------------------------------------------------------------------------------------------

class PrefilteredInlineTreeprocessor(InlineTreeprocessor):
    """Python-Markdown's inline processor, which skips a pattern for a text that lacks every literal its regex needs.

    The stock processor runs each inline pattern (16 here) over each piece of text, and most texts contain none of
    their characters (``*``, ``[``, ``<``, ``$``...): trying patterns that could not match cost about 7% of the
    instructions of compiling the benchmark's synthetic cards (callgrind). A pattern is tried exactly as before
    wherever it could match, and one with no literal to look for (``needed_literals`` gives None) always is, so the
    output is the same (tests/test_render.py compares them on every section of the deck).
    Its loop is the stock ``__handleInline``'s (Python-Markdown 3.x), with the skip added.
    """

    _patterns: list | None = None

    def run(self, tree, ancestors=None):
        if self._patterns is None:  # once: the patterns are all registered when the converter is built
            self._patterns = list(self.inlinePatterns)  # indexing the registry sorts it again, each time
            self._finders = [_finder(needed_literals(pattern.getCompiledRegExp())) for pattern in self._patterns]
        return super().run(tree, ancestors)

    def _InlineProcessor__handleInline(self, data: str, patternIndex: int = 0) -> str:  # noqa: N802, N803
        if isinstance(data, AtomicString):
            return data
        patterns, finders = self._patterns, self._finders
        start = 0
        while patternIndex < len(patterns):
            find = finders[patternIndex]
            if find is not None and find(data) is None:
                patternIndex, start = patternIndex + 1, 0  # what an unmatched pattern returns
                continue
            data, matched, start = self._InlineProcessor__applyPattern(patterns[patternIndex], data, patternIndex,
                                                                       start)
            if not matched:
                patternIndex += 1
        return data


@lru_cache(maxsize=None)
def _finder(literals: tuple[str, ...] | None):
    """A search for any of ``literals`` (one call, whatever their number), or None for no literals."""
    return None if literals is None else re.compile("|".join(map(re.escape, literals))).search


class QuickHtmlBlockPreprocessor(HtmlBlockPreprocessor):
    """Python-Markdown's extraction of raw HTML blocks, which returns a text with neither '<' nor '&' as it is
    without running its HTML parser over it (which would only hand the whole text back as data)."""

    def run(self, lines: list[str]) -> list[str]:
        if not any("<" in line or "&" in line for line in lines):
            return lines
        return super().run(lines)


class QuickUnescapeTreeprocessor(UnescapeTreeprocessor):
    """Python-Markdown's unescaping of backslash escapes, which leaves a text without an escape's STX marker alone
    without running its regex substitution (on every text, tail and attribute of every element)."""

    def unescape(self, text: str) -> str:
        return super().unescape(text) if STX in text else text


# --- images -------------------------------------------------------------------------------------------------------

class ImageTreeprocessor(RendererBound, Treeprocessor):
    """Images -> placeholders the build resolves; a figure becomes a light and a dark image, CSS shows one."""

    def run(self, root):
        for parent in list(root.iter()):
            for index, image in enumerate(list(parent)):
                if image.tag != "img":
                    continue
                src = unquote(image.get("src", ""))
                if src.startswith("fig:"):
                    parent.remove(image)
                    parent.insert(index, self._figure(src[4:], image))
                elif REMOTE_RE.match(src) or not src:
                    self.renderer.problems.append(
                        (src, f"image '{src}' must be a file in the project or a figure name like 'fig:NAME'"))
                else:
                    image.set("src", self.renderer.ref(f"file:{src}"))

    def _figure(self, name: str, image: etree.Element) -> etree.Element:
        wrapper = etree.Element("span", {"class": "figure"})
        wrapper.tail = image.tail
        for variant in VARIANTS:
            etree.SubElement(wrapper, "img", {
                "src": self.renderer.ref(f"fig:{name}:{variant}"),
                "alt": image.get("alt", ""),
                "class": figure_class(variant),
            })
        return wrapper


class CardExtension(Extension):
    def __init__(self, renderer: "Renderer"):
        super().__init__()
        self.renderer = renderer

    def extendMarkdown(self, md):
        md.treeprocessors.register(PrefilteredInlineTreeprocessor(md), "inline", 20)  # replaces the stock one
        md.treeprocessors.register(QuickUnescapeTreeprocessor(md), "unescape", 0)  # likewise
        md.preprocessors.register(QuickHtmlBlockPreprocessor(md), "html_block", 20)  # likewise
        md.preprocessors.register(FencedCodePreprocessor(md, self.renderer), "ankideck-fenced-code", 30)
        md.preprocessors.register(DisplayMathPreprocessor(md, self.renderer), "ankideck-display-math", 29)
        md.preprocessors.register(ListAfterTextPreprocessor(md), "ankideck-list-after-text", 28)
        md.inlinePatterns.register(
            InlineDisplayMathProcessor(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", md), "ankideck-inline-display-math", 189.95)
        # After the inline patterns (priority 20) have produced the math and image elements.
        md.treeprocessors.register(ClozeSafeMathTreeprocessor(md, self.renderer), "ankideck-cloze-math", 5)
        md.treeprocessors.register(ImageTreeprocessor(md, self.renderer), "ankideck-images", 4)


def _block_loop(processors: tuple):
    """Python-Markdown's ``BlockParser.parseBlocks``, over a fixed tuple of the block processors: the stock loop
    iterates the registry for each block, which sorts it and copies it into a new list (a sixth of block parsing)."""
    def parse_blocks(parent: etree.Element, blocks: list[str]) -> None:
        while blocks:
            for processor in processors:
                if processor.test(parent, blocks[0]):
                    if processor.run(parent, blocks) is not False:  # run returns True or None
                        break
    return parse_blocks


def _remembered(is_block_level):
    """``Markdown.is_block_level`` answered from a dict once asked: it searches a list of 50 names, three times for
    each element the tree prettifier visits (the list is complete once the converter is built)."""
    answers: dict = {}

    def remembered(tag) -> bool:
        try:
            return answers[tag]
        except KeyError:
            answer = answers[tag] = is_block_level(tag)
            return answer
    return remembered


class Renderer:
    """One Markdown converter, built once and reset between texts (building it is the expensive part)."""

    def __init__(self):
        self.cloze = False
        self.refs: list[str] = []
        self.problems: list[tuple[str, str]] = []
        self.md = markdown.Markdown(
            extensions=["tables", "sane_lists", "pymdownx.arithmatex", CardExtension(self)],
            extension_configs={"pymdownx.arithmatex": {
                # $$ blocks are ours (DisplayMathPreprocessor); arithmatex keeps \\[..\\], \\begin{..} and inline.
                "generic": True, "smart_dollar": True, "block_syntax": ["square", "begin"]}},
            output_format="html",
        )
        self.md.parser.parseBlocks = _block_loop(tuple(self.md.parser.blockprocessors))
        self.md.is_block_level = _remembered(self.md.is_block_level)

    def ref(self, target: str) -> str:
        self.refs.append(target)
        return PLACEHOLDER.format(len(self.refs) - 1)

    def render(self, text: str, cloze: bool = False) -> Rendered:
        self.cloze, self.refs, self.problems = cloze, [], []
        body = self.md.reset().convert(text)
        return Rendered(body, self.refs, self.problems)
