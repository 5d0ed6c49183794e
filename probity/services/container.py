"""The composition root: ``build_services(settings)`` builds everything the CLI, the API, the
web pages, the worker and the tests use. Nothing heavy happens before it is called, and the
dlib models load only when the first face is analysed."""

from __future__ import annotations

import os
from dataclasses import dataclass

from probity.config import Settings
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import PROBE_QUALITY_FLOOR, ModelVersion
from probity.engine.pool import AnalysisPool, InlineAnalysisPool, ProcessAnalysisPool
from probity.engine.registry import EngineSet, build_engine_set
from probity.engine.types import FaceEngine
from probity.errors import NotInitialised
from probity.policy.ratelimit import SearchLimits
from probity.services.access import AccessGuard, name_of, organisation_of
from probity.services.accounts import AccountService
from probity.services.audit import AuditService
from probity.services.calibration import CalibrationService
from probity.services.cases import CaseService
from probity.services.clock import Clock, system_clock
from probity.services.doctor import DoctorService
from probity.services.enrolment import EnrolmentService
from probity.services.erasure import ErasureService, index_statement_for
from probity.services.erasure_work import ErasureWork
from probity.services.galleries import GalleryService
from probity.services.idempotency import IdempotencyService
from probity.services.index_server import index_set
from probity.services.indexes import IndexSet
from probity.services.jobs import EnrolmentJobs
from probity.services.jurisdictions import JurisdictionService
from probity.services.maintenance import IndexMaintenance
from probity.services.migration import ModelMigrationService
from probity.services.reports import ReportService
from probity.services.results import ResultService
from probity.services.retention import RetentionService
from probity.services.reviews import ReviewService
from probity.services.rights import RightsService, derive_form_secret
from probity.services.search import SearchService
from probity.services.sessions import SessionService
from probity.services.subjects import SubjectService
from probity.services.suppression import SuppressionService
from probity.services.transparency import TransparencyService
from probity.storage.blobs import FileBlobStore
from probity.storage.db import Database
from probity.storage.keyring import (
    CheckpointSigner,
    Keyring,
    create_master_key_file,
    load_master_key,
)
from probity.storage.repositories import AuditLog
from probity.storage.vault import Vault
from probity.storage.witness import Witness


def build_witness(settings: Settings) -> Witness:
    """The audit checkpoints' witness: <home>/audit-witness.jsonl plus settings.audit's sinks."""
    return Witness.from_settings(
        settings.witness_path,
        settings.audit.witness_sinks,
        timeout_s=settings.audit.witness_timeout_s,
    )


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    engine: FaceEngine  # the default engine (new galleries' model)
    engines: EngineSet  # every installed model's engine
    audit: AuditService
    galleries: GalleryService
    enrolment: EnrolmentService
    cases: CaseService
    search: SearchService
    subjects: SubjectService
    indexes: IndexSet
    maintenance: IndexMaintenance
    accounts: AccountService
    sessions: SessionService
    results: ResultService
    reviews: ReviewService
    reports: ReportService
    transparency: TransparencyService
    access: AccessGuard  # for what pages show a person (menus); services enforce, not this
    erasure: ErasureService
    suppression: SuppressionService  # the objection (opt-out by face) list
    rights: RightsService  # rights requests: access, objection, erasure; the access export
    jobs: EnrolmentJobs  # bulk enrolment in the background (web pages, API)
    jurisdictions: JurisdictionService  # jurisdiction rules: refuse, withhold, purge
    retention: RetentionService  # the retention sweeper (the server schedules it)
    migrations: ModelMigrationService  # moving a gallery to another face model
    calibration: CalibrationService  # the deployment's own FMR tables (probity calibrate)
    erasure_work: ErasureWork  # what committed erasures must still do outside the database
    doctor: DoctorService  # probity doctor: checks and repairs the home

    def close(self) -> None:
        self.db.dispose()


def initialise(settings: Settings, *, actor: str, clock: Clock = system_clock) -> bool:
    """Create the home folder (0700), the master key file (0600, unless the key comes from
    the environment) and the database schema. Idempotent; returns True if anything new was
    created. Records ``system.init`` the first time. Starts the audit witness file (empty)
    if there is none: also how a home made before the witness gets one."""
    settings.home.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.home, 0o700)
    created = False
    if not settings.master_key:
        created = create_master_key_file(settings.master_key_path)
    master = load_master_key(env_value=settings.master_key, key_file=settings.master_key_path)
    db = Database(settings.resolved_database_url)
    witness = build_witness(settings)
    try:
        db.migrate()
        audit = AuditService(
            db=db,
            clock=clock,
            organisation=settings.organisation,
            signer=CheckpointSigner(master),
            witness=witness,
        )
        if witness.home.create():
            created = True
        with db.transaction() as session:
            Vault(
                Keyring(master, settings.key_dir), FileBlobStore(settings.blob_dir)
            ).start_first_epoch(session)
        with db.transaction() as session:
            empty = AuditLog(session).count() == 0
            if empty:
                audit.record(
                    session,
                    AuditRecord(
                        actor=name_of(actor),
                        organisation=organisation_of(actor),
                        action=AuditAction.INIT,
                        details={"home": str(settings.home), "database": db.engine.dialect.name},
                    ),
                )
        return created or empty
    finally:
        db.dispose()


