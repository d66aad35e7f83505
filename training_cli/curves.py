"""The training curves as a PNG: each loss term against the step, one panel per term, stages marked.

Drawn with OpenCV (already a dependency) so the training machine needs no plotting library.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

TERMS = (
    ("d_real_fake", "D: real/fake loss"),
    ("g_adv", "G: adversarial loss"),
    ("g_fm", "G: feature matching"),
    ("g_total", "G: total (adv + lambda * fm)"),
)
L1_TERMS = (  # runs trained with --lambda-l1 > 0 log an L1 term too
    ("g_l1", "G: L1 (inpaint: in the mask; label: the lung)"),
    ("g_total", "G: total (adv + lambda_fm * fm + lambda_l1 * L1)"),
)
STAGE_COLOURS = {"global": (235, 225, 210), "local": (210, 235, 215), "joint": (215, 215, 240)}


def read_metrics(path: str | os.PathLike) -> list[dict]:
    records = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
    return records


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    if window <= 1 or values.size == 0:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, values.size + 1)
    lo = np.maximum(idx - window, 0)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def plot_metrics(metrics: str | os.PathLike, out: str | os.PathLike, width: int = 1200) -> Path:
    """Write ``out`` (PNG): a grid of loss panels from a run's ``metrics.jsonl``, 2 x 2, or 2 x 3
    when the run was trained with an L1 term (``--lambda-l1``)."""
    import cv2

    from gan.fsutil import atomic_write_bytes

    records = [r for r in read_metrics(metrics) if "global_step" in r]
    if not records:
        raise ValueError(f"{metrics}: no logged steps to plot")
    steps = np.array([r["global_step"] for r in records], np.float64)
    stages = [r.get("stage", "") for r in records]
    terms = TERMS
    if any(float(r.get("g_l1") or 0.0) > 0 for r in records):
        terms = TERMS[:3] + L1_TERMS
    pw, ph = width // 2, int(width * 0.3)
    canvas = np.full((ph * ((len(terms) + 1) // 2), pw * 2, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    left, right, top, bottom = 70, pw - 15, 35, ph - 40
    for k, (key, title) in enumerate(terms):
        panel = canvas[(k // 2) * ph : (k // 2 + 1) * ph, (k % 2) * pw : (k % 2 + 1) * pw]
        values = np.array([float(r.get(key, np.nan)) for r in records])
        finite = np.isfinite(values)
        lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        x0, x1 = steps.min(), max(steps.max(), steps.min() + 1)

        def px(s, v, x0=x0, x1=x1, lo=lo, hi=hi):
            x = left + (s - x0) / (x1 - x0) * (right - left)
            y = bottom - (v - lo) / (hi - lo) * (bottom - top)
            return int(round(x)), int(round(y))

        start = 0  # stage bands
        for i in range(1, len(stages) + 1):
            if i == len(stages) or stages[i] != stages[start]:
                a, b = px(steps[start], lo)[0], px(steps[i - 1], lo)[0]
                colour = STAGE_COLOURS.get(stages[start], (240, 240, 240))
                cv2.rectangle(panel, (a, top), (max(b, a + 1), bottom), colour, -1)
                cv2.putText(panel, stages[start], (a + 3, top + 14), font, 0.4, (90, 90, 90), 1)
                start = i
        cv2.rectangle(panel, (left, top), (right, bottom), (120, 120, 120), 1)
        raw = [px(s, v) for s, v in zip(steps[finite], values[finite], strict=True)]
        if len(raw) > 1:
            cv2.polylines(panel, [np.array(raw, np.int32)], False, (200, 200, 200), 1, cv2.LINE_AA)
            trend = smooth(values[finite], max(1, len(raw) // 40))
            pts = [px(s, v) for s, v in zip(steps[finite], trend, strict=True)]
            cv2.polylines(panel, [np.array(pts, np.int32)], False, (160, 60, 20), 2, cv2.LINE_AA)
        cv2.putText(panel, title, (left, 22), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        for v in (lo, (lo + hi) / 2, hi):
            cv2.putText(panel, f"{v:.3g}", (5, px(x0, v)[1] + 4), font, 0.4, (60, 60, 60), 1)
        for s in (x0, (x0 + x1) / 2, x1):
            x = px(s, lo)[0]
            cv2.putText(panel, f"{int(s)}", (x - 12, bottom + 16), font, 0.4, (60, 60, 60), 1)
        cv2.putText(panel, "step", (right - 30, bottom + 32), font, 0.4, (60, 60, 60), 1)
    ok, data = cv2.imencode(".png", canvas)
    if not ok:
        raise OSError(f"{out}: PNG encoding failed")
    out = Path(out)
    atomic_write_bytes(out, data.tobytes())
    return out
