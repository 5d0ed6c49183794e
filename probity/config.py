"""Settings: environment variables prefixed ``PROBITY_`` (nested with ``__``), then defaults.

Example: ``PROBITY_HOME=/srv/probity``, ``PROBITY_ENGINE__DETECTOR=cnn``,
``PROBITY_MASTER_KEY=<base64 of 32 bytes>``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from probity.domain.accounts import OrganisationKind
from probity.domain.faces import DetectorMode


def default_home() -> Path:
    return Path.home() / ".probity"


class EngineSettings(BaseModel):
    detector: DetectorMode = Field(
        DetectorMode.AUTO, description="hog, cnn, or auto (HOG, then CNN where HOG finds none)"
    )
    hog_upsample: int = Field(1, ge=0, le=3, description="HOG upsampling: 1 finds faces ≥ ~40 px")
    detect_max_side: int = Field(
        1600,
        ge=256,
        description="images are downscaled to this longest side (px) before HOG detection",
    )
    enrol_hog_pixel_budget: int = Field(
        1_500_000,
        ge=250_000,
        description=(
            "enrolment: most pixels HOG scans (the photo scaled by at most 2x). A 1132x770 "
            "portrait is scanned at 1.31x (faces from 61 px) for 43 % of upsampling's cost; "
            "photos under 0.375 Mpx are scanned exactly as with upsampling"
        ),
    )
    cnn_max_side: int = Field(
        1000, ge=256, description="longest side (px) for the slow CNN detector"
    )
    workers: int = Field(
        default_factory=lambda: max(1, min(4, os.cpu_count() or 1)),
        ge=1,
        le=32,
        description="processes analysing faces in bulk enrolment (dlib holds the GIL)",
        json_schema_extra={"doc_default": "the number of CPUs, at most 4"},
    )
    embed_jitters: int = Field(0, ge=0, le=10, description="dlib re-sampling per face; 0 = fast")
    default_model: str = Field(
        "sface-int8",
        description=(
            "model of new galleries: a model name (sface-int8, dlib-resnet-v1, or an operator "
            "model's name) or a full key name@version; existing galleries keep theirs"
        ),
    )
    model_dirs: list[Path] = Field(
        default_factory=list,
        description=(
            "more folders holding operator model files (*.toml beside their .onnx); "
            "<home>/models is always read"
        ),
    )
    onnx_providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description=(
            "ONNX Runtime execution providers in order of preference, e.g. "
            '["CUDAExecutionProvider", "CPUExecutionProvider"] with onnxruntime-gpu'
        ),
    )
    onnx_threads: int = Field(
        0, ge=0, le=64, description="ONNX Runtime intra-op threads per session; 0 = one per core"
    )
    yunet_max_side: int = Field(
        640,
        ge=160,
        le=4096,
        description=(
            "longest side (px) of the copy YuNet sees: 640 finds faces from about 2 % of the "
            "photo's longest side in 10-45 ms; raise it for crowd photos"
        ),
    )


class LimitSettings(BaseModel):
    max_upload_bytes: int = Field(25 * 1024 * 1024, description="largest accepted image file")
    max_image_pixels: int = Field(
        50_000_000, description="largest accepted width × height (decompression-bomb guard)"
    )
    max_bulk_files: int = Field(
        2000,
        ge=1,
        le=10_000,
        description=(
            "most images (and manifest rows) in one bulk upload from the web page or "
            "POST /api/v1/galleries/{name}/jobs; split a larger intake into several manifests"
        ),
    )
    max_bulk_upload_bytes: int = Field(
        2 * 1024 * 1024 * 1024,
        ge=1024 * 1024,
        description=(
            "largest bulk upload request, manifest and images together, in bytes (each image "
            "is still held to max_upload_bytes); staged under <home>/staging until its job ends"
        ),
    )


class SearchSettings(BaseModel):
    default_top_k: int = Field(
        10, ge=1, le=100, description="candidates (distinct subjects) per face when not asked"
    )
    default_target_fpir: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "target false positive identification rate for searches that do not ask for one "
            "(the chance that a search for someone absent marks any row, at the gallery's "
            "size). Unset: investigation mode, the ranked list with nothing marked (NIST's "
            "default for investigators). See engine/thresholds.threshold_for_fpir"
        ),
    )
    verify_target_fmr: float = Field(
        1e-3,
        gt=0,
        lt=1,
        description=(
            "1:1 false-match rate for a verify (one probe against one named subject) that "
            "does not ask for one; interpolated in the model's table (dlib 0.542, SFace 1.128 "
            "at 1e-3)"
        ),
    )
    per_user_per_minute: int = Field(
        30, ge=1, description="searches one person may run in any 60 s (server accounts)"
    )
    per_organisation_per_minute: int = Field(
        120, ge=1, description="searches one organisation may run in any 60 s"
    )


class SuppressionSettings(BaseModel):
    """The suppression list (objection / opt-out by face); see services/suppression.py."""

    target_fmr: float = Field(
        0.005,
        gt=0,
        lt=1,
        description=(
            "1:1 false-match rate at which a face counts as matching a suppression template, "
            "mapped to a distance by engine/thresholds (interpolated in log FMR between the "
            "model's measured points; LFW, all pairs): for dlib 0.005 is distance 0.593, for "
            "SFace 1.170. A match erases gallery records at objection time, "
            "refuses enrolments and withholds search candidates. Erring towards suppression is "
            "the safe side, but the check is 1:N: with M objectors about 1-(1-FMR)^M of "
            "unrelated enrolments are refused, and one objection erases about FMR x N of an "
            "N-template gallery's unrelated records. 0.001 is dlib 0.542 (FNMR 6.8 %), "
            "0.01 is 0.615 (FNMR 1.9 %)"
        ),
    )
    erase_target_fmr: float = Field(
        0.0003,
        gt=0,
        lt=1,
        description=(
            "stricter 1:1 false-match rate under which an objection *erases* a gallery record "
            "at once: 0.0003 is dlib distance 0.505, SFace 1.098 (about 3 unrelated records "
            "per 10,000 templates). Records between this and target_fmr's distance are not erased "
            "but withheld from every search and refused re-enrolment, and listed on the "
            "objection for a privacy officer to erase by hand after looking: an erasure "
            "cannot be undone, a withheld record can. Must not exceed target_fmr"
        ),
    )


class RetentionSettings(BaseModel):
    """The retention sweeper (services/retention.py); ``probity sweep`` runs it by hand."""

    sweep_interval_s: float = Field(
        3600,
        ge=0,
        description=(
            "seconds between the server's retention sweeps (PROBITY_RETENTION__SWEEP_INTERVAL_S);"
            " the first runs at start-up; 0 disables the schedule. Every API process sweeps: "
            "that is safe, an erasure skips what another already erased"
        ),
    )


class RightsSettings(BaseModel):
    """Rights requests (services/rights.py)."""

    keep_closed_days: int = Field(
        365,
        ge=0,
        description=(
            "days a closed or refused rights request keeps the person's contact details, "
            "identifiers and what they wrote (PROBITY_RIGHTS__KEEP_CLOSED_DAYS); then the "
            "retention sweeper blanks them, keeping the receipt, kind, dates and outcome for "
            "the annual report and the audit trail. A year, because people follow up on an "
            "answer and may complain to the regulator about how it was handled, and that "
            "takes months; past that, keeping how to reach them serves no purpose"
        ),
    )


class AuditSettings(BaseModel):
    """Where signed audit checkpoints are witnessed outside the database (services/witness.py,
    docs/audit.md). The home's ``audit-witness.jsonl`` is always written; these are more."""

    witness_sinks: list[str] = Field(
        default_factory=list,
        description=(
            "more witnesses of the signed audit checkpoints, written after each checkpoint's "
            'transaction commits, e.g. \'["file:/mnt/other/witness.jsonl", "syslog", '
            '"https://witness.example/probity"]\': file:PATH (an append-only JSON-lines file, '
            "another volume), syslog (the local /dev/log), syslog:/path/to/socket or "
            "syslog://host:514 (UDP), http(s)://URL (POST of the entry as JSON). A failing "
            "sink is logged and counted, never fails the audited action. Configure at least "
            "one off the host: a witness in the home falls with the home"
        ),
    )
    witness_timeout_s: float = Field(
        5.0, gt=0, le=60, description="how long an HTTP or syslog witness may take per entry"
    )


