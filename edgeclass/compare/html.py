"""``report.html`` of ``compare``: one self-contained page (no external resources; the flipped
images are inline ``data:`` JPEG thumbnails of the crop the NEW model saw)."""

from __future__ import annotations

from html import escape

from edgeclass.compare.stats import Comparison, ModelSide

MAX_THUMBS = 48  # flipped images shown (the most confident); report.json lists them all
_CSS = """
body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}figure{display:inline-block;margin:4px;text-align:center;font-size:11px;width:130px}
figure img{border:2px solid #c33}.warn{color:#a60}.refused{color:#b00}.kept{color:#070}.unchecked{color:#555}
td.same{background:#eef5ee}
"""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _side(name: str, side: ModelSide) -> str:
    return (f"<tr><th class=l>{name}</th><td class=l>{escape(side.model_id)}</td><td class=l>{escape(side.path)}</td>"
            f"<td class=l>{escape(side.model_name)}</td><td class=l>{escape(side.precision)}</td>"
            f"<td>{len(side.labels)}</td></tr>")


def _models(c: Comparison) -> str:
    pre = "the same preprocessing (one crop feeds both)" if c.same_preprocessing else \
        "different preprocessing (each model crops the one decoded image its own way)"
    return ("<table id=models><tr><th class=l></th><th class=l>id</th><th class=l>folder</th><th class=l>model</th>"
            f"<th class=l>precision</th><th>labels</th></tr>{_side('OLD', c.old)}{_side('NEW', c.new)}</table>"
            f"<p>Both models classified the same {c.images} images, {pre}.</p>")


def _accuracy(c: Comparison) -> str:
    a = c.accuracy
    if a is None:
        return "<p id=accuracy>No labelled images: no accuracy, no verdict on it.</p>"
    d = a.difference
    return ("<table id=accuracy><tr><th class=l>labelled images</th><th>OLD top-1</th><th>NEW top-1</th>"
            "<th>NEW - OLD</th><th>95% interval</th><th>limit</th></tr>"
            f"<tr><td class=l>{a.images}</td><td>{_pct(a.old)}</td><td>{_pct(a.new)}</td>"
            f"<td>{d.estimate * 100:+.2f} pt</td><td>{d.low * 100:+.2f} to {d.high * 100:+.2f} pt</td>"
            f"<td>-{a.max_drop * 100:.2f} pt</td></tr></table>")


def _flip_table(c: Comparison) -> str:
    rows, cols = c.flip_labels
    head = "".join(f"<th>{escape(label)}</th>" for label in cols)
    peak = max((n for row in c.flip_counts for n in row), default=1) or 1
    body = []
    for label, counts in zip(rows, c.flip_counts):
        cells = "".join(
            f"<td class=same>{n}</td>" if label == col else
            (f"<td style='background:rgba(200,60,40,{0.08 + 0.7 * n / peak:.2f})'>{n}</td>" if n else "<td>0</td>")
            for col, n in zip(cols, counts)
        )
        body.append(f"<tr><th class=l>{escape(label)}</th>{cells}</tr>")
    return f"<table id=flips><tr><th class=l>OLD \\ NEW</th>{head}</tr>{''.join(body)}</table>"


def _per_label(c: Comparison) -> str:
    labelled = c.accuracy is not None
    head = ("<tr><th class=l>label</th><th>OLD answers</th><th>NEW answers</th><th>change</th>"
            + ("<th>images</th><th>OLD right</th><th>NEW right</th>" if labelled else "") + "</tr>")
    rows = []
    for r in c.per_label:
        extra = (f"<td>{r['images']}</td><td>{_pct(r['old_recall'])}</td><td>{_pct(r['new_recall'])}</td>"
                 if labelled else "")
        rows.append(f"<tr><td class=l>{escape(r['label'])}</td><td>{r['old_answers']}</td><td>{r['new_answers']}</td>"
                    f"<td>{r['change']:+d}</td>{extra}</tr>")
    return f"<table id=per-label>{head}{''.join(rows)}</table>"


def _flipped(c: Comparison, thumbs: dict[str, str | None]) -> str:
    if not c.flips:
        return "<p id=flipped>No image changed its label.</p>"
    figs = []
    for f in c.flips[:MAX_THUMBS]:
        uri = thumbs.get(f.path)
        img = f"<img alt='{escape(f.path)}' src='{uri}'>" if uri else "<div class=warn>(no longer readable)</div>"
        truth = f"<br>truth {escape(f.truth)}" if f.truth is not None else ""
        figs.append(f"<figure>{img}<figcaption>{escape(f.path.rsplit('/', 1)[-1])}<br>{escape(f.old_label)} "
                    f"({f.old_score:.2f}) &rarr; <b>{escape(f.new_label)}</b> ({f.new_score:.2f}){truth}</figcaption></figure>")
    more = (f"<p>{len(c.flips) - MAX_THUMBS} more in report.json.</p>" if len(c.flips) > MAX_THUMBS else "")
    return f"<div id=flipped>{''.join(figs)}</div>{more}"


def _lists(c: Comparison) -> str:
    parts = []
    if c.notes:
        parts.append("<ul id=notes class=warn>" + "".join(f"<li>{escape(n)}</li>" for n in c.notes) + "</ul>")
    for name, labels in (("OLD", c.labels_only_old), ("NEW", c.labels_only_new)):
        if labels:
            parts.append(f"<p class=labels-only>Labels only in {name}: {escape(', '.join(labels))}</p>")
    return "".join(parts)


def _failed(c: Comparison) -> str:
    if not c.failed:
        return ""
    return (f"<h2>Not compared ({len(c.failed)})</h2><ul id=failed class=warn>"
            + "".join(f"<li>{escape(f.path)}: {escape(f.reason)}</li>" for f in c.failed) + "</ul>")


def render(c: Comparison, thumbs: dict[str, str | None]) -> str:
    """The whole page; every text from the comparison is HTML-escaped."""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        f"<title>edgeclass compare: {escape(c.old.model_id)} vs {escape(c.new.model_id)}</title>"
        f"<style>{_CSS}</style></head><body><h1>Model comparison</h1>"
        f"<p id=verdict class={escape(c.verdict)}><b>{escape(c.verdict.upper())}</b>: {escape(c.summary())}</p>"
        f"{_models(c)}<p id=agreement>Agreement (same label by name): <b>{_pct(c.agreement.estimate)}</b> "
        f"(95% interval {_pct(c.agreement.low)} to {_pct(c.agreement.high)}); {len(c.flips)} of {c.images} "
        f"images change their label.</p>{_accuracy(c)}{_lists(c)}"
        f"<h2>Flip matrix</h2>{_flip_table(c)}<h2>Per label</h2>{_per_label(c)}"
        f"<h2>Flipped images (most confident first)</h2>{_flipped(c, thumbs)}{_failed(c)}</body></html>"
    )
