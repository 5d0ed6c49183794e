"""``probity search``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.domain.faces import DetectorMode
from probity.domain.search import FaceOutcome, SearchOutcome, SearchResult, threshold_wording
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    read_input_file,
    services,
)
from probity.interfaces.render.results import search_json, verify_json

ProbeOpt = Annotated[Path, typer.Argument(help="Probe image.")]
CaseOpt = Annotated[str, typer.Option("--case", help="Case reference (required).")]
DetectorOpt = Annotated[DetectorMode | None, typer.Option("--detector", help="auto, hog or cnn.")]


@app.command()
def search(
    image: ProbeOpt,
    case: CaseOpt,
    gallery: Annotated[
        list[str] | None, typer.Option("--gallery", help="Gallery to search (repeatable).")
    ] = None,
    top: Annotated[int | None, typer.Option("--top", help="Candidates per face.")] = None,
    fpir: Annotated[
        float | None,
        typer.Option(
            "--fpir",
            help="Mark rows at this false positive identification rate (e.g. 0.01), at the "
            "galleries' size. Default: investigation mode, nothing marked.",
        ),
    ] = None,
    no_threshold: Annotated[
        bool,
        typer.Option("--no-threshold", help="Investigation mode whatever the configured default."),
    ] = False,
    face: Annotated[
        int | None, typer.Option("--face", help="Search only face N (1 = leftmost).")
    ] = None,
    detector: DetectorOpt = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search a probe photo within a case. The result is an investigative lead, never an
    identification."""
    data = read_input_file(image, home)
    with services(home) as s:
        result = s.search.search(
            actor=actor_name(actor),
            case_reference=case,
            probe=data,
            galleries=gallery or [],
            top_k=top,
            target_fpir=fpir,
            threshold_off=no_threshold,
            face=face,
            detector=detector,
        )
    if json_out:
        print_json(search_json(result))
    else:
        print_result(result)


@app.command()
def verify(
    image: ProbeOpt,
    case: CaseOpt,
    gallery: Annotated[str, typer.Option("--gallery", help="The subject's gallery.")],
    subject: Annotated[str, typer.Option("--subject", help="The subject's reference.")],
    fmr: Annotated[
        float | None,
        typer.Option(
            "--fmr",
            help="1:1 false-match rate of the threshold (default 0.001), within the model's "
            "measured table.",
        ),
    ] = None,
    face: Annotated[
        int | None, typer.Option("--face", help="The probe face (1 = leftmost), if several.")
    ] = None,
    detector: DetectorOpt = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """1:1: compare the probe face with one named subject, within a case (audited). The answer
    is a lead for an examiner, never an identification."""
    data = read_input_file(image, home)
    with services(home) as s:
        result = s.search.verify(
            actor=actor_name(actor),
            case_reference=case,
            probe=data,
            gallery=gallery,
            subject_reference=subject,
            target_fmr=fmr,
            face=face,
            detector=detector,
        )
    if json_out:
        print_json(verify_json(result))
        return
    out.print(f"[bold]{INVESTIGATIVE_LEAD_NOTICE}[/bold]")
    verdict = "within" if result.within_threshold else "not within"
    out.print(
        f"Face {result.face} against {result.subject_reference} ({result.gallery_name}, "
        f"{result.fused} enrolment(s) fused): distance {result.distance:.4f}, score "
        f"{result.score:.3f}: {verdict} the threshold."
    )
    out.print(threshold_wording(result.threshold))


def print_result(result: SearchResult) -> None:
    out.print(f"[bold]{INVESTIGATIVE_LEAD_NOTICE}[/bold]")
    out.print(
        f"Search {result.id} · case {result.case_reference} · galleries "
        f"{', '.join(result.gallery_names)} · {result.model_key}"
    )
    out.print(threshold_wording(result.threshold))
    if result.outcome is SearchOutcome.NO_FACE_FOUND:
        out.print("No face found in the probe.")
        return
    marks = result.threshold.max_distance is not None
    for f in result.faces:
        head = f"Face {f.index} at {f.box.as_list()} (inter-eye {f.quality.inter_eye_px:.0f} px)"
        if f.outcome is FaceOutcome.REFUSED_QUALITY:
            out.print(f"{head}: not searched — {'; '.join(f.refusal_reasons)}")
            continue
        if not f.candidates:
            out.print(f"{head}: no candidate (the galleries hold no one to list).")
            continue
        if marks and f.outcome is FaceOutcome.NO_CANDIDATE_ABOVE_THRESHOLD:
            out.print(f"{head}: no row within the threshold; the list is for investigation only.")
        columns = ["rank", "subject", "gallery", "score", "distance", "fused", "strangers ≤ d"]
        table = Table(*columns, *(["marked"] if marks else []), "source", title=head)
        for c in f.candidates:
            strangers = "" if c.expected_strangers is None else f"{c.expected_strangers:.2g}"
            marked = ["within" if c.within_threshold else ""] if marks else []
            table.add_row(
                str(c.rank),
                c.subject_reference,
                c.gallery_name,
                f"{c.score:.3f}",
                f"{c.distance:.3f}",
                str(c.fused),
                strangers,
                *marked,
                c.provenance.source,
            )
        out.print(table)
        if f.expected_false_candidates is not None:
            out.print(
                f"A list of {len(f.candidates)} from this gallery is expected to hold about "
                f"{f.expected_false_candidates:.1f} row(s) a stranger's face produces by chance."
            )
