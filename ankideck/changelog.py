"""What changed in the deck since a git ref: ``build.py changes``, the release notes and CHANGELOG.md.

A change is what a re-import does to a reviewer's collection, judged exactly as the build judges it: the lock file at
REF (``cards/cards.lock.json``, each note's content hash as that version shipped it) against the content hashes a
``gather()`` of the working tree computes. New: an id the lock at REF does not hold as a live note; changed: its
hash differs; removed: live at REF and gone now. So ``changes --since REF`` lists exactly what a build would report
starting from REF's lock file. Only where REF has no lock file at all are the card sources compared instead.

The card sources at REF are read with ``git archive`` into a temporary folder and parsed with the engine's own parser
(no rendering), for the fronts and decks of removed cards. Also here: the root deck's description (the version, the
date, links to the changelog and to where corrections are reported), the deck-level metadata a release carries.
"""
from __future__ import annotations

import html
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cloze import DELETION_RE
from .config import LOCK_FILE, Config, DeckInfo
from .errors import AnkideckError
from .fences import FENCE_OPEN_RE
from .installed import headers

TAG_PATTERN = "v*"
FRONT_CHARS = 80          # a front longer than this is cut, with an ellipsis
CHANGELOG_FILE = "CHANGELOG.md"
CHANGELOG_HEADER = """# Changelog

What changed in the deck, release by release: new, changed and removed cards, by deck. Each section is written by
`python build.py changes --changelog` when a release is prepared (see `scripts/release.sh`); a re-import of the new
`.apkg` updates exactly the changed cards and keeps your review history.
"""
SECTION_RE = re.compile(r"^## (\S+)", re.MULTILINE)


class ChangelogError(AnkideckError):
    """A problem with the git side (no repository, unknown ref): one line for the user."""


# --- the deck's own metadata ----------------------------------------------------------------------------------------

def version() -> str:
    """The engine's version, from the installed metadata (its one source is pyproject.toml)."""
    try:
        return headers("ankideck")["Version"][0]
    except LookupError:
        return "unknown"


def repository_url() -> str | None:
    """``[project.urls] Repository`` from the installed metadata, without a trailing slash."""
    try:
        urls = headers("ankideck").get("Project-URL") or []
    except LookupError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository" and url.strip():
            return url.strip().rstrip("/")
    return None


def deck_description(description: str, timestamp: int) -> str:
    """The root deck's description: deck.yaml's text, then the version, a date and links to the changelog and to the
    card-correction issue form.

    The date is ``SOURCE_DATE_EPOCH`` when set (a release sets it to the tagged commit's time), else ``timestamp``:
    the newest note's mod time, so that rebuilding unchanged sources gives the same description. It belongs to the
    deck, not to a note: no content hash sees it, and a build's change report never does.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = int(epoch) if epoch.isdigit() else timestamp
    line = f"Version {html.escape(version())}" + (f" · {time.strftime('%Y-%m-%d', time.gmtime(when))}" if when else "")
    url = repository_url()
    if url:
        base = html.escape(url, quote=True)
        line += (f' · <a href="{base}/blob/HEAD/{CHANGELOG_FILE}">What changed (changelog)</a>'
                 f' · <a href="{base}/issues/new?template=card-correction.yml">Report a wrong card</a>'
                 " (give the Id shown in its footer)")
    return f"{description}<br><br>{line}" if description else line


# --- git ------------------------------------------------------------------------------------------------------------

def _git(cwd: Path, *args: str, binary: bool = False):
    import subprocess  # here: every build imports this module for deck_description, few run git

    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as e:
        raise ChangelogError(f"cannot run git: {e}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ChangelogError(message[-1] if message else f"git {args[0]} failed")
    return done.stdout if binary else done.stdout.decode("utf-8", "replace").strip()


def git_root(config: Config) -> Path:
    try:
        return Path(_git(config.root, "rev-parse", "--show-toplevel")).resolve()
    except ChangelogError:
        raise ChangelogError(f"{config.root.as_posix()} is not in a git repository: changes compares the cards "
                             "with a git ref") from None


def last_tag(top: Path) -> str | None:
    """The newest version tag reachable from HEAD (``git describe --tags --abbrev=0 --match 'v*'``), or None."""
    try:
        return _git(top, "describe", "--tags", "--abbrev=0", "--match", TAG_PATTERN) or None
    except ChangelogError:
        return None


def resolve(top: Path, ref: str) -> str:
    """The commit a ref names, or a ChangelogError."""
    if not ref or ref.startswith("-"):
        raise ChangelogError(f"not a git ref: {ref!r}")
    try:
        return _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except ChangelogError:
        raise ChangelogError(f"unknown git ref {ref!r} (a tag, branch or commit of this repository)") from None


# --- the deck at a ref ----------------------------------------------------------------------------------------------

@dataclass
class Snapshot:
    cards: dict[str, object]          # id -> parse.NoteSource, as the sources at the ref had it
    lock: dict[str, str] | None       # id -> content hash of the live notes in the lock file; None: no lock file


def snapshot(config: Config, info: DeckInfo, top: Path, commit: str) -> Snapshot:
    """The cards folder at ``commit``, parsed with the engine's parser, and its lock file."""
    import io
    import tarfile
    import tempfile

    from . import lockfile
    from .config import load_deck_info
    from .errors import Problems
    from .sources import load_sources

    try:
        cards_rel = config.cards_dir.resolve().relative_to(top).as_posix()
        root_rel = config.root.resolve().relative_to(top)
    except ValueError:
        raise ChangelogError(f"the cards folder {config.cards_dir.as_posix()} is outside the git repository "
                             f"{top.as_posix()}") from None
    if not _git(top, "ls-tree", "-d", "--name-only", commit, "--", cards_rel):
        return Snapshot({}, None)  # no cards folder then: every card is new
    data = _git(top, "archive", "--format=tar", commit, "--", cards_rel, binary=True)
    with tempfile.TemporaryDirectory(prefix="ankideck-changes-") as scratch:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                try:
                    archive.extract(member, scratch, filter="data")
                except tarfile.FilterError:  # a link out of the folder: never a card source, for the build either
                    continue
        base = Path(scratch).resolve()
        then = Config(root=base / root_rel, cards_dir=base / cards_rel, out=base / "out.apkg",
                      figures_dir=base / "figures", cache_dir=base / ".cache")
        info_problems = Problems()
        then_info = load_deck_info(then, info_problems)
        if info_problems:
            then_info = info
        cards = load_sources(then, then_info, Problems())  # a card with problems then is still the card it was
        lock_state = lockfile.load(then.cards_dir / LOCK_FILE, LOCK_FILE, Problems())
    lock = ({card_id: entry["hash"] for card_id, entry in lock_state.notes.items() if not entry.get("removed")}
            if lock_state.exists else None)
    first: dict[str, object] = {}
    for card in cards:
        first.setdefault(card.id, card)
    return Snapshot(first, lock)


