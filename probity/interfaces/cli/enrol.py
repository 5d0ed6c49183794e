"""``probity enrol``: one image with its provenance, or a CSV manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from probity.errors import InvalidInput, MissingProvenance
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    progress_bar,
    read_input_file,
    services,
)
from probity.interfaces.render.results import bulk_json, enrol_json
from probity.services.enrolment import BulkSummary, RowStatus


@app.command()
def enrol(
    gallery: Annotated[str, typer.Argument(help="Gallery name.")],
    image: Annotated[Path | None, typer.Argument(help="Image file (omit with --manifest).")] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Subject's external reference.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Source system and record id.")
    ] = None,
    lawful_basis: Annotated[
        str | None,
        typer.Option(
            "--lawful-basis",
            help="law_enforcement, legal_obligation, public_task, consent, vital_interests "
            "or court_order.",
        ),
    ] = None,
    lawful_basis_reference: Annotated[
        str | None, typer.Option("--lawful-basis-reference", help="Statute/warrant reference.")
    ] = None,
    collected_at: Annotated[
        str | None, typer.Option("--collected-at", help="Collection date, YYYY-MM-DD.")
    ] = None,
    jurisdiction: Annotated[
        str | None, typer.Option("--jurisdiction", help="ISO 3166 code, e.g. GB.")
    ] = None,
    collected_by: Annotated[
        str | None, typer.Option("--collected-by", help="Who collected the image.")
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="CSV: path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by "
            "(paths relative to the CSV).",
        ),
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Enrol an image of a subject with its provenance, or every row of a manifest."""
    who = actor_name(actor)
    if manifest is not None:
        if image is not None:
            raise InvalidInput("give an IMAGE or --manifest, not both")
        _enrol_manifest(gallery, manifest, home, who, json_out)
        return
    if image is None:
        raise InvalidInput("give an IMAGE to enrol, or --manifest FILE.csv")
    if not subject:
        raise MissingProvenance("subject", "--subject is required: the subject's reference")
    fields = {
        "source": source,
        "lawful_basis": lawful_basis,
        "lawful_basis_reference": lawful_basis_reference,
        "collected_at": collected_at,
        "jurisdiction": jurisdiction,
        "collected_by": collected_by,
    }
    for name in ("source", "lawful_basis", "collected_at", "jurisdiction"):
        if not fields[name]:
            flag = "--" + name.replace("_", "-")
            raise MissingProvenance(name, f"provenance field '{name}' is required ({flag})")
    data = read_input_file(image, home)
    with services(home) as s:
        outcome = s.enrolment.enrol(
            actor=who, gallery=gallery, subject=subject, image=data, provenance=fields
        )
    if json_out:
        print_json(enrol_json(outcome))
        return
    assert outcome.enrolment is not None
    out.print(
        f"Enrolled {image.name} as subject '{subject}' in '{gallery}' "
        f"(enrolment {outcome.enrolment.id}, retained until "
        f"{outcome.enrolment.provenance.retention_until})."
    )
    for refusal in outcome.refused_faces:
        out.print(
            f"  another face at {refusal.box.as_list()} was not enrolled: "
            + "; ".join(refusal.reasons)
        )


def _enrol_manifest(
    gallery: str, manifest: Path, home: Path | None, who: str, json_out: bool
) -> None:
    with services(home) as s, progress_bar("enrolling", hidden=json_out) as update:
        summary = s.enrolment.enrol_manifest(
            actor=who, gallery=gallery, manifest=manifest, on_progress=update
        )
    if json_out:
        print_json(bulk_json(summary))
    else:
        print_summary(summary)
    if summary.count(RowStatus.REFUSED):
        raise typer.Exit(code=8)


def print_summary(summary: BulkSummary) -> None:
    out.print(
        f"{summary.count(RowStatus.ENROLLED)} enrolled, {summary.count(RowStatus.SKIPPED)} "
        f"already enrolled (skipped), {summary.count(RowStatus.REFUSED)} refused."
    )
    refused = [r for r in summary.rows if r.outcome.status is RowStatus.REFUSED]
    notes = [r for r in summary.rows if r.outcome.refused_faces]
    if refused:
        table = Table("line", "file", "subject", "reason", title="Refused rows")
        for r in refused:
            table.add_row(str(r.line), Path(r.path).name, r.subject, r.outcome.reason or "")
        out.print(table)
    if notes:
        table = Table("line", "file", "face box", "why it was not enrolled", title="Faces refused")
        for r in notes:
            for face in r.outcome.refused_faces:
                table.add_row(
                    str(r.line), Path(r.path).name, str(face.box.as_list()), "; ".join(face.reasons)
                )
        out.print(table)
