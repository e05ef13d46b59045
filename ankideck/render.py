"""Markdown -> field HTML, through Python-Markdown's extension API.

Rendering is a pure function of the Markdown text and the ``cloze`` flag, so its result can be cached by a hash of
both. Images are not resolved here: each becomes a placeholder ``ankideck-media:N`` that points into the returned
list of references (``file:<path as written>`` or ``fig:<name>:<variant>``); the build resolves them later.
"""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from urllib.parse import unquote

import markdown
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString

# Bump when the HTML this module produces changes, so cached renders are thrown away.
RENDERER_REVISION = 3

PLACEHOLDER = "ankideck-media:{}"
PLACEHOLDER_RE = re.compile(r"ankideck-media:(\d+)")
FIGURE_VARIANTS = ("light", "dark")
CLOZE_RE = re.compile(r"\{\{(c\d+)::(.*?)(?:::([^{}]*?))?\}\}", re.DOTALL)
FENCE_OPEN_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
REMOTE_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
CLOSE_BRACES_RE = re.compile(r"\}(?=\})")


def renderer_version() -> str:
    """Everything the rendered HTML depends on besides the text: the cache key's salt."""
    libraries = ",".join(f"{name}={metadata.version(name)}" for name in ("markdown", "pymdown-extensions", "pygments"))
    return f"ankideck-render-{RENDERER_REVISION};{libraries}"


@dataclass
class Rendered:
    html: str
    refs: list[str] = field(default_factory=list)        # what each ankideck-media:N placeholder stands for
    problems: list[tuple[str, str]] = field(default_factory=list)  # (text to locate in the source, message)


# --- code ---------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _lexer(language: str):
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        # stripnl/ensurenl off: token offsets must match the text exactly, for the cloze markers.
        return get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=None)
def _css_class(token_type) -> str:
    from pygments.token import STANDARD_TYPES

    while token_type not in STANDARD_TYPES:
        token_type = token_type.parent
    return STANDARD_TYPES[token_type]


def highlight(code: str, language: str) -> tuple[str, bool]:
    """Highlight ``code`` into ``<span class=..>`` HTML (pygments' class names), keeping cloze markers working.

    Cloze markers are lifted out before lexing and put back between tokens, splitting a token where a marker falls
    inside it, so every span stays balanced inside a deletion. Returns (html, whether the language is known).
    """
    lexer = _lexer(language)
    plain: list[str] = []
    inserts: dict[int, list[str]] = {}
    offset = position = 0
    for match in CLOZE_RE.finditer(code):
        before = code[position:match.start()]
        plain.append(before)
        offset += len(before)
        inserts.setdefault(offset, []).append("{{%s::" % match.group(1))
        plain.append(match.group(2))
        offset += len(match.group(2))
        hint = match.group(3)
        inserts.setdefault(offset, []).append(("::" + html.escape(hint, quote=False) if hint else "") + "}}")
        position = match.end()
    plain.append(code[position:])
    text = "".join(plain)

    tokens = lexer.get_tokens(text) if lexer is not None else [(None, text)]
    out: list[str] = []
    cuts = sorted(inserts)
    cut_index = 0
    start = 0
    for token_type, value in tokens:
        css = _css_class(token_type) if token_type is not None else ""
        end = start + len(value)
        while value:
            # Emit markers due at ``start``, then the part of the token up to the next marker.
            while cut_index < len(cuts) and cuts[cut_index] <= start:
                out.extend(inserts[cuts[cut_index]])
                cut_index += 1
            limit = cuts[cut_index] if cut_index < len(cuts) and cuts[cut_index] < end else end
            chunk, value = value[:limit - start], value[limit - start:]
            escaped = html.escape(chunk, quote=False)
            out.append(f'<span class="{css}">{escaped}</span>' if css else escaped)
            start = limit
    for cut in cuts[cut_index:]:
        out.extend(inserts[cut])
    return "".join(out), lexer is not None