MILVUS_INDEX_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "DISKANN", "AUTOINDEX")
"""Index types the Milvus backend accepts (Milvus Lite runs all but DISKANN)."""

MilvusParams = dict[str, int | float | str]


def _no_milvus_params() -> MilvusParams:
    return {}


class MilvusSettings(BaseModel):
    """The Milvus vector database, used when ``index_backend`` is "milvus" (docs/milvus.md).

    Unset ``uri`` (the default) means Milvus Lite: one local data folder per index slot,
    ``<home>/index/<slot>.milvus.db``, for one process (tests, a laptop). A cluster is named
    by its URI; every slot is then a collection there."""

    uri: str = Field(
        "",
        json_schema_extra={"doc_default": "empty: Milvus Lite"},
        description=(
            "the Milvus server or cluster, e.g. https://milvus.example:19530. Empty: Milvus "
            "Lite, a local data folder per index slot (<home>/index/<slot>.milvus.db), usable "
            "by one process only"
        ),
    )
    token: SecretStr | None = Field(
        None,
        description="credentials for the cluster: 'user:password' or an API key; unset: none",
    )
    db_name: str = Field(
        "default", description="the Milvus database that holds Probity's collections"
    )
    collection_prefix: str = Field(
        "probity",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$",
        description=(
            "start of every collection name (then the slot name and a hash of it); give each "
            "Probity home sharing one cluster its own prefix"
        ),
    )
    index_type: str = Field(
        "FLAT",
        description=(
            "the vector index of new collections: FLAT (exact, the default: measured in "
            "bench/milvus_index.py, the approximate ones lost 16-61 % of the true top 10 at "
            "100k for a 2x faster search on Milvus Lite), IVF_FLAT, IVF_SQ8, HNSW, DISKANN "
            "(cluster only) or AUTOINDEX. An existing collection keeps the index it was built "
            "with"
        ),
    )
    index_params: MilvusParams = Field(
        default_factory=_no_milvus_params,
        description=(
            'build parameters of the index, JSON, e.g. {"M": 16, "efConstruction": 200} for '
            'HNSW, {"nlist": 1024} for IVF_SQ8; they must suit index_type (FLAT takes none)'
        ),
    )
    search_params: MilvusParams = Field(
        default_factory=_no_milvus_params,
        description=(
            'search parameters, JSON, e.g. {"ef": 128} for HNSW (raised to k when k is '
            'larger), {"nprobe": 64} for IVF_SQ8, {"search_list": 100} for DISKANN'
        ),
    )
    compaction_timeout_s: float = Field(
        600.0,
        gt=0,
        description=(
            "how long a removal waits for the compaction it requests; past that the removal "
            "fails (the rows stay deleted and unsearchable) and the erasure is retried by "
            "'probity doctor'"
        ),
    )
    request_timeout_s: float = Field(
        60.0, gt=0, description="how long one call to Milvus may take before it fails"
    )
    stated_removal_bound: str = Field(
        "",
        max_length=200,
        json_schema_extra={"doc_default": "empty: not stated"},
        description=(
            "the time within which this deployment's compaction, garbage-collection "
            "(dataCoord.gc.*) and message-queue retention settings remove deleted rows from "
            "the cluster's storage, as the operator configured them, e.g. '4 hours'. Probity "
            "cannot read or check it; an erasure receipt quotes it as the operator's "
            "statement. Empty: the receipt says the bound is not stated"
        ),
    )

    @field_validator("index_type")
    @classmethod
    def _known_index_type(cls, value: str) -> str:
        upper = value.upper()
        if upper not in MILVUS_INDEX_TYPES:
            raise ValueError(f"index_type must be one of {', '.join(MILVUS_INDEX_TYPES)}")
        return upper


