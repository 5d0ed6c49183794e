"""``probity search``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.domain.faces import DetectorMode
from probity.domain.search import FaceOutcome, SearchOutcome, SearchResult
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
from probity.interfaces.render.results import search_json


@app.command()
def search(
    image: Annotated[Path, typer.Argument(help="Probe image.")],
    case: Annotated[str, typer.Option("--case", help="Case reference (required).")],
    gallery: Annotated[
        list[str] | None, typer.Option("--gallery", help="Gallery to search (repeatable).")
    ] = None,
    top: Annotated[int | None, typer.Option("--top", help="Candidates per face.")] = None,
    fmr: Annotated[
        float | None,
        typer.Option("--fmr", help="Target false-match rate, e.g. 0.005 (default) or 0.0003."),
    ] = None,
    no_threshold: Annotated[
        bool, typer.Option("--no-threshold", help="Return the full ranked list.")
    ] = False,
    face: Annotated[
        int | None, typer.Option("--face", help="Search only face N (1 = leftmost).")
    ] = None,
    detector: Annotated[
        DetectorMode | None, typer.Option("--detector", help="auto, hog or cnn.")
    ] = None,
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
            target_fmr=fmr,
            threshold_off=no_threshold,
            face=face,
            detector=detector,
        )
    if json_out:
        print_json(search_json(result))
    else:
        print_result(result)


def print_result(result: SearchResult) -> None:
    out.print(f"[bold]{INVESTIGATIVE_LEAD_NOTICE}[/bold]")
    t = result.threshold
    limit = (
        "threshold off (full ranked list)"
        if t.max_distance is None
        else f"distance ≤ {t.max_distance} (FMR {t.target_fmr:g}, 1:1)"
    )
    out.print(
        f"Search {result.id} · case {result.case_reference} · galleries "
        f"{', '.join(result.gallery_names)} · {result.model_key} · {limit}"
    )
    if result.outcome is SearchOutcome.NO_FACE_FOUND:
        out.print("No face found in the probe.")
        return
    for f in result.faces:
        head = f"Face {f.index} at {f.box.as_list()} (inter-eye {f.quality.inter_eye_px:.0f} px)"
        if f.outcome is FaceOutcome.REFUSED_QUALITY:
            out.print(f"{head}: not searched — {'; '.join(f.refusal_reasons)}")
            continue
        if f.outcome is FaceOutcome.NO_CANDIDATE_ABOVE_THRESHOLD:
            out.print(f"{head}: no candidate above threshold.")
            continue
        table = Table("rank", "subject", "gallery", "score", "distance", "source", title=head)
        for c in f.candidates:
            table.add_row(
                str(c.rank),
                c.subject_reference,
                c.gallery_name,
                f"{c.score:.3f}",
                f"{c.distance:.3f}",
                c.provenance.source,
            )
        out.print(table)
