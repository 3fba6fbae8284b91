"""`compare` and `promote`: checking a candidate model against the current one, and making it live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edgeclass.cli.app import app, err_console, fail, out_console, say
from edgeclass.cli.options import Precision, Verbose
from edgeclass.errors import AccuracyGateError, EdgeclassError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

COMPARE_EXIT_CODES = (
    "Exit codes: 0 NEW kept (or no labels: nothing to refuse on); 2 usage error (no images, bad --validation "
    "folder, videos given); 3 model error (a folder missing or not a model); 5 refused: NEW is worse than OLD by "
    "more than --max-drop on the labelled images; 6 the report could not be written."
)

PROMOTE_EXIT_CODES = (
    "Exit codes: 0 the link points at NEW (or back, with --rollback); 2 usage error (--link is a real folder or "
    "file, its folder is missing, nothing to roll back to); 3 NEW (or the rollback target) is missing or holds no "
    "model; 5 the last `edgeclass compare` of the current model against NEW refused it (--force promotes anyway); "
    "6 the link or its history could not be written."
)


@app.command(epilog=COMPARE_EXIT_CODES)
def compare(
    old: Annotated[Path, typer.Argument(help="The model in use: a model folder, or a link such as models/current.")],
    new: Annotated[Path, typer.Argument(help="The candidate model folder.")],
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Unlabelled images: files, folders (recursive), - reads paths from stdin.")] = None,
    validation: Annotated[Optional[Path], typer.Option(help="Labelled images: sub-folders named by label (as quantize --validation). Gives both accuracies and the verdict.")] = None,
    max_drop: Annotated[float, typer.Option(min=0.0, max=100.0, help="Refuse NEW when it is worse than OLD by more than this many points of top-1 accuracy, even at the 95% interval's bound.")] = 1.0,
    report: Annotated[Optional[Path], typer.Option(help="Write report.json and report.html (flip matrix, flipped images) into this folder.")] = None,
    precision: Annotated[Optional[Precision], typer.Option(help="Precision of both models (default: each model's default, as run: int8 when present, else fp32).")] = None,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Cap on CPU cores used (inference threads and decode workers).")] = None,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images declaring more pixels (decompression bombs).")] = 100_000_000,
    reduced_decode: Annotated[bool, typer.Option("--reduced-decode/--full-decode", help="Decode large JPEGs at 1/2, 1/4, 1/8 scale (as run).")] = True,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Compiled-model cache (default ~/.cache/edgeclass/ov_cache).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not cache compiled models.")] = False,
    verbose: Verbose = False,
) -> None:
    """Run OLD and NEW on the same images (each decoded once): agreement, flips, per-label changes;
    with --validation, both accuracies, the paired difference with its 95% interval, and a verdict."""
    from edgeclass.media.imageheader import set_opencv_pixel_limit

    set_opencv_pixel_limit(max_pixels)  # before anything imports cv2
    if not verbose:
        from edgeclass.media.quiet import quiet_native_logging

        quiet_native_logging()
    from edgeclass.compare.run import CompareOptions, compare as do_compare
    from edgeclass.engine import default_cache_dir
    from edgeclass.media.decode import DecodeOptions

    console = err_console()
    options = CompareOptions(
        inputs=tuple(inputs or ()),
        validation=validation,
        max_drop=max_drop / 100.0,
        precision=precision.value if precision else None,
        threads=threads,
        decode=DecodeOptions(max_pixels=max_pixels, reduced_decode=reduced_decode),
        cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        report=report,
    )
    try:
        if not options.inputs and validation is None:
            raise UsageError("no images to compare: give INPUTS or --validation DIR")
        with console.status("comparing") as status:
            outcome = do_compare(old, new, options, progress=lambda n, total: status.update(f"comparing: {n}/{total} images"))
    except EdgeclassError as exc:
        raise fail(console, exc) from exc
    _print_comparison(out_console(), console, outcome)
    if outcome.comparison.refused:
        raise fail(console, AccuracyGateError(f"NEW refused: {outcome.comparison.summary()}"))


def _print_comparison(out: Console, console: Console, outcome) -> None:
    c = outcome.comparison
    for name, side in (("OLD", c.old), ("NEW", c.new)):
        out.print(f"{name} {side.model_id} ({side.path}), precision {side.precision}", highlight=False)
    a = c.agreement
    out.print(f"agreement {a.estimate * 100:.1f}% (95% CI {a.low * 100:.1f} to {a.high * 100:.1f}) on {c.images} images; "
              f"{len(c.flips)} change their label", highlight=False)
    if c.accuracy is not None:
        acc = c.accuracy
        out.print(f"accuracy OLD {acc.old * 100:.1f}% -> NEW {acc.new * 100:.1f}% on {acc.images} labelled images; "
                  f"NEW - OLD {acc.difference.as_points()}", highlight=False)
    from rich.table import Table

    table = Table(title="per label", title_justify="left")
    for col in ("label", "OLD answers", "NEW answers", "change") + (("OLD right", "NEW right") if c.accuracy else ()):
        table.add_column(col, justify="left" if col == "label" else "right")
    for r in c.per_label:
        extra = tuple("–" if r[k] is None else f"{r[k] * 100:.1f}%" for k in ("old_recall", "new_recall")) if c.accuracy else ()
        table.add_row(r["label"], str(r["old_answers"]), str(r["new_answers"]), f"{r['change']:+d}", *extra)
    out.print(table)
    for note in c.notes + outcome.warnings:
        say(console, "warning:", note)
    if outcome.report_html is not None:
        out.print(f"report: {outcome.report_html} ({outcome.report_json.name} beside it)", highlight=False)
    if not c.refused:
        out.print(f"verdict: {c.verdict} ({c.summary()})", highlight=False)


@app.command(epilog=PROMOTE_EXIT_CODES)
def promote(
    new: Annotated[Optional[Path], typer.Argument(help="The model folder to make live.")] = None,
    link: Annotated[Path, typer.Option(help="The symbolic link jobs run with (--model LINK), e.g. models/current.")] = ...,  # type: ignore[assignment]  # Typer: ... is a required option
    rollback: Annotated[bool, typer.Option("--rollback", help="Point the link back at the target the last promotion replaced.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Promote even when the last compare of the current model against NEW refused it.")] = False,
) -> None:
    """Point LINK at NEW atomically (running jobs keep the model they opened; the next run gets
    NEW), remembering the previous target for --rollback. Refused (exit 5) when the last
    `edgeclass compare LINK NEW` refused NEW, unless --force."""
    from edgeclass.modelfiles.promote import promote as do_promote, rollback as do_rollback

    console = err_console()
    try:
        if rollback:
            if new is not None:
                raise UsageError("--rollback takes no NEW: it points --link back at its previous target")
            done = do_rollback(link)
        elif new is None:
            raise UsageError("give the model folder to promote (NEW), or --rollback")
        else:
            done = do_promote(new, link, force)
    except EdgeclassError as exc:
        raise fail(console, exc) from exc
    for note in done.notes:
        say(console, "note:", note)
    if done.forced and done.verdict is not None:  # forced: a refusing verdict was found
        say(console, "warning:", f"promoted despite the compare that refused it (--force): {done.verdict.get('summary')}")
    if done.changed:
        what = "rolled back" if rollback else "promoted"
        out_console().print(f"{what}: {link} -> {done.target} (was {done.previous or 'nothing'})", highlight=False)