NUMPY_BLAS = "libscipy_openblas"
"""threadpoolctl's prefix for the OpenBLAS that numpy's wheels ship (FAISS ships its own,
``libopenblaso``, which runs on FAISS's OpenMP threads and is left alone)."""


def one_numpy_blas_thread() -> None:
    """Run numpy's matrix products on one thread in this process (threadpoolctl).

    Why: a search mixes numpy products (fusion, the suppression check: small matrices,
    40 x 128 against at most tens of thousands of rows) with the FAISS index query, which
    splits one query across the cores with OpenMP (``ivf_fast``: implementation 14).
    numpy's OpenBLAS keeps its worker threads spinning for a while after each product, and
    FAISS's threads then wait for the cores. Measured in the search path at 3.94M
    (2 cores, nothing else running): the index query took 27 ms inside a search against
    3.9 ms alone, and 6.4 ms inside a search with numpy's BLAS on one thread. The numpy
    products of a search are too small to gain from a second thread (10,000 objectors x
    40 candidates: 3.3 ms on one). Called by ``build_services``; idempotent."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits={NUMPY_BLAS: 1})


def build_services(
    settings: Settings,
    *,
    engine: FaceEngine | None = None,
    clock: Clock = system_clock,
    engines: EngineSet | None = None,
    finish_erasures: bool = True,
) -> Services:
    """Wire every service for an initialised home. Raises NotInitialised otherwise.
    ``engine`` (one engine) or ``engines`` (a set) replace the installed models: tests.

    Erasure work a crash left (``services/erasure_work.py``) is completed here, before
    anything else runs: one query when there is none; a failure is logged and left for
    later. ``finish_erasures=False`` leaves it (``probity doctor --check`` reports it)."""
    one_numpy_blas_thread()
    master = load_master_key(env_value=settings.master_key, key_file=settings.master_key_path)
    db = Database(settings.resolved_database_url)
    pending = db.pending_migrations()
    if pending:
        initialised = db.current_revision() is not None
        db.dispose()
        if not initialised:
            raise NotInitialised(
                f"the database at {settings.resolved_database_url} is not initialised "
                "(run 'probity init')"
            )
        raise NotInitialised(
            f"the database at {settings.resolved_database_url} is out of date, migrations "
            f"pending: {', '.join(revision for revision, _ in pending)} (run 'probity migrate')"
        )
    passed = engine is not None or engines is not None  # test fakes run in this process
    if engines is None:
        engines = (
            EngineSet.single(engine)
            if engine is not None
            else build_engine_set(
                settings.engine,
                home_models=settings.models_dir,
                calibration_dir=settings.calibration_dir,
            )
        )
    face_engine = engines.default
    vault = Vault(Keyring(master, settings.key_dir), FileBlobStore(settings.blob_dir))
    # In-process, or a client of the home's index process (probity serve --workers N>1).
    indexes = index_set(settings, db, vault, master)
    guard = AccessGuard(clock, frozenset(settings.server.searching_kinds))
    audit = AuditService(
        db=db,
        clock=clock,
        organisation=settings.organisation,
        signer=CheckpointSigner(master),
        guard=guard,
        witness=build_witness(settings),
    )
    limits = settings.limits

    def pool_factory(workers: int, model: ModelVersion) -> AnalysisPool:
        # Worker processes build their own engine set and run the gallery's model; an engine
        # passed in (a test fake) runs in this process.
        if workers > 1 and not passed:
            return ProcessAnalysisPool(
                settings.engine,
                model_key=model.key,
                home_models=settings.models_dir,
                workers=workers,
                max_bytes=limits.max_upload_bytes,
                max_pixels=limits.max_image_pixels,
                hog_pixel_budget=settings.engine.enrol_hog_pixel_budget,
            )
        return InlineAnalysisPool(
            engines.for_model(model),
            max_bytes=limits.max_upload_bytes,
            max_pixels=limits.max_image_pixels,
            hog_pixel_budget=settings.engine.enrol_hog_pixel_budget,
        )

    galleries = GalleryService(
        db=db, audit=audit, clock=clock, model=face_engine.model, guard=guard, engines=engines
    )
    cases = CaseService(
        db=db,
        audit=audit,
        clock=clock,
        offences=settings.offence_categories,
        guard=guard,
        vault=vault,
    )
    reviews = ReviewService(db=db, audit=audit, clock=clock, guard=guard)
    idempotency = IdempotencyService(db=db, clock=clock)
    erasure_work = ErasureWork(db=db, vault=vault, indexes=indexes)
    if finish_erasures:
        erasure_work.complete_at_start()
    erasure = ErasureService(
        db=db,
        audit=audit,
        clock=clock,
        galleries=galleries,
        vault=vault,
        work=erasure_work,
        guard=guard,
        index_statement=index_statement_for(settings.index_backend, settings.milvus),
    )
    jurisdictions = JurisdictionService(
        db=db, audit=audit, clock=clock, galleries=galleries, erasure=erasure, guard=guard
    )
    results = ResultService(
        db=db,
        cases=cases,
        guard=guard,
        vault=vault,
        max_upload_bytes=limits.max_upload_bytes,
        max_image_pixels=limits.max_image_pixels,
        jurisdictions=jurisdictions,
    )
    suppression = SuppressionService(
        db=db,
        audit=audit,
        clock=clock,
        engines=engines,
        galleries=galleries,
        vault=vault,
        erasure=erasure,
        guard=guard,
        target_fmr=settings.suppression.target_fmr,
        erase_target_fmr=settings.suppression.erase_target_fmr,
        max_upload_bytes=limits.max_upload_bytes,
        max_image_pixels=limits.max_image_pixels,
    )
    enrolment = EnrolmentService(
        db=db,
        audit=audit,
        clock=clock,
        galleries=galleries,
        vault=vault,
        indexes=indexes,
        pools=pool_factory,
        workers=settings.engine.workers,
        max_upload_bytes=limits.max_upload_bytes,
        suppression=suppression,
        jurisdictions=jurisdictions,
        idempotency=idempotency,
    )
    rights = RightsService(
        db=db,
        audit=audit,
        clock=clock,
        guard=guard,
        galleries=galleries,
        vault=vault,
        erasure=erasure,
        suppression=suppression,
        form_secret=derive_form_secret(master),
        max_upload_bytes=limits.max_upload_bytes,
        max_image_pixels=limits.max_image_pixels,
        keep_closed_days=settings.rights.keep_closed_days,
    )
    jobs = EnrolmentJobs(
        db=db,
        clock=clock,
        galleries=galleries,
        enrolment=enrolment,
        staging_dir=settings.staging_dir,
        max_files=limits.max_bulk_files,
        max_upload_bytes=limits.max_upload_bytes,
    )
    server = settings.server
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        engine=face_engine,
        engines=engines,
        audit=audit,
        galleries=galleries,
        enrolment=enrolment,
        cases=cases,
        search=SearchService(
            db=db,
            audit=audit,
            clock=clock,
            engines=engines,
            cases=cases,
            galleries=galleries,
            vault=vault,
            indexes=indexes,
            probe_floor=PROBE_QUALITY_FLOOR,
            max_upload_bytes=limits.max_upload_bytes,
            max_image_pixels=limits.max_image_pixels,
            default_top_k=settings.search.default_top_k,
            default_target_fpir=settings.search.default_target_fpir,
            verify_target_fmr=settings.search.verify_target_fmr,
            guard=guard,
            limits=SearchLimits(
                per_user=settings.search.per_user_per_minute,
                per_organisation=settings.search.per_organisation_per_minute,
            ),
            suppression=suppression,
            jurisdictions=jurisdictions,
            idempotency=idempotency,
            results=results,
        ),
        subjects=SubjectService(erasure=erasure, galleries=galleries, db=db),
        indexes=indexes,
        maintenance=IndexMaintenance(
            db=db, audit=audit, galleries=galleries, vault=vault, indexes=indexes
        ),
        accounts=AccountService(db=db, audit=audit, clock=clock, guard=guard),
        sessions=SessionService(
            db=db,
            audit=audit,
            clock=clock,
            session_hours=server.session_hours,
            max_failures=server.login_attempts,
            window_s=server.login_window_s,
            limit_storage=server.login_limit_storage,
        ),
        results=results,
        reviews=reviews,
        reports=ReportService(
            db=db, audit=audit, clock=clock, results=results, guard=guard, model=face_engine.model
        ),
        transparency=TransparencyService(db=db, audit=audit, clock=clock, guard=guard),
        access=guard,
        jobs=jobs,
        erasure=erasure,
        jurisdictions=jurisdictions,
        retention=RetentionService(
            db=db,
            audit=audit,
            clock=clock,
            galleries=galleries,
            erasure=erasure,
            guard=guard,
            rights=rights,
        ),
        suppression=suppression,
        rights=rights,
        migrations=ModelMigrationService(
            db=db,
            audit=audit,
            clock=clock,
            galleries=galleries,
            engines=engines,
            vault=vault,
            indexes=indexes,
            erasure=erasure,
            suppression=suppression,
            max_upload_bytes=limits.max_upload_bytes,
            max_image_pixels=limits.max_image_pixels,
            hog_pixel_budget=settings.engine.enrol_hog_pixel_budget,
        ),
        calibration=CalibrationService(
            db=db,
            audit=audit,
            clock=clock,
            engines=engines,
            folder=settings.calibration_dir,
            guard=guard,
        ),
        erasure_work=erasure_work,
        doctor=DoctorService(
            db=db,
            clock=clock,
            audit=audit,
            vault=vault,
            indexes=indexes,
            work=erasure_work,
            jobs=jobs,
            blob_dir=settings.blob_dir,
        ),
    )
