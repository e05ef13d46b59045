"""Field HTML -> only what the deck's own renderer produces; everything else is reported and removed.

The deck is shared with people who never read its sources, and Anki's web view runs what a field contains. So the
rendered HTML of every field goes through an allow-list (``ALLOWED``: the tags and attributes that Markdown, the math
and code renderers and the figures produce, nothing else). Two passes share that list:

- a report: Python's HTML tokenizer walks the field and names each tag, attribute or URL outside the list, so the
  build fails with ``path:line: ...`` (the author sees what would have been removed);
- the clean: nh3 (the ammonia sanitiser) rebuilds the field from the allow-list, so that whatever the report might
  miss (a browser parses HTML more leniently than any tokenizer) never reaches Anki either.

Both are skipped for a field that one pass over its tags (``_glance``) finds allowed and already in the form nh3
would write it in (Markdown's own output, nearly every field): the report would find nothing, and nh3 would return
the field unchanged.

HTML ``<img>`` tags go through the same media resolution as Markdown images: a relative ``src`` becomes a media
reference the build resolves (and checks) like ``![alt](path)``; a remote one is refused.

Runs only where a file is rendered (a cold or changed file); its result is cached with the rendered HTML.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import unquote

from .rendered import PLACEHOLDER, PLACEHOLDER_RE, REMOTE_RE, Rendered
from .theme import VARIANTS, figure_class

# Pygments' short token class names (pygments.token.STANDARD_TYPES), written out so a warm build never imports it;
# tests/test_sanitize.py checks that this set still covers pygments' own.
PYGMENTS_CLASSES = frozenset("""
    w esc err x k kc kd kn kp kr kt n na nb bp nc no nd ni ne nf fm py nl nn nx nt nv vc vg vi vm l ld s sa sb sc
    dl sd s2 se sh si sx sr s1 ss m mb mf mh mi il mo o ow p pm c ch cm cp cpf c1 cs g gd ge ges gr gh gi go gp gs
    gu gt
""".split())

# The one allow-list: tag -> {attribute -> allowed values (None: any value that passes the URL rules)}.
# Classes are listed value by value: field HTML may only use the deck's own CSS classes.
ALLOWED: dict[str, dict[str, frozenset[str] | None]] = {
    **{tag: {} for tag in (
        "p", "br", "hr", "em", "strong", "b", "i", "u", "s", "del", "ins", "mark", "small", "sup", "sub", "kbd",
        "blockquote", "ul", "li", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr",
        "dl", "dt", "dd")},
    "ol": {"start": None},
    "th": {"style": None, "align": None},     # table column alignment (style is limited to text-align)
    "td": {"style": None, "align": None},
    "a": {"href": None, "title": None},
    "img": {"src": None, "alt": None, "title": None, "class": frozenset(map(figure_class, VARIANTS))},
    "code": {"class": None},                  # language-NAME only (LANGUAGE_CLASS_RE)
    "div": {"class": frozenset({"codehilite", "arithmatex"})},
    "span": {"class": frozenset({"figure", "arithmatex", "display"}) | PYGMENTS_CLASSES},
}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
LANGUAGE_CLASS_RE = re.compile(r"language-[A-Za-z0-9_+#.-]+")
TEXT_ALIGN_RE = re.compile(r"\s*text-align:\s*(left|right|center)\s*;?\s*", re.IGNORECASE)
ALIGN_VALUES = frozenset({"left", "right", "center"})
SCHEME_RE = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*):")
# A tag as Python-Markdown writes one: lower-case names, every value double-quoted, no '<' or '>' inside a value.
TAG_RE = re.compile(r'</?([a-z][a-z0-9]*)((?:\s+[a-z][a-z0-9-]*(?:="[^"<>]*")?)*)\s*/?>')
ATTRIBUTE_RE = re.compile(r'\s+([a-z][a-z0-9-]*)(?:="([^"<>]*)")?')


def _value_ok(tag: str, name: str, value: str) -> bool:
    allowed = ALLOWED[tag][name]
    if name == "class":
        classes = value.split()
        if tag == "code":
            return all(LANGUAGE_CLASS_RE.fullmatch(c) for c in classes)
        return all(c in allowed for c in classes)
    if name == "style":
        return bool(TEXT_ALIGN_RE.fullmatch(value))
    if name == "align":
        return value.lower() in ALIGN_VALUES
    if name == "start":
        return value.isdigit()
    if name == "href":
        scheme = SCHEME_RE.match(_unescaped_url(value))
        return scheme is None or scheme.group(1).lower() in LINK_SCHEMES
    return allowed is None or value in allowed


def _unescaped_url(value: str) -> str:
    # Browsers ignore control characters and whitespace inside a scheme ("java\tscript:"): judge it without them.
    return re.sub(r"[\x00-\x20]+", "", unquote(value))


class _Report(HTMLParser):
    """Every tag, attribute and URL of a field that the allow-list does not allow, as (needle, message)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        raw = self.get_starttag_text() or f"<{tag}"
        if tag not in ALLOWED:
            what = "raw <script> is not allowed in cards" if tag == "script" else (
                f"HTML tag <{tag}> is not allowed in cards (only the tags Markdown produces)")
            self.found.append((f"<{raw[1:len(tag) + 1]}", what))
            return
        for name, value in attrs:
            value = value or ""
            if name not in ALLOWED[tag]:
                self.found.append((f"{name}=" if f"{name}=" in raw else raw,
                                   f"HTML attribute '{name}' on <{tag}> is not allowed in cards"))
            elif tag == "img" and name == "src":
                continue  # judged by media resolution (sanitize below)
            elif not _value_ok(tag, name, value):
                if name == "href":
                    message = f"link '{value}' is not allowed: links must be http, https or mailto"
                else:
                    message = f"HTML attribute {name}=\"{value}\" on <{tag}> is not allowed in cards"
                self.found.append((value or raw, message))

    handle_startendtag = handle_starttag


