"""The text `harma data check` prints: a table of the splits, the problems (the first 20), and the verdict."""
from __future__ import annotations

from harma.data.check import DataReport, SplitReport

MAX_PROBLEMS = 20
HEADERS = ("split", "annotations", "images", "captions", "captions/image", "repeated in image",
           "repeated across images", "missing", "not decodable")


def per_image_text(per_image: dict[int, int]) -> str:
    """`5` when every image has 5 captions, else `5 x 1,090; 4 x 3` (most images first)."""
    if len(per_image) == 1:
        return str(next(iter(per_image)))
    ordered = sorted(per_image.items(), key=lambda kv: (-kv[1], kv[0]))
    return "; ".join(f"{k} x {n:,}" for k, n in ordered)


def _row(s: SplitReport, decoded: bool) -> list[str]:
    return [s.split, s.source, f"{s.images:,}", f"{s.captions:,}", per_image_text(s.per_image),
            f"{s.repeated_in_image:,}", f"{s.repeated_across:,}", f"{s.missing:,}",
            f"{s.undecodable:,}" if decoded else "not checked"]


def table_lines(report: DataReport) -> list[str]:
    rows = [list(HEADERS)] + [_row(s, report.decoded) for s in report.splits]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    text_cols = (0, 1, 4)
    return ["  ".join(cell.ljust(w) if i in text_cols else cell.rjust(w) for i, (cell, w) in
                      enumerate(zip(row, widths))).rstrip() for row in rows]


def report_lines(report: DataReport, provenance: str | None = None) -> list[str]:
    """Everything `harma data check` prints, in order."""
    how = f"images decoded at {report.image_size}x{report.image_size}" if report.decoded else "images not decoded"
    lines = [f"data check: image root {report.image_root}, {how}", *table_lines(report),
             f"images in more than one split: {report.shared:,}"]
    if provenance:
        lines.append(provenance)
    shown = report.problems[:MAX_PROBLEMS]
    lines += [f"problem: {p}" for p in shown]
    if report.problems:
        more = f" (the first {MAX_PROBLEMS} are listed above)" if len(report.problems) > MAX_PROBLEMS else ""
        lines.append(f"data check: {len(report.problems):,} problem(s){more}")
    else:
        lines.append("data check: no problems")
    return lines
