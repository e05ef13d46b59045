"""The command line: a thin layer that turns options into a Config, calls the engine and prints what it returns.

Every error the engine raises, from any command, goes through ``Cli.invoke``: problems as ``path:line: message``
lines and a summary, any other error the user can act on as one ``Error: ...`` line; exit code 1, never a traceback.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .config import Config, load_config
from .errors import AnkideckError, BuildError

SHOWN_IDS = 12  # ids listed per kind of change before "... and N more"
WORST_SHOWN = 10
PATH_HELP = " (relative to the project root)"


class Cli(click.Group):
    """The command group; the one place engine errors become messages and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BuildError as e:
            for problem in e.problems:
                click.echo(str(problem), err=True)
            count = len(e.problems)
            click.echo(f"Error: {count} problem{'s' * (count != 1)} found; nothing was written.", err=True)
        except (AnkideckError, OSError) as e:
            click.echo(f"Error: {e}", err=True)
        ctx.exit(1)


# Paths are checked by the engine, not by click: click would judge them relative to the working directory.
cards_option = click.option("--cards", "cards", type=click.Path(path_type=Path),
                            help="Folder of card sources (default: [tool.ankideck] cards, or cards/)" + PATH_HELP + ".")


def build_options(command):
    """The build's options, on `build` and on the group itself (`build.py -q` builds quietly)."""
    for option in reversed((
            cards_option,
            click.option("--out", "out", type=click.Path(path_type=Path),
                         help="The .apkg to write (default: [tool.ankideck] out)" + PATH_HELP + "."),
            click.option("--quiet", "-q", is_flag=True, help="Only the summary line."),
            click.option("--new-namespace", "new_namespace", is_flag=True,
                         help="Accept a changed 'namespace' in deck.yaml: every note gets a new identity (a new "
                              "deck in Anki)."))):
        command = option(command)
    return command


@click.group(cls=Cli, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ankideck")
@build_options
@click.pass_context
def cli(ctx: click.Context, **options) -> None:
    """Compile Markdown cards into an Anki deck (.apkg). Without a command: build (with the build options below)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(build, **options)
    elif any(value not in (None, False) for value in options.values()):
        raise click.UsageError(f"build options go after 'build', not before '{ctx.invoked_subcommand}'")


@cli.command()
@build_options
def build(cards: Path | None, out: Path | None, quiet: bool, new_namespace: bool = False) -> None:
    """Build the deck; print what changed since the previous build and a summary line."""
    from .pipeline import build as build_deck

    def waiting() -> None:
        click.echo("Another build is running in this project; waiting for it to finish ...", err=True)

    config = load_config(cards=cards, out=out)
    result = build_deck(config, progress=not quiet, new_namespace=new_namespace, on_wait=waiting)
    changes = result.plan.changes
    for notice in result.plan.notices:
        click.echo(notice, err=True)
    if not quiet:
        for label, ids in (("new", changes.new), ("changed", changes.changed), ("removed", changes.removed)):
            if ids:
                more = f" ... and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
                click.echo(f"{label} ({len(ids)}): {', '.join(ids[:SHOWN_IDS])}{more}")
        if changes.removed:
            search = " OR ".join(f"Id:{card_id}" for card_id in changes.removed)
            click.echo("Removed notes stay in Anki after a re-import. To find and delete them, search the "
                       f"browser for:\n  {search}")
    summary = (f"{len(changes.new)} new, {len(changes.changed)} changed, {len(changes.removed)} removed"
               if changes else "no changes")
    click.echo(f"Built {config.rel(result.out)}: {len(result.plan.notes)} notes, {result.card_count} cards, "
               f"{result.media_count} media; {summary}; {result.seconds:.2f} s")


@cli.command()
@cards_option
@click.option("--render", "render", is_flag=True,
              help="Also lay out every card in headless Chromium at 390 px, light and night, and report formulas, "
                   "code and tables wider than their box, raw list markers, MathJax errors and answers taller than "
                   "two screens (needs Chromium and playwright: the test extra).")
@click.option("--file", "files", multiple=True, metavar="TEXT",
              help="Check only the cards of source files whose path contains TEXT (repeatable); problems elsewhere "
                   "are counted, not shown.")
def check(cards: Path | None, render: bool, files: tuple[str, ...]) -> None:
    """Run every check on the sources; write nothing."""
    from .pipeline import gather

    config = load_config(cards=cards)
    plan = gather(config, only=files)
    if render:
        _render_check(config, files)
    click.echo(f"OK: {len(plan.notes)} notes in {len({n.source.path for n in plan.notes})} files, "
               f"{len(plan.figures)} figures; no problems.")
    for notice in plan.notices:  # what a build would do that the user must know about
        click.echo(notice, err=True)


def _render_check(config: Config, files: tuple[str, ...] = ()) -> None:
    import statistics

    from .render_check import check_rendering

    report = check_rendering(config, progress=False, files=files)
    if report.heights:
        screens = [height / report.screen for height in report.heights]
        click.echo(f"Answers with the Extra closed: median {statistics.median(screens):.2f} screens, "
                   f"tallest {max(screens):.2f} ({len(screens)} answer sides at 390x{report.screen})")
    worst = list({(finding.card, finding.reason): finding for finding in report.worst}.values())  # one per mode
    if worst:
        click.echo("Widest boxes:", err=True)
        for finding in worst[:WORST_SHOWN]:
            click.echo(f"  {finding.card}: {finding.reason} ({finding.overflow:.2f}x)", err=True)
    if report.problems:
        raise BuildError(report.problems)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--cloze", is_flag=True, help="Scaffold a cloze note instead of front/back.")
@click.option("--id", "card_id", help="The card id (default: a fresh one).")
def new(file: Path, cloze: bool, card_id: str | None) -> None:
    """Append a new card with a fresh, unique id to FILE (created if missing)."""
    from .scaffold import new_card

    card = new_card(load_config(), file, cloze, card_id)
    click.echo(f"Added {'cloze' if cloze else 'card'} '{card.id}' at {file.as_posix()}:{card.line}")


@cli.command()
@cards_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: decks, tags and the guide map.")
def stats(cards: Path | None, as_json: bool) -> None:
    """Cards per deck and tag, and coverage of the guide's questions."""
    from .stats import stats as deck_stats

    data = deck_stats(load_config(cards=cards))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"{data['notes']} notes, {data['cards']} cards")
    for title, groups in (("deck", data["decks"]), ("tag", data["tags"])):
        click.echo(f"\nNotes / cards per {title}:")
        for name, counts in sorted(groups.items(), key=lambda item: (title == "tag" and -item[1]["notes"], item[0])):
            click.echo(f"  {counts['notes']:4d} {counts['cards']:4d}  {name}")
    guide = data["guide"]
    if guide:
        covered = [qid for qid, entry in guide.items() if entry["cards"]]
        click.echo(f"\nGuide coverage: {len(covered)}/{len(guide)} questions")
        for qid, entry in guide.items():
            mark = f"{len(entry['cards']):3d}" if entry["cards"] else "  -"
            click.echo(f"  {mark}  {qid:7s} {entry['question']}")
        missing = [qid for qid in guide if qid not in covered]
        if missing:
            click.echo(f"Not covered: {', '.join(missing)}")


