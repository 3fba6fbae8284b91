"""``LineFormat.inspect``: what a CSV or JSON-lines output holds when ``--resume`` opens it, in one
look (size, columns, where the header ends, which positions end a complete row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeclass.errors import OutputError
from edgeclass.results import Prediction, Result, Status
from edgeclass.run.output import FORMATS
from edgeclass.run.output.columns import legacy_header, row_values

TOP_K = 2


def _result(i: int) -> Result:
    return Result(f"/in/{i}.jpg", Status.OK, "", (Prediction(1, "cat", 0.75), Prediction(2, "dog", 0.25)))


def _written(fmt_name: str, path: Path, n: int) -> list[int]:
    """``n`` rows written as a run writes them; the byte position after each row."""
    writer = FORMATS[fmt_name].open_writer(path, TOP_K, "m@1")
    ends = []
    for i in range(n):
        writer.append(_result(i))
        ends.append(writer.position())
    writer.close()
    return ends


@pytest.mark.parametrize("name", ["csv", "jsonl"])
def test_rows_their_ends_and_a_torn_tail(name, tmp_path):
    fmt, out = FORMATS[name], tmp_path / f"out.{name}"
    ends = _written(name, out, 3)
    with open(out, "ab") as fh:
        fh.write(b"/in/3.jpg,ok")  # a torn row after the last complete one
    seen = fmt.inspect(out, TOP_K, [ends[0], ends[1] - 1, ends[2], ends[2] + 5, out.stat().st_size + 10])
    assert (seen.size, seen.legacy, seen.header_end) == (out.stat().st_size, False, fmt.header_size(TOP_K))
    assert seen.has_rows and seen.rows_end == (True, False, True, False, False)
    assert seen.valid(7) == 8  # the caller's positions from its index 7: the first holds, the second does not
    assert fmt.inspect(out, TOP_K, [ends[2]]).valid(0) == 1


@pytest.mark.parametrize("name", ["csv", "jsonl"])
def test_missing_empty_and_header_only_outputs_have_no_rows(name, tmp_path):
    fmt, out = FORMATS[name], tmp_path / f"out.{name}"
    assert fmt.inspect(out, TOP_K, []) == fmt.inspect(out, TOP_K, [])  # plain data
    missing = fmt.inspect(out, TOP_K, [0, 5])
    assert (missing.size, missing.has_rows, missing.rows_end) == (0, False, (True, False))
    _written(name, out, 0)
    assert not fmt.inspect(out, TOP_K, []).has_rows


def test_the_columns_of_the_release_before_model_ids(tmp_path):
    fmt, out = FORMATS["csv"], tmp_path / "old.csv"
    values = row_values(_result(0), TOP_K, None)
    del values[5]  # no model column
    out.write_bytes(fmt.encode_legacy_header(TOP_K) + (",".join("" if v is None else str(v) for v in values) + "\n").encode())
    seen = fmt.inspect(out, TOP_K, [out.stat().st_size])
    assert seen.legacy and seen.header_end == len(",".join(legacy_header(TOP_K))) + 1 and seen.rows_end == (True,)


def test_other_columns_are_an_output_error(tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(OutputError, match="other columns"):
        FORMATS["csv"].inspect(out, TOP_K, [])