# nh3's arguments, made once: the allow-list as sets.
_NH3_TAGS = set(ALLOWED)
_NH3_DROPPED = {"script", "style"}   # removed with their content
_NH3_ATTRIBUTES = {tag: set(attributes) for tag, attributes in ALLOWED.items()}
_NH3_SCHEMES = set(LINK_SCHEMES) | {PLACEHOLDER.partition(":")[0]}


# The verdicts of _glance, cheapest first to act on.
NEEDS_REPORT, NEEDS_CLEAN, CLEAN = 0, 1, 2

VOID_TAGS = frozenset({"br", "hr", "img"})
PHRASING_TAGS = frozenset({"em", "strong", "b", "i", "u", "s", "del", "ins", "mark", "small", "sup", "sub", "kbd",
                           "code", "span", "a", "img", "br"})
ONLY_PHRASING_INSIDE = PHRASING_TAGS | {"p", "h1", "h2", "h3", "h4", "h5", "h6", "dt"}
PARENTS = {"thead": {"table"}, "tbody": {"table"}, "tr": {"thead", "tbody"}, "th": {"tr"}, "td": {"tr"},
           "li": {"ul", "ol"}, "dt": {"dl"}, "dd": {"dl"}}
# Table parts hold only their own children; anything else (text too, but whitespace) a browser moves out.
CHILDREN = {"table": {"thead", "tbody"}, "thead": {"tr"}, "tbody": {"tr"}, "tr": {"th", "td"}}
# A tag, text and an attribute value exactly as nh3 (html5ever's serialiser) writes them: single spaces, every value
# double-quoted, only the entities it writes itself, no character it would replace or escape.
CANONICAL_TAG_RE = re.compile(r'</?[a-z][a-z0-9]*(?: [a-z][a-z0-9-]*="(?:[^"<>&\xa0]|&(?:amp|quot);)*")*>')
EMPTY_CODE_BLOCK = '<div class="codehilite"><pre><code></code></pre></div>'
CODE_BLOCK_RE = re.compile(  # possessive: linear time whatever the block holds
    '<div class="codehilite"><pre><code(?: class="language-[A-Za-z0-9_+#.-]+")?>'
    '(?:[^<]++|<span class="(?:%s)">[^<]*+</span>)*+</code></pre></div>' % "|".join(sorted(PYGMENTS_CLASSES)))
CONTROL_CHARACTERS = r"\x00-\x08\x0b-\x1f\x7f"  # no text in nh3's form holds one (tab and newline aside)
CANONICAL_TEXT_RE = re.compile(r"(?:[^&<>\xa0%s]|&(?:amp|lt|gt);)*" % CONTROL_CHARACTERS)
CONTROL_CHARACTER_RE = re.compile(f"[{CONTROL_CHARACTERS}]")