@cli.command()
@cards_option
@click.option("--out", "out", type=click.Path(path_type=Path),
              help="Folder to write (default: preview/ beside the .apkg)" + PATH_HELP + ".")
@click.option("--shots", is_flag=True, help="Also save PNG screenshots of a few cards, light and night, under shots/ "
                                            "(needs Chromium and playwright).")
@click.option("--shot", "shot_ids", multiple=True, metavar="ID",
              help="Screenshot this card (repeatable) instead of a few chosen ones; implies --shots.")
def preview(cards: Path | None, out: Path | None, shots: bool, shot_ids: tuple[str, ...]) -> None:
    """Write an HTML preview of every card, front and back, to open in a browser (works offline)."""
    from .preview import write_preview

    config = load_config(cards=cards)
    index = write_preview(config, out and config.resolve(out), shots=shot_ids or shots, progress=True)
    click.echo(f"Wrote {config.rel(index)}; open {index.as_uri()}")
    if shots or shot_ids:
        click.echo(f"Screenshots in {config.rel(index.parent / 'shots')}/")


@cli.command()
@cards_option
@click.option("--since", metavar="REF", help="Git tag, branch or commit to compare with (default: the last v* tag).")
@click.option("--out", "out", type=click.Path(path_type=Path),
              help="Write the Markdown to FILE" + PATH_HELP + ".")
@click.option("--changelog", is_flag=True, help="Put it first in CHANGELOG.md as this version's section (without an "
                                                "earlier tag: the initial release).")
@click.option("--initial", is_flag=True, help="No earlier version: the whole deck, as an initial release.")
def changes(cards: Path | None, since: str | None, out: Path | None, changelog: bool, initial: bool) -> None:
    """New, changed and removed cards since REF, by deck, in Markdown, and a summary line (the release notes)."""
    from .changelog import run as changes_since

    if initial and since:
        raise click.UsageError("--initial compares with nothing: leave out --since")
    config = load_config(cards=cards)
    click.echo(changes_since(config, since, out and config.resolve(out), changelog, initial))


def main() -> None:
    cli(prog_name="build.py" if Path(sys.argv[0]).name == "build.py" else "ankideck")