class FencedCodePreprocessor(Preprocessor):
    """Fenced code blocks -> highlighted HTML in the stash (before math and inline Markdown can touch them)."""

    def __init__(self, md, renderer: "Renderer"):
        super().__init__(md)
        self.renderer = renderer

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
                stripped = lines[index].strip()
                if stripped.startswith(fence) and not stripped.strip(fence[0]):
                    break
                body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
                index += 1
            index += 1  # the closing fence (the parser has already reported a missing one)
            code, known = highlight("\n".join(body), language)
            if not known:
                self.renderer.problems.append((opened.group(0).strip(), f"unknown code language '{language}'"))
            css = f' class="language-{language}"' if language else ""
            placeholder = self.md.htmlStash.store(f'<div class="codehilite"><pre><code{css}>{code}</code></pre></div>')
            out.extend(["", placeholder, ""])
        return out


# --- math ---------------------------------------------------------------------------------------------------------

class DisplayMathPreprocessor(Preprocessor):
    """``$$`` blocks -> ``\\[...\\]`` in the stash, whether or not blank lines surround them.

    Python-Markdown's block parser only sees blocks between blank lines, so two display formulas on consecutive
    lines, or one glued to a paragraph, would otherwise merge into one broken formula.
    """

    def __init__(self, md, renderer: "Renderer"):
        super().__init__(md)
        self.renderer = renderer

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        index = 0
        while index < len(lines):
            stripped = lines[index].strip()
            one_line = len(stripped) > 4 and stripped.endswith("$$") and stripped.count("$$") == 2
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


class ClozeSafeMathTreeprocessor(Treeprocessor):
    """In cloze notes, ``}}`` inside TeX would end the deletion early: Anki's manual says to write ``} }``."""

    def __init__(self, md, renderer: "Renderer"):
        super().__init__(md)
        self.renderer = renderer

    def run(self, root):
        if not self.renderer.cloze:
            return
        for element in root.iter():
            if "arithmatex" in element.get("class", "").split() and element.text:
                element.text = AtomicString(CLOSE_BRACES_RE.sub("} ", element.text))


# --- images -------------------------------------------------------------------------------------------------------

class ImageTreeprocessor(Treeprocessor):
    """Images -> placeholders the build resolves; a figure becomes a light and a dark image, CSS shows one."""

    def __init__(self, md, renderer: "Renderer"):
        super().__init__(md)
        self.renderer = renderer

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
        for variant in FIGURE_VARIANTS:
            etree.SubElement(wrapper, "img", {
                "src": self.renderer.ref(f"fig:{name}:{variant}"),
                "alt": image.get("alt", ""),
                "class": f"fig-{variant}",
            })
        return wrapper


class CardExtension(Extension):
    def __init__(self, renderer: "Renderer"):
        super().__init__()
        self.renderer = renderer

    def extendMarkdown(self, md):
        md.preprocessors.register(FencedCodePreprocessor(md, self.renderer), "ankideck-fenced-code", 30)
        md.preprocessors.register(DisplayMathPreprocessor(md, self.renderer), "ankideck-display-math", 29)
        md.inlinePatterns.register(
            InlineDisplayMathProcessor(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", md), "ankideck-inline-display-math", 189.95)
        # After the inline patterns (priority 20) have produced the math and image elements.
        md.treeprocessors.register(ClozeSafeMathTreeprocessor(md, self.renderer), "ankideck-cloze-math", 5)
        md.treeprocessors.register(ImageTreeprocessor(md, self.renderer), "ankideck-images", 4)


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

    def ref(self, target: str) -> str:
        self.refs.append(target)
        return PLACEHOLDER.format(len(self.refs) - 1)

    def render(self, text: str, cloze: bool = False) -> Rendered:
        self.cloze, self.refs, self.problems = cloze, [], []
        body = self.md.reset().convert(text)
        return Rendered(body, self.refs, self.problems)