# --- the comparison -------------------------------------------------------------------------------------------------

@dataclass
class Entry:
    id: str
    deck: str
    front: str


@dataclass
class Report:
    since: str                       # as the user named it, with the commit where that adds something
    new: list[Entry] = field(default_factory=list)
    changed: list[Entry] = field(default_factory=list)
    removed: list[Entry] = field(default_factory=list)
    notes: int = 0
    cards: int = 0
    decks: dict[str, int] = field(default_factory=dict)   # deck -> notes, in the working tree
    initial: bool = False            # no earlier release: the whole deck is the change

    @property
    def ids(self) -> dict[str, list[str]]:
        return {kind: [entry.id for entry in getattr(self, kind)] for kind in ("new", "changed", "removed")}

    @property
    def summary(self) -> str:
        size = (f"{self.notes} note{'s' * (self.notes != 1)} in {len(self.decks)} "
                f"deck{'s' * (len(self.decks) != 1)}")
        if self.initial:
            return f"Initial release: {size} ({self.cards} cards)."
        if not (self.new or self.changed or self.removed):
            return f"No card changes since {self.since}; {size}."
        return (f"{len(self.new)} new, {len(self.changed)} changed, {len(self.removed)} removed since {self.since}; "
                f"{size}.")


def _source_text(card) -> tuple:
    return (card.kind, card.deck, tuple(card.tags), card.guide,
            tuple((name, section.text) for name, section in card.sections.items()))


def compare(config: Config, since: str | None) -> Report:
    """The change report from ``since`` (a git ref; None: the whole deck is new, an initial release) to the working
    tree. Raises BuildError if the working tree's cards do not build, ChangelogError for git problems."""
    from .pipeline import gather

    plan = gather(config)  # the working tree, checked and hashed exactly as a build would
    current = {note.source.id: note for note in plan.notes}
    report = Report(since=since or "", notes=len(plan.notes), cards=sum(n.source.card_count for n in plan.notes))
    for note in plan.notes:
        report.decks[note.source.deck] = report.decks.get(note.source.deck, 0) + 1
    if since is None:
        report.initial = True
        return report
    top = git_root(config)
    commit = resolve(top, since)
    short = commit[:7]
    report.since = short if commit.startswith(since) else f"{since} ({short})"
    then = snapshot(config, plan.info, top, commit)
    if then.lock is not None:   # as the build judges: the lock file's content hashes
        new = [i for i in current if i not in then.lock]
        changed = [i for i in current if i in then.lock and then.lock[i] != current[i].content_hash]
        removed = [i for i in then.lock if i not in current]
    else:                       # no lock file at REF: the card sources
        new = [i for i in current if i not in then.cards]
        changed = [i for i in current if i in then.cards
                   and _source_text(then.cards[i]) != _source_text(current[i].source)]
        removed = [i for i in then.cards if i not in current]
    report.new = [Entry(i, current[i].source.deck, front_text(current[i].source)) for i in sorted(new)]
    report.changed = [Entry(i, current[i].source.deck, front_text(current[i].source)) for i in sorted(changed)]
    report.removed = [Entry(i, then.cards[i].deck, front_text(then.cards[i])) if i in then.cards
                      else Entry(i, f"(no card source at {report.since})", "") for i in sorted(removed)]
    return report