def _glance(field: str, refs: int) -> int:
    """How much of the sanitiser ``field`` needs, judged in one pass over its tags:

    - NEEDS_REPORT: something may be outside the allow-list: the tokenizer must report it, nh3 must clean it;
    - NEEDS_CLEAN: every '<' starts a plain tag whose name, attributes and values the allow-list allows, every image
      being one of the ``refs`` media references already (nh3 would keep every attribute as it is);
    - CLEAN: besides, every tag, text and value is written as nh3 writes it, and the tags nest the way an HTML parser
      keeps them (balanced, no block inside a paragraph or a phrase, table parts and list items in their parents):
      nh3 would return the field unchanged (tests/test_sanitize.py checks that on every field of the deck and on
      generated ones). Markdown's own output is CLEAN, so most fields skip nh3 and the tokenizer, the costly part
      of sanitising.
    """
    clean = _text_canonical(field)  # nothing nh3 would change so far
    # A code block as the highlighter writes it (only token spans holding text inside) is judged as an empty one:
    # its dozens of spans are allowed, in nh3's form and balanced; they need no pass through the loop below.
    field = CODE_BLOCK_RE.sub(EMPTY_CODE_BLOCK, field)
    tags, stack, position = 0, [], 0
    for match in TAG_RE.finditer(field):
        tags += 1
        text = match.group(0)
        tag, closing, allowed, canonical = _TAGS.get(text) or _tag(text, match.group(1), match.group(2))
        if clean and stack and stack[-1] in CHILDREN:
            before = field[position:match.start()]
            clean = not before or before.isspace()
        position = match.end()
        if closing:  # end tags carry nothing to judge
            clean = clean and canonical and bool(stack) and stack.pop() == tag
            continue
        if tag == "img":
            for name, value in ATTRIBUTE_RE.findall(match.group(2)):
                if name == "src":
                    reference = PLACEHOLDER_RE.fullmatch(html.unescape(value))
                    if reference is None or int(reference.group(1)) >= refs:
                        return NEEDS_REPORT
                elif not _attribute_allowed("img", name, value):
                    return NEEDS_REPORT
        elif not allowed:
            return NEEDS_REPORT
        if clean:
            parent = stack[-1] if stack else None
            clean = canonical and not (parent in ONLY_PHRASING_INSIDE and tag not in PHRASING_TAGS) \
                and (tag not in PARENTS or parent in PARENTS[tag]) \
                and (parent not in CHILDREN or tag in CHILDREN[parent]) \
                and not (tag == "a" and "a" in stack) \
                and not (tag == "pre" and field.startswith("\n", position))  # a parser drops that newline
            if tag not in VOID_TAGS:
                stack.append(tag)
    if tags != field.count("<"):
        return NEEDS_REPORT  # anything else that looks like markup: let the tokenizer judge it
    return CLEAN if clean and not stack else NEEDS_CLEAN


def _text_canonical(field: str) -> bool:
    """Whether the text between the tags is written as nh3 writes it, or a '<' outside a tag makes that moot (the
    tags are counted: the field needs the report then)."""
    if "&" not in field and "\xa0" not in field and field.count(">") == field.count("<") \
            and not CONTROL_CHARACTER_RE.search(field):
        # No entity, no character nh3 rewrites, and each '>' closes a tag (a tag holds one '<' and one '>'): the
        # text is in nh3's form, most fields, with no copy of the field made.
        return True
    return _text_canonical_exactly(field)


def _text_canonical_exactly(field: str) -> bool:
    """The text between the tags, at once (a space for each tag: it cannot complete an entity split by one)."""
    return CANONICAL_TEXT_RE.fullmatch(TAG_RE.sub(" ", field)) is not None


_TAGS: dict[str, tuple[str, bool, bool, bool]] = {}  # a tag's text -> _tag's verdict (the same tags recur)


def _tag(text: str, tag: str, attributes: str) -> tuple[str, bool, bool, bool]:
    """(name, whether an end tag, whether allowed (an <img>'s src is judged apart), whether in nh3's form)."""
    closing = text[1] == "/"
    allowed = closing or tag == "img" or (tag in ALLOWED and all(
        _attribute_allowed(tag, name, value) for name, value in ATTRIBUTE_RE.findall(attributes)))
    verdict = (tag, closing, allowed, CANONICAL_TAG_RE.fullmatch(text) is not None)
    if len(_TAGS) < 4096:
        _TAGS[text] = verdict
    return verdict


def _attribute_allowed(tag: str, name: str, value: str) -> bool:
    return name in ALLOWED[tag] and _value_ok(tag, name, html.unescape(value))


def sanitize(rendered: Rendered) -> Rendered:
    """The field, cleaned to the allow-list, with a problem for each thing removed and HTML images as media refs."""
    verdict = _glance(rendered.html, len(rendered.refs))
    if verdict == CLEAN:  # allowed, and nh3 would return it unchanged
        return Rendered(rendered.html, list(rendered.refs), list(rendered.problems))
    import nh3

    at_a_glance = verdict == NEEDS_CLEAN
    found: list[tuple[str, str]] = []
    if not at_a_glance:
        report = _Report()
        report.feed(rendered.html)
        report.close()
        found = report.found
    refs = list(rendered.refs)
    problems = list(rendered.problems) + found

    def attribute_filter(tag: str, name: str, value: str) -> str | None:
        if tag == "img" and name == "src":
            if PLACEHOLDER_RE.fullmatch(value) and int(value.rpartition(":")[2]) < len(rendered.refs):
                return value  # a Markdown image, already a media reference
            src = unquote(value)
            if not src or REMOTE_RE.match(src):
                problems.append((value or "<img", f"image '{src}' must be a file in the project or a figure name "
                                                  "like 'fig:NAME'"))
                return None
            refs.append(f"file:{src}")
            return PLACEHOLDER.format(len(refs) - 1)
        if name not in ALLOWED.get(tag, {}):
            return None  # nh3 asks about attributes it will drop anyway
        return value if _value_ok(tag, name, value) else None

    cleaned = nh3.clean(
        rendered.html,
        tags=_NH3_TAGS,
        clean_content_tags=_NH3_DROPPED,
        attributes=_NH3_ATTRIBUTES,
        attribute_filter=None if at_a_glance else attribute_filter,  # at a glance: it would keep every value
        url_schemes=_NH3_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )
    return Rendered(cleaned, refs, problems)

