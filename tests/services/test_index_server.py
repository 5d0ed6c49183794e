"""The index process (services/index_server.py): one copy of the indexes per home, shared by
the API workers. Real processes throughout: the index process is started as ``probity
serve`` starts it, and waited for on its readiness pipe, never with a sleep."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from probity.config import Settings
from probity.errors import IntegrityError, InvalidInput, ProbityError
from probity.services.clock import ManualClock
from probity.services.container import Services, build_services, initialise
from probity.services.index_server import (
    INDEX_SOCKET_ENV,
    IndexClient,
    IndexProcess,
    IndexProcessDown,
    _error_in,
    _error_out,
    index_authkey,
)
from probity.services.indexes import IndexBehind, IndexSet, IndexSlot
from probity.storage.keyring import load_master_key
from tests.fakes import FakeEngine, make_image, unit
from tests.pg import postgres_url  # noqa: F401 - the fixture, used by the param below
from tests.services.conftest import ACTOR, PROVENANCE

GALLERY = "custody"


@dataclass
class Served:
    settings: Settings
    process: IndexProcess
    local: Services  # in-process IndexSet: what the CLI has
    client: Callable[[], Services]  # a new worker's services, with an IndexClient

    @property
    def slot(self) -> IndexSlot:
        return IndexSlot.of(self.local.galleries.get(GALLERY))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(
    request: pytest.FixtureRequest,
    clock: ManualClock,
    fake_engine: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Served]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    # A short home path: a Unix socket's path is limited to 107 bytes, and pytest's
    # tmp_path (with the test's name in it) can be longer.
    root = Path(tempfile.mkdtemp(prefix="pix-", dir="/tmp"))
    settings = Settings(home=root / "h", database_url=url)
    initialise(settings, actor=ACTOR, clock=clock)
    monkeypatch.delenv(INDEX_SOCKET_ENV, raising=False)
    local = build_services(settings, engine=fake_engine, clock=clock)
    local.galleries.create(
        actor=ACTOR, name=GALLERY, inclusion_policy="charged persons", retention_days=365
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBITY_")}
    process = IndexProcess(settings, env=env)
    process.start(supervise=False)
    built: list[Services] = [local]

    def client() -> Services:
        monkeypatch.setenv(INDEX_SOCKET_ENV, str(process.path))
        try:
            services = build_services(settings, engine=fake_engine, clock=clock)
        finally:
            monkeypatch.delenv(INDEX_SOCKET_ENV)
        assert isinstance(services.indexes, IndexClient)
        built.append(services)
        return services

    try:
        yield Served(settings, process, local, client)
    finally:
        process.stop()
        for s in built:
            s.close()
        shutil.rmtree(root, ignore_errors=True)


def enrol(svc: Services, engine: FakeEngine, seed: int) -> int:
    outcome = svc.enrolment.enrol(
        actor=ACTOR,
        gallery=GALLERY,
        subject=f"S{seed}",
        image=engine.register(make_image(seed), unit(seed)),
        provenance=PROVENANCE,
    )
    assert outcome.enrolment is not None
    return int(outcome.enrolment.template_id)


def test_two_workers_share_one_index(served: Served, fake_engine: FakeEngine) -> None:
    first, second = served.client(), served.client()
    template_id = enrol(first, fake_engine, 1)  # its index add goes to the index process
    hits = second.indexes.search(served.slot, unit(1)[None, :], 5)
    assert [h.id for h in hits[0]] == [template_id]
    assert hits[0][0].similarity == pytest.approx(1.0, abs=1e-5)
    assert second.indexes.size(served.slot) == 1
    # Through the whole search service of the other worker, too.
    second.cases.open(
        actor=ACTOR,
        reference="C-1",
        offence="fraud",
        justification="suspect photographed at the bank counter",
        authorisation="A-1",
    )
    probe = fake_engine.register(make_image(90), unit(1))
    result = second.search.search(actor=ACTOR, case_reference="C-1", probe=probe)
    assert [c.subject_reference for c in result.faces[0].candidates][:1] == ["S1"]
    state = second.indexes.states([served.slot])[0]
    assert (state.vectors, state.behind) == (1, 0)
    assert second.indexes.gaps() == []
    assert second.indexes.warm() == 1  # the index process opens every gallery's index
    rebuilt = second.indexes.rebuild(served.slot)
    assert (len(rebuilt), rebuilt.applied_seq) == (1, state.head_seq)


def test_errors_arrive_as_the_same_class_with_the_same_message(
    served: Served, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = served.client()
    enrol(worker, fake_engine, 1)
    wrong = np.zeros((1, 64), np.float32)  # the gallery's model is 128-d
    with pytest.raises(Exception) as local_error:
        served.local.indexes.search(served.slot, wrong, 5)
    with pytest.raises(Exception) as remote_error:
        worker.indexes.search(served.slot, wrong, 5)
    assert type(remote_error.value) is type(local_error.value)
    assert str(remote_error.value) == str(local_error.value)

    # An index that cannot catch up: a template enrolled (by a process whose index step
    # never ran) that no longer decrypts. The index process raises IndexBehind.
    monkeypatch.setattr(IndexSet, "add", lambda self, slot, ids, vectors: None)
    enrol(served.local, fake_engine, 2)
    with served.local.db.transaction() as s:
        s.execute(
            text(
                "UPDATE templates SET sealed_vector = :b WHERE id = (SELECT MAX(id) FROM templates)"
            ),
            {"b": b"\x01" + b"0" * 40},
        )
    with pytest.raises(IndexBehind) as behind:
        worker.indexes.size(served.slot)
    assert type(behind.value) is IndexBehind
    assert "cannot catch up" in behind.value.message
    assert "1 changes behind" in behind.value.message


def test_the_error_codec_keeps_class_and_message() -> None:
    for error in (InvalidInput("bad k"), IndexBehind("behind by 3"), ValueError("dims")):
        back = _error_in(_error_out(error))
        assert type(back) is type(error)
        assert str(back) == str(error)
        if isinstance(error, ProbityError):
            assert isinstance(back, ProbityError) and back.message == error.message
    odd = _error_in(_error_out(KeyError("x")))  # a builtin: as itself
    assert type(odd) is KeyError
    foreign = _error_in({"module": "os.path", "name": "join", "message": "m"})
    assert type(foreign) is IntegrityError and "os.path.join" in str(foreign)


def test_the_socket_is_the_owners_alone(served: Served) -> None:
    path = served.process.path
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # Without the home's master key, the index process answers nothing.
    master = load_master_key(env_value=None, key_file=served.settings.master_key_path)
    stranger = IndexClient(
        path,
        authkey=index_authkey(bytes(b ^ 1 for b in master)),
        directory=served.settings.index_dir,
        backend="faiss",
        seal=served.local.indexes.seal,  # type: ignore[arg-type]
    )
    with pytest.raises(IntegrityError, match="refused this connection"):
        stranger.size(served.slot)
    # A second index process for the same home refuses to start.
    with pytest.raises(IntegrityError, match="exited"):
        IndexProcess(served.settings, env=served.process.env).start(supervise=False)


def test_a_dead_index_process_gives_a_clear_error(served: Served, fake_engine: FakeEngine) -> None:
    worker = served.client()
    enrol(worker, fake_engine, 1)
    assert served.process.process is not None
    served.process.process.kill()
    served.process.process.wait()
    with pytest.raises(IndexProcessDown) as caught:
        worker.indexes.search(served.slot, unit(1)[None, :], 5)
    assert isinstance(caught.value, IndexBehind)  # a search is refused, never half-answered
    assert "index process is down" in caught.value.message
    assert caught.value.status == 503


def test_a_supervised_index_process_is_restarted(served: Served, fake_engine: FakeEngine) -> None:
    served.process.stop()
    process = IndexProcess(served.settings, env=served.process.env)
    restarted = threading.Event()
    process._on_restart = lambda count: restarted.set()
    process.start(supervise=True)
    try:
        worker_services = served.client()  # the same socket path: the home's
        template_id = enrol(worker_services, fake_engine, 1)
        first = process.pid
        assert process.process is not None
        process.process.kill()
        assert restarted.wait(timeout=120)
        assert process.pid != first
        hits = worker_services.indexes.search(served.slot, unit(1)[None, :], 5)
        assert [h.id for h in hits[0]] == [template_id]  # read back from the saved file
    finally:
        process.stop()


def test_an_erasure_through_one_worker_leaves_the_shared_index(
    served: Served, fake_engine: FakeEngine
) -> None:
    first, second = served.client(), served.client()
    erased = enrol(first, fake_engine, 1)
    kept = enrol(first, fake_engine, 2)
    assert second.indexes.size(served.slot) == 2
    first.subjects.remove(actor=ACTOR, gallery=GALLERY, reference="S1", reason="court order")
    # The erasure's work (index refresh and reseal under the new key epoch, then the old
    # key files destroyed) ran through the index process: the other worker sees it at once.
    hits = second.indexes.search(served.slot, unit(1)[None, :], 5)[0]
    assert erased not in [h.id for h in hits]
    assert [h.id for h in second.indexes.search(served.slot, unit(2)[None, :], 1)[0]] == [kept]
    assert second.indexes.size(served.slot) == 1
    assert second.indexes.gaps() == []
    assert first.erasure_work.pending() == []


def test_the_client_forwards_every_public_method_of_the_index_set() -> None:
    # A public method added to IndexSet but not to IndexClient would run on the client's
    # empty local state (no log) and answer wrongly rather than fail: this says so first.
    public = {n for n in vars(IndexSet) if not n.startswith("_") and callable(vars(IndexSet)[n])}
    local_only = {"path"}  # a file name, computed alike in both
    missing = sorted(n for n in public - local_only if n not in vars(IndexClient))
    assert missing == []