# --- Markdown -------------------------------------------------------------------------------------------------------

_PLAIN = (
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), lambda m: m.group(1) or "[image]"),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (DELETION_RE, "[...]"),
    (re.compile(r"(`+)(.+?)\1"), r"\2"),
    (re.compile(r"<[^>]*>"), ""),
    (re.compile(r"(?<!\\)\$\$?|\\[()\[\]]"), ""),
    (re.compile(r"\*\*|__"), ""),
    (re.compile(r"^\s*(?:[-*+]|\d+[.)]|#+|>)\s+"), ""),
    (re.compile(r"\s+"), " "),
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$#])")


def front_text(card) -> str:
    """The first line of a card's front (a cloze's text), as plain text, cut to FRONT_CHARS."""
    text = card.text("Front" if card.kind == "basic" else "Text")
    line = next((ln for ln in text.splitlines() if ln.strip() and not FENCE_OPEN_RE.match(ln)), "")
    for pattern, replacement in _PLAIN:
        line = pattern.sub(replacement, line)
    line = line.strip()
    if len(line) > FRONT_CHARS:
        line = line[:FRONT_CHARS - 1].rstrip() + "…"
    return line


def _item(entry: Entry) -> str:
    front = _MARKDOWN_SPECIAL.sub(r"\\\1", entry.front)
    return f"- `{entry.id}`" + (f" — {front}" if front else "")


def markdown(report: Report) -> str:
    """The summary line, then per deck the new, changed and removed cards (or, for an initial release, the decks)."""
    lines = [report.summary]
    if report.initial:
        lines.append("")
        lines += [f"- {deck}: {count} note{'s' * (count != 1)}" for deck, count in sorted(report.decks.items())]
        return "\n".join(lines) + "\n"
    decks = sorted({entry.deck for kind in ("new", "changed", "removed") for entry in getattr(report, kind)})
    for deck in decks:
        lines += ["", f"### {deck}"]
        for title, entries in (("New", report.new), ("Changed", report.changed), ("Removed", report.removed)):
            items = [_item(entry) for entry in entries if entry.deck == deck]
            if items:
                lines += ["", f"{title}:", "", *items]
    return "\n".join(lines) + "\n"


def add_to_changelog(path: Path, release: str, date: str, body: str) -> bool:
    """Put a ``## RELEASE — DATE`` section with ``body`` first in CHANGELOG.md (created if missing); a section for the
    same release is replaced. Returns whether one was replaced."""
    text = path.read_text("utf-8") if path.is_file() else CHANGELOG_HEADER
    section = f"## {release} — {date}\n\n{body.strip()}\n"
    sections = list(SECTION_RE.finditer(text))
    same = next((i for i, match in enumerate(sections) if match.group(1) == release), None)
    if same is not None:
        end = sections[same + 1].start() if same + 1 < len(sections) else len(text)
        text = text[:sections[same].start()] + section + ("\n" if end < len(text) else "") + text[end:]
    elif sections:
        text = text[:sections[0].start()] + section + "\n" + text[sections[0].start():]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, "utf-8")
    return same is not None


def run(config: Config, since: str | None, out: Path | None, changelog: bool, initial: bool = False) -> str:
    """``build.py changes``: the Markdown (to print, or to ``out``), and with ``changelog`` a new CHANGELOG.md
    section for this version. ``initial``: the whole deck, as a first release. Returns what to print."""
    top = git_root(config)
    if since is None and not initial:
        since = last_tag(top)
        if since is None and not changelog:
            raise ChangelogError(f"no version tag ({TAG_PATTERN}) to compare with: pass --since REF (a tag, branch "
                                 "or commit)")
    report = compare(config, since)
    text = markdown(report)
    if out is None and not changelog:
        return text.rstrip("\n")
    messages = []
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, "utf-8")
        messages.append(f"Wrote {config.rel(out)}: {report.summary}")
    if changelog:
        path = config.root / CHANGELOG_FILE
        replaced = add_to_changelog(path, version(), time.strftime("%Y-%m-%d"), text)
        messages.append(f"{'Replaced' if replaced else 'Added'} the {version()} section of {config.rel(path)}: "
                        f"{report.summary}")
    return "\n".join(messages)
