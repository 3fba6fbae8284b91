"""``python -m edgeclass``: the same as the ``edgeclass`` command."""

from edgeclass.cli import entrypoint

entrypoint()
