"""``probity evaluate``'s report: text lines, the DET and CMC curves (PNG, matplotlib's Agg
backend, no display needed) and a PDF holding the figures and both plots.

- DET: FNMR against FMR over every genuine and impostor pair, both axes log10. A rate of zero
  has no place on a log axis: it is drawn at a floor of half of one pair (1 / (2 n)), and the
  caption says so.
- CMC: the share of mated probes whose mate is within rank r, for r = 1 .. gallery size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from probity.engine.evaluation_run import Report
from probity.interfaces.render.pdf_base import HousePDF


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def text_lines(summary: dict[str, Any]) -> list[str]:
    """The report as plain lines (the CLI prints them; the PDF repeats them)."""
    s = summary
    pairs, one = s["pairs"], s["one_to_n"]
    by_detector = ", ".join(f"{k} {v}" for k, v in sorted(s["faces_by_detector"].items()))
    lines = [
        f"Dataset {s['dataset']}: {s['people']} people, {s['images']} images; model "
        f"{s['model']}{' with --flip (mean of the face and its mirror)' if s['flip'] else ''}.",
        f"Faces found: {s['images_with_face']} of {s['images']} images "
        f"({percent(s['faces_found'])}; {by_detector or 'none'}). Analysed now: "
        f"{s['analysed']}, from the cache: {s['from_cache']}.",
    ]
    for path, error in sorted(s["decode_errors"].items()):
        lines.append(f"  not decoded: {path}: {error}")
    if pairs["accuracy"] is None:
        lines.append(f"Pairs accuracy: not measured: {pairs['reason']}.")
    else:
        lines.append(
            f"Pairs accuracy ({pairs['protocol']}; {pairs['genuine_pairs']} genuine / "
            f"{pairs['impostor_pairs']} impostor pairs): {percent(pairs['accuracy'])} "
            f"(sd {percent(pairs['sd'])} over {len(pairs['folds'])} folds)."
        )
    lines.append("FMR table (all pairs of images with a face):")
    for row in s["fmr_table"]:
        if row["distance"] is None:
            lines.append(f"  FMR {row['target_fmr']:g}: {row['reason']}")
        else:
            lines.append(
                f"  FMR {row['target_fmr']:g}: distance {row['distance']:.4f} (similarity "
                f"{row['similarity']:.4f}), FNMR {percent(row['fnmr'])}, measured FMR "
                f"{row['fmr']:.2g}; {row['genuine_pairs']} genuine / {row['impostor_pairs']} "
                "impostor pairs"
            )
    lines.append(
        f"1:N ({one['gallery_size']} in the gallery, {one['mated_probes']} mated and "
        f"{one['non_mated_probes']} non-mated probes): rank-1 {percent(one['rank1'])}, "
        f"rank-10 {percent(one['rank10'])}, FNIR at FPIR {one['fpir']:g}: "
        + (percent(one["fnir_at_fpir"]) if one["fnir_at_fpir"] is not None else one["reason"])
        + f"; FNIR with no non-mated probe within threshold: {percent(one['fnir_at_zero_fpir'])}."
    )
    if s.get("fusion"):
        lines.append(f"Fusion ({s['fusion']['protocol']}):")
        for rule, r in s["fusion"].items():
            if rule == "protocol":
                continue
            lines.append(
                f"  {rule}: rank-1 {percent(r['rank1'])}, FNIR at FPIR 1 %: "
                f"{percent(r['fnir_at_fpir']) if r['fnir_at_fpir'] is not None else 'n/a'}, "
                f"FNIR at zero false positives {percent(r['fnir_at_zero_fpir'])} "
                f"({r['mated_probes']} probes)"
            )
    return lines


def write_plots(report: Report, folder: Path) -> tuple[Path, Path]:
    """det.png and cmc.png in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fmr, fnmr = report.det
    pairs = report.summary["fmr_table"][0] if report.summary["fmr_table"] else {}
    floor = 0.5 / max(1, pairs.get("impostor_pairs", 1), pairs.get("genuine_pairs", 1))
    det_path, cmc_path = folder / "det.png", folder / "cmc.png"
    figure, axes = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    axes.step(np.maximum(fmr, floor), np.maximum(fnmr, floor), where="post")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("FMR (false-match rate, 1:1)")
    axes.set_ylabel("FNMR (false non-match rate)")
    axes.set_title(f"DET: {report.summary['model']}", fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    figure.text(0.01, 0.01, f"rates of 0 drawn at {floor:.1g}", fontsize=7)
    figure.tight_layout()
    figure.savefig(det_path)
    plt.close(figure)
    figure, axes = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    ranks = np.arange(1, len(report.cmc) + 1)
    axes.step(ranks, report.cmc, where="post", marker="o", markersize=3)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("rank")
    axes.set_ylabel("identification rate (mate within rank)")
    axes.set_title(f"CMC: {report.summary['model']}", fontsize=9)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(cmc_path)
    plt.close(figure)
    return det_path, cmc_path


def write_pdf(report: Report, folder: Path, plots: tuple[Path, Path]) -> Path:
    """evaluation.pdf: the text figures, then the DET and CMC plots."""
    pdf = HousePDF(f"Probity evaluation: {report.summary['dataset']}, {report.summary['model']}")
    pdf.alias_nb_pages()
    pdf.add_page()
    for line in text_lines(report.summary):
        pdf.para(line)
    pdf.para(
        "Scores are similarities on the model's own scale; they do not say how likely two "
        "photos show one person. A threshold measured here holds for data like this set only.",
        style="I",
        size=9,
    )
    for title, path in zip(("DET curve", "CMC curve"), plots, strict=True):
        pdf.heading(title)
        pdf.image(str(path), w=140)
    target = folder / "evaluation.pdf"
    pdf.output(str(target))
    return target
