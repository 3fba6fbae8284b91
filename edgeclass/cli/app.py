"""The Typer app and what every command shares: the error console, messages, errors -> exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional, cast

import typer

from edgeclass import __version__
from edgeclass.cli.render import escape_markup
from edgeclass.errors import EdgeclassError, exit_codes_help

if TYPE_CHECKING:
    from rich.console import Console

EXIT_CODES_HELP = exit_codes_help()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Classify images, videos and streams with MobileViTv2 on CPUs, with OpenVINO.",
    epilog=EXIT_CODES_HELP,
)


LOG_WIDTH = 200  # columns for tables written to logs and pipes (not a terminal)


def err_console() -> Console:
    """Messages, progress and tables for people (stderr)."""
    return cast("Console", LazyConsole(stderr=True))  # a Console on first use


def out_console() -> Console:
    """What a command prints as its answer (stdout: `info`, `bench`, `compare`, `promote`)."""
    return cast("Console", LazyConsole(stderr=False))


class LazyConsole:
    """A rich ``Console``, made (and rich imported, about 30 ms) when first used: a quiet cron
    `run` that prints nothing does not pay for it. Everything else is the real console's
    (:attr:`real`, for rich objects that take a ``console=``)."""

    def __init__(self, stderr: bool):
        self._stderr = stderr
        self._real: Console | None = None

    @property
    def real(self) -> Console:
        if self._real is None:
            self._real = _console(self._stderr)
        return self._real

    def __getattr__(self, name: str):
        return getattr(self.real, name)


def _console(stderr: bool) -> Console:
    """soft_wrap: messages stay on one line (greppable in cron logs). On a terminal tables fit its
    width; in logs and pipes they take their natural width up to ``LOG_WIDTH`` columns (or a wider
    COLUMNS), so a path in a table is not cut to "…" at rich's default of 80."""
    from rich.console import Console

    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal:
        console.width = max(console.width, LOG_WIDTH)
    return console


def progress_bars_to_stderr() -> None:
    """NNCF draws its progress bars on rich's global console (stdout): send them to stderr with
    edgeclass's own messages, so stdout stays for data (`convert`, `quantize`, `train` write none)."""
    import rich

    rich.reconfigure(stderr=True)


def say(console: Console, prefix: str, message: str, style: str = "yellow") -> None:
    console.print(f"[{style}]{prefix}[/] {escape_markup(str(message))}", highlight=False)


def fail(console: Console, exc: EdgeclassError) -> typer.Exit:
    say(console, "error:", str(exc), "red")
    return typer.Exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        print(f"edgeclass {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """edgeclass: MobileViTv2 image classification on CPU-only edge boxes."""


def with_status(console: Console, title: str, work):
    """Run ``work(update)`` under a spinner; errors become messages and exit codes. A failed
    INT8 gate still shows its measurements."""
    from edgeclass.errors import AccuracyGateError

    with console.status(title) as status:
        try:
            return work(status.update)
        except EdgeclassError as exc:
            status.stop()
            report = getattr(exc, "report", None) if isinstance(exc, AccuracyGateError) else None
            if report is not None:  # the gate's measurements (GateFailedError carries them)
                from edgeclass.cli.render import print_quantize_report

                print_quantize_report(console, report)
            raise fail(console, exc) from exc