class ServerSettings(BaseModel):
    searching_kinds: list[OrganisationKind] = Field(
        default_factory=lambda: [OrganisationKind.LAW_ENFORCEMENT],
        description="organisation kinds allowed to search (default: law enforcement only)",
    )
    session_hours: float = Field(8.0, gt=0, description="a web login lasts this long")
    login_attempts: int = Field(
        5, ge=1, description="failed logins per username per window (4x that per client address)"
    )
    login_window_s: int = Field(900, ge=1, description="the login rate-limit window, seconds")
    secure_cookies: bool | None = Field(
        None,
        description=(
            "mark the session cookies Secure and send Strict-Transport-Security. Unset (the "
            "default): on when `probity serve` listens on any address but loopback, and "
            "otherwise on for requests that arrived over HTTPS; false only for a plain-HTTP "
            "test set-up"
        ),
    )
    login_limit_storage: str = Field(
        "memory://",
        description=(
            "where the login limiter counts failures (a `limits` storage URI): memory:// "
            "keeps them per process; redis://host:6379 or memcached://host:11211 shares them "
            "across API processes"
        ),
    )
    metrics_token: SecretStr | None = Field(
        None,
        description=(
            "bearer token the Prometheus scraper sends to /metrics (Authorization: Bearer "
            "...), at least 24 characters; no personal API key is needed or accepted there. "
            "Unset: /metrics refuses every scrape (401)"
        ),
    )

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("the metrics token needs at least 24 characters")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROBITY_", env_nested_delimiter="__")

    home: Path = Field(
        default_factory=default_home,
        description=(
            "the home folder: database (SQLite), master.key, keys/, blobs/, index/, staging/; "
            "the CLI's --home overrides it"
        ),
        json_schema_extra={"doc_default": "`~/.probity`"},
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<home>/probity.db"
    )
    master_key: str | None = Field(
        None, description="base64 of a 32-byte key; default: the key file <home>/master.key"
    )
    index_backend: str = Field(
        "ivf",
        description=(
            "ivf (exact up to 50,000 faces a gallery, then IVF-SQ8 with exact re-scoring; "
            "saves rewrite only changed segments), faiss (flat, exact), exact (numpy, the "
            "reference) or milvus (docs/milvus.md)"
        ),
    )
    organisation: str = Field("local", description="organisation recorded in audit events")
    offence_categories: list[str] = Field(
        default_factory=lambda: [
            "homicide",
            "kidnapping",
            "terrorism",
            "sexual-offence",
            "child-sexual-exploitation",
            "serious-assault",
            "robbery",
            "trafficking",
            "missing-person",
            "fraud",
        ],
        description="offence codes a case may name",
    )
    engine: EngineSettings = Field(default_factory=EngineSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    suppression: SuppressionSettings = Field(default_factory=SuppressionSettings)
    rights: RightsSettings = Field(default_factory=RightsSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    milvus: MilvusSettings = Field(default_factory=MilvusSettings)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'probity.db'}"

    @property
    def master_key_path(self) -> Path:
        return self.home / "master.key"

    @property
    def witness_path(self) -> Path:
        """The append-only witness of the signed audit checkpoints (one JSON line each)."""
        return self.home / "audit-witness.jsonl"

    @property
    def models_dir(self) -> Path:
        """Operator model files (``*.toml`` beside their ONNX files); read at start."""
        return self.home / "models"

    @property
    def calibration_dir(self) -> Path:
        """The deployment's own FMR tables, one JSON file a model (``probity calibrate``);
        a model without one uses its shipped table."""
        return self.home / "calibration"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def key_dir(self) -> Path:
        """Key-encryption keys (storage/keyring.py): rotated at every erasure. Back it up
        apart from the data, and keep only the latest copy."""
        return self.home / "keys"

    @property
    def staging_dir(self) -> Path:
        """Bulk uploads waiting for or in their enrolment job (0700; removed as jobs end)."""
        return self.home / "staging"
