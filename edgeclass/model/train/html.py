"""``report.html``: the training report as one self-contained page (no external resources;
example images are inline ``data:`` thumbnails of what the model saw: the preprocessed crop)."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

import cv2
import numpy as np

from edgeclass.media.decode import DecodeOptions, ImageReadError, load_image_tensor
from edgeclass.media.preprocess import PreprocessConfig

THUMB = 96
_CSS = """
body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.pair{margin:10px 0}.pair img{margin:2px;border:2px solid #c33}
figure{display:inline-block;margin:4px;text-align:center;font-size:11px}.warn{color:#a60}
"""


def thumbnail(path: str, pp: PreprocessConfig) -> str | None:
    """A JPEG ``data:`` URI of the model's input crop for ``path`` (None if it no longer decodes)."""
    try:
        crop = load_image_tensor(path, pp, DecodeOptions())
    except ImageReadError:
        return None
    bgr = crop[..., ::-1] if pp.input_channel_order == "RGB" else crop
    scale = THUMB / max(bgr.shape[:2])
    small = cv2.resize(np.ascontiguousarray(bgr), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _per_class_table(rows: list[dict]) -> str:
    body = "".join(
        f"<tr><td class=l>{escape(r['label'])}</td><td>{_pct(r['precision'])}</td><td>{_pct(r['recall'])}</td>"
        f"<td>{_pct(r['f1'])}</td><td>{r['support']}</td></tr>"
        for r in rows
    )
    return ("<table id=per-class><tr><th class=l>class</th><th>precision</th><th>recall</th><th>F1</th>"
            f"<th>images</th></tr>{body}</table>")


def _confusion_table(labels: list[str], cm: list[list[int]]) -> str:
    peak = max((max(row) for row in cm), default=1) or 1
    head = "".join(f"<th>{escape(label)}</th>" for label in labels)
    rows = []
    for label, row in zip(labels, cm):
        cells = "".join(
            f"<td style='background:rgba(40,90,200,{0.08 + 0.7 * n / peak:.2f})'>{n}</td>" if n else "<td>0</td>"
            for n in row
        )
        rows.append(f"<tr><th class=l>{escape(label)}</th>{cells}</tr>")
    return f"<table id=confusion><tr><th class=l>true \\ predicted</th>{head}</tr>{''.join(rows)}</table>"


def _pairs(pairs: list[dict], thumbs: dict[str, str | None]) -> str:
    if not pairs:
        return "<p>No confusions on the held-out images.</p>"
    parts = []
    for p in pairs:
        figs = "".join(
            f"<figure><img alt='{escape(e['path'])}' src='{thumbs[e['path']]}'>"
            f"<figcaption>{escape(e['path'].rsplit('/', 1)[-1])} ({e['score']:.2f})</figcaption></figure>"
            for e in p["examples"]
            if thumbs.get(e["path"])
        )
        parts.append(
            f"<div class=pair><b>{escape(p['true'])}</b> taken for <b>{escape(p['predicted'])}</b>: "
            f"{p['count']} image{'s' if p['count'] != 1 else ''}<br>{figs}</div>"
        )
    return "".join(parts)


def _gate_line(gate: dict) -> str:
    if gate.get("fp32_top1") is None or gate.get("int8_top1") is None:
        return ""
    return (f"held-out top-1 FP32 {_pct(gate['fp32_top1'])}, INT8 {_pct(gate['int8_top1'])}, "
            f"top-1 agreement {_pct(gate.get('top1_agreement'))}")


def render(report: dict[str, Any], thumbs: dict[str, str | None]) -> str:
    """The whole page; every text from the report is HTML-escaped."""
    h, t = report["heldout"], report["heldout"]["threshold"]
    cal = report["calibration"]
    skipped = report.get("skipped") or []
    int8 = report.get("int8")
    int8_html = (
        "<p id=int8>INT8: not made (--no-int8).</p>" if int8 is None else
        f"<p id=int8>INT8: {'kept' if int8['kept'] else 'refused by the gate (run uses FP32)'} "
        f"({escape(str(int8.get('method') or ''))}); {escape(_gate_line(int8.get('gate') or {}))}</p>"
    )
    summary = (
        f"<p id=summary>Held-out accuracy <b>{_pct(h['accuracy'])}</b> on {h['images']} images "
        f"({escape(report['heldout_source'])}), {escape(report['evaluated_precision'])} model. "
        f"Temperature {cal['temperature']:.3f}; default --min-score {t['value']:.3f} keeps "
        f"{_pct(t['kept_share'])} of images at {_pct(t['accuracy_kept'])} accuracy ({t['unknown']} would be 'unknown').</p>"
    )
    skipped_html = (
        f"<h2>Skipped images ({len(skipped)})</h2><ul class=warn>"
        + "".join(f"<li>{escape(s['path'])}: {escape(s['reason'])}</li>" for s in skipped)
        + "</ul>"
        if skipped else ""
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        f"<title>edgeclass training report: {escape(report['model_name'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>Training report</h1><p>{escape(report['mode'])} on {escape(report['dataset'])}; backbone "
        f"{escape(report['model_name'])} ({escape(report['backbone_origin'])}); classes: "
        f"{escape(', '.join(report['labels']))}</p>{summary}{int8_html}"
        f"<h2>Per class</h2>{_per_class_table(h['per_class'])}"
        f"<h2>Confusion matrix</h2>{_confusion_table(report['labels'], h['confusion'])}"
        f"<h2>Most confused</h2>{_pairs(h['most_confused'], thumbs)}{skipped_html}</body></html>"
    )
