"""Result files: one :class:`~.format.Format` object per format, each in its own module.

Formats (chosen by the output's extension, or ``--format``): ``csv`` (:mod:`.csvfmt`), ``jsonl``
(:mod:`.jsonl`), ``parquet`` (:mod:`.parquetfmt`, needs the ``parquet`` extra: pyarrow, imported
only when a Parquet file is written). All have the columns and types of :mod:`.columns`. The
line formats share :class:`.bytefile.LineFormat` (appendable: ``--resume`` appends to them).

A format is resolved once (:func:`format_for`) and handed on as the object::

    fmt = format_for(path, flag)                      # a Format (FORMATS[name] for a name)
    fmt.require()                                     # a missing extra: UsageError (exit 2)
    writer = fmt.open_writer(path, top_k, model=text) # or fmt.stream_writer(stdout, top_k, model=text)
    writer.append(result)       # one Result -> one row; raises OSError, leaving whole rows only
    writer.position()           # an int marking the end of the last complete row (bytes, or parts)
    writer.sync()               # durable on disk (fsync)
    writer.close()
    target, line_fmt = fmt.journaled(path)            # where --resume appends, in which line format

``model`` is the text of every row's ``model`` column (:func:`.columns.model_text` of the
run's model id; None writes null). The resume journal (:mod:`edgeclass.run.journal`) records a
position after each finished input; :func:`edgeclass.run.resume.done_inputs` returns the set of
inputs already in an output. Row files are written through :class:`.appendfile.AppendFile`, as
the journal is; the run writes through the results ledger (:mod:`edgeclass.run.ledger`), not
through this package directly.

A new format is a module with one class and ``NAME = register(NameFormat())``, and its module
name added to the registration line below.
"""

from __future__ import annotations

from edgeclass.run.output.format import FORMATS, Format, RowWriter, format_for, get_format

# the registered formats, in --format's order: each module registers its one Format on import
from edgeclass.run.output import csvfmt, jsonl, parquetfmt  # noqa: E402,F401  (the registration line)

__all__ = ["FORMATS", "Format", "RowWriter", "format_for", "get_format"]
