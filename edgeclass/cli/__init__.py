"""The ``edgeclass`` command: parses options, calls the library, renders. No work happens here.

One module per stage of the product: :mod:`.models` (convert, quantize, info), :mod:`.running`
(run, bench), :mod:`.training` (train); :mod:`.app` holds the Typer app and shared helpers.
"""

from __future__ import annotations

import sys

from edgeclass.cli import models, running, training, updates  # noqa: F401 - importing registers the commands
from edgeclass.cli.app import app


def entrypoint() -> None:  # console script
    app()


if __name__ == "__main__":
    sys.exit(app())
