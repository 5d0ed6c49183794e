"""Concurrent searches against a real ``probity serve`` over loopback.

What it measures: for each configuration (``--workers`` API processes x ``--concurrency``
client threads), a fresh temporary home is built with the real CLI (``probity init``, a
gallery of NASA portraits from ../shared/faces read in place, an organisation, an approved
investigator and supervisor, an API key), ``probity serve`` is started on 127.0.0.1 with a
free port, the investigator opens case BENCH-1 through the API, and then the client threads
``POST /api/v1/cases/BENCH-1/searches`` back to back for ``--duration`` seconds, cycling
through a few real probe photos (single portraits, a two-face photo, a partial face; not the
profile photo, which needs the slow CNN detector).

How to read it:

- **requests / throughput rps**: searches completed in the timed window; threads stop issuing
  new requests at the deadline and the in-flight ones are waited for, so throughput is
  requests / (last completion - start).
- **p50 / p95 / p99 / max ms**: per-request wall time from sending the request (multipart
  upload included) to the full response body, as the client sees it. With more client
  threads than server CPU, this includes queueing inside the server: latency grows roughly
  with concurrency / throughput.
- **errors**: any non-2xx answer or client exception (timeout, refused or dropped
  connection). The target is 0, warm-up included; the first few error bodies and the server's
  warning/error log lines (and uvicorn's "Child process ... died") are kept. After a client
  exception a thread pauses 0.1 s, and the window ends early if the server process exits, so
  a crashed server shows as a handful of errors and a short ``wall_s``, not a flood.
- **outcomes**: the search ``outcome`` of each 2xx answer (candidates,
  no_candidate_above_threshold, no_face_found) or ``http_<status>`` / the exception name.
- **server CPU s**: CPU seconds used by the server's processes during the window (from
  /proc), to see whether several API workers were all busy.

Conditions: the search rate limits (30 per user and 120 per organisation per minute by
default) are raised for the server process via ``PROBITY_SEARCH__PER_USER_PER_MINUTE`` and
``PROBITY_SEARCH__PER_ORGANISATION_PER_MINUTE`` (``--rate-limit``, recorded in the JSON);
otherwise one would measure 429s. Before the timed window each probe is searched twice
sequentially (the second pass is reported as the unloaded single-request latency) and then a
short concurrent warm-up runs, so model loading in each API process is excluded from the
figures. By default each request opens a new TCP connection, so that uvicorn's worker
processes share the load as they would with separate clients (kept-alive connections stay
pinned to one process; pass ``--keepalive`` to measure that). The client runs on the same
machine and shares its cores; it is kept light (httpx, one thread per concurrent request) and
its CPU time is recorded.
dlib holds the GIL, so one API process runs about one search at a time on one core.

Usage::

    .venv/bin/python bench/api_concurrent_search.py [--duration 60] [--concurrency 4] \\
        [--workers 1 2]
    .venv/bin/python bench/api_concurrent_search.py --config 1x1 1x4 2x4  # explicit pairs

The script exits non-zero when any configuration had an error.

Results: a markdown table on stdout and ``bench/results/api_concurrent_search.json``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "faces"
PROBITY = Path(sys.executable).with_name("probity")
OUT = REPO / "bench" / "results" / "api_concurrent_search.json"

GALLERY_PHOTOS = {
    "andrew_morgan_1.jpg": "MORGAN",
    "nick_hague_1.jpg": "HAGUE",
    "alexander_gerst_1.jpg": "GERST",
    "eileen_collins_2.png": "COLLINS",
    "barack_obama_1.jpg": "OBAMA",
    "joe_biden_1.jpg": "BIDEN",
    "christina_koch_1.jpg": "KOCH",
    "jessica_meir_1.jpg": "MEIR",
    "scott_kelly_1.jpg": "KELLY",
    "peggy_whitson_1.jpg": "WHITSON",
    "anne_mcclain_1.jpg": "MCCLAIN",
}
# Mates of enrolled people from other photos, a two-face photo, a partial face and a
# portrait of an enrolled person. Not alexander_gerst_2_profile.jpg (CNN detector, ~8 s).
PROBES = [
    "andrew_morgan_2.jpg",
    "multi_morgan_hague.jpg",
    "eileen_collins_1.jpg",
    "barack_obama_partial_face.jpg",
    "nick_hague_1.jpg",
]
CASE = {
    "reference": "BENCH-1",
    "offence": "robbery",
    "justification": "benchmark of concurrent searches",
    "authorisation": "AUTH-1",
}
MAX_ERRORS_KEPT = 5
REQUEST_TIMEOUT_S = 120.0
ERROR_PAUSE_S = 0.1


@dataclass
class Sample:
    probe: str
    start: float  # seconds since the window opened
    latency_s: float
    status: int | None  # None: the request raised
    outcome: str
    error: str | None = None


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path


@dataclass
class Home:
    path: Path
    key: str
    gallery_size: int
    env: dict[str, str] = field(default_factory=dict)


# --- setup -------------------------------------------------------------------------------


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBITY_")}
    env["PROBITY_HOME"] = str(home)
    return env


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(PROBITY), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"probity {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def build_home(root: Path) -> Home:
    """A fresh home with the gallery enrolled and an approved investigator's API key."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=root))
    env = clean_env(home)
    h = ("--home", str(home))
    cli(env, "init", *h)
    cli(
        env,
        *("gallery", "create", "bench", *h),
        *("--policy", "benchmark gallery of public NASA portraits"),
        *("--retention-days", "3650", "--jurisdiction", "US"),
    )
    manifest = home / "manifest.csv"
    collected = (date.today() - timedelta(days=60)).isoformat()
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "path",
                "subject",
                "source",
                "lawful_basis",
                "collected_at",
                "jurisdiction",
                "collected_by",
            ]
        )
        for name, ref in GALLERY_PHOTOS.items():
            writer.writerow(
                [
                    str(FACES / name),
                    ref,
                    f"nasa-portraits/{name}",
                    "public_task",
                    collected,
                    "US",
                    "bench",
                ]
            )
    summary = json.loads(cli(env, "enrol", "bench", "--manifest", str(manifest), *h, "--json"))
    cli(env, "org", "create", "Met", "--kind", "law_enforcement", *h)
    expires = (date.today() + timedelta(days=365)).isoformat()
    for user, role in (("sup", "supervisor"), ("inv", "investigator")):
        cli(
            env,
            *("user", "create", user, "--org", "Met", "--role", role),
            *("--training-expires", expires, *h),
        )
    cli(env, "user", "approve", "sup", *h)
    cli(env, "user", "approve", "inv", "--supervisor", "sup", *h)
    key = json.loads(cli(env, "key", "create", "inv", "--label", "bench", *h, "--json"))["key"]
    return Home(home, str(key), enrolled_count(summary), env)


def enrolled_count(summary: Any) -> int:
    """Number of templates enrolled, from ``probity enrol --manifest --json``."""
    if isinstance(summary, dict):
        for name in ("enrolled", "enrolled_count", "templates"):
            value = summary.get(name)
            if isinstance(value, int):
                return value
            if isinstance(value, list):
                return len(value)
    return -1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(home: Home, workers: int, rate_limit: int) -> Iterator[Server]:
    """``probity serve`` in its own process group; stopped (and killed if need be) on exit."""
    port = free_port()
    env = dict(home.env)
    env["PROBITY_SEARCH__PER_USER_PER_MINUTE"] = str(rate_limit)
    env["PROBITY_SEARCH__PER_ORGANISATION_PER_MINUTE"] = str(rate_limit)
    log_path = home.path / f"serve-w{workers}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(PROBITY),
                *("serve", "--home", str(home.path), "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", str(workers)),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_healthy(server)
        yield server
    finally:
        stop(process)


def wait_healthy(server: Server, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"probity serve exited {server.process.returncode}:\n{log_tail(server)}"
            )
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"probity serve not healthy after {timeout_s} s:\n{log_tail(server)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
    # The group is the server and its worker processes: kill whatever is left of it.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def log_tail(server: Server, lines: int = 30) -> str:
    try:
        return "\n".join(server.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def open_case(server: Server, key: str) -> None:
    r = httpx.post(
        f"{server.base_url}/api/v1/cases",
        json=CASE,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30.0,
    )
    if r.status_code != 201:
        raise RuntimeError(f"POST /api/v1/cases -> {r.status_code}: {r.text}")


# --- server CPU from /proc -----------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


# --- client --------------------------------------------------------------------------------


def load_probes(names: list[str]) -> list[tuple[str, bytes, str]]:
    probes = []
    for name in names:
        path = FACES / name
        mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        probes.append((name, path.read_bytes(), mime))
    return probes


def one_search(
    client: httpx.Client, url: str, key: str, probe: tuple[str, bytes, str], t0: float
) -> Sample:
    name, data, mime = probe
    start = time.perf_counter()
    try:
        r = client.post(
            url,
            headers={"Authorization": f"Bearer {key}"},
            files={"probe": (name, data, mime)},
        )
        body = r.content  # the full response
        latency = time.perf_counter() - start
    except httpx.HTTPError as exc:
        latency = time.perf_counter() - start
        return Sample(name, start - t0, latency, None, type(exc).__name__, repr(exc)[:500])
    if 200 <= r.status_code < 300:
        try:
            outcome = str(json.loads(body).get("outcome", "?"))
        except ValueError:
            outcome = "unparsable_2xx"
        return Sample(name, start - t0, latency, r.status_code, outcome)
    request_id = r.headers.get("x-request-id", "?")
    return Sample(
        name,
        start - t0,
        latency,
        r.status_code,
        f"http_{r.status_code}",
        f"request_id={request_id} body={body.decode(errors='replace')[:1000]}",
    )


def new_client(keepalive: bool) -> httpx.Client:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1 if keepalive else 0)
    return httpx.Client(timeout=REQUEST_TIMEOUT_S, limits=limits)


def drive(
    url: str,
    key: str,
    probes: list[tuple[str, bytes, str]],
    *,
    concurrency: int,
    duration_s: float | None,
    total: int | None,
    keepalive: bool,
    server_alive: Callable[[], bool],
) -> tuple[list[Sample], float]:
    """``concurrency`` threads search back to back until the deadline (or ``total``
    requests), or until the server process has exited; returns the samples and the wall
    time to the last completion. After a client exception (refused or dropped connection,
    timeout) a thread pauses 0.1 s, so that a dead server is not hammered in a tight loop."""
    counter = itertools.count()
    lock = threading.Lock()
    samples: list[Sample] = []
    t0 = time.perf_counter()
    deadline = t0 + duration_s if duration_s is not None else float("inf")

    def worker() -> None:
        with new_client(keepalive) as client:
            while time.perf_counter() < deadline and server_alive():
                i = next(counter)
                if total is not None and i >= total:
                    return
                sample = one_search(client, url, key, probes[i % len(probes)], t0)
                with lock:
                    samples.append(sample)
                if sample.status is None:
                    time.sleep(ERROR_PAUSE_S)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return samples, time.perf_counter() - t0


def percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def server_log_summary(server: Server) -> dict[str, Any]:
    """Request log lines by route and status, and the first warning/error lines."""
    statuses: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    notable: list[str] = []
    started = died = 0
    for line in server.log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            levels["non_json"] += 1
            if line.startswith("Probity API on"):  # the start-up banner
                continue
            if len(notable) < MAX_ERRORS_KEPT and line.strip():
                notable.append(line[:1000])
            continue
        level = str(entry.get("level", "?"))
        levels[level] += 1
        message = str(entry.get("message", ""))
        started += message.startswith("Started server process")
        dead = message.startswith("Child process") and message.endswith("died")
        died += dead
        if "status" in entry:
            statuses[f"{entry.get('method')} {entry.get('route')} {entry.get('status')}"] += 1
        bad = (
            dead
            or level in ("warning", "error", "critical")
            or int(entry.get("status") or 0) >= 500
        )
        if bad and len(notable) < MAX_ERRORS_KEPT:
            notable.append(line[:2000])
    return {
        "levels": dict(levels),
        "requests": dict(statuses),
        "api_processes_started": started,
        "api_processes_died": died,
        "notable_lines": notable,
    }


def run_configuration(
    root: Path,
    workers: int,
    concurrency: int,
    args: argparse.Namespace,
    probes: list[tuple[str, bytes, str]],
) -> dict[str, Any]:
    print(f"workers={workers} concurrency={concurrency}: building a home...", file=sys.stderr)
    home = build_home(root)
    with running_server(home, workers, args.rate_limit) as server:
        open_case(server, home.key)
        url = f"{server.base_url}/api/v1/cases/{CASE['reference']}/searches"

        def alive() -> bool:
            return server.process.poll() is None

        # Warm-up 1: every probe twice, sequentially. The first pass loads the models (in
        # whichever process answers); the second is the unloaded single-request latency.
        first: dict[str, float] = {}
        single: dict[str, float] = {}
        with new_client(args.keepalive) as client:
            for record in (first, single):
                for probe in probes:
                    s = one_search(client, url, home.key, probe, time.perf_counter())
                    if s.error:
                        raise RuntimeError(
                            f"sequential warm-up search with {probe[0]} failed: {s.error}\n"
                            f"server log:\n{log_tail(server)}"
                        )
                    record[probe[0]] = round(s.latency_s * 1000, 1)
        # Warm-up 2: a short concurrent burst so that every API process loads its models.
        burst = args.warmup_per_worker * workers
        warm, _ = drive(
            url,
            home.key,
            probes,
            concurrency=concurrency,
            duration_s=None,
            total=burst,
            keepalive=args.keepalive,
            server_alive=alive,
        )
        warm_errors = [s for s in warm if s.error]
        died_in_warmup = not alive()
        print(
            f"  warm-up: {2 * len(probes)} sequential + {len(warm)} concurrent searches, "
            f"{len(warm_errors)} errors"
            + (" (the server process has exited)" if died_in_warmup else "")
            + f"; timing {args.duration:g} s...",
            file=sys.stderr,
        )
        pids = descendants(server.process.pid)
        cpu_before = cpu_seconds(pids)
        client_cpu_before = time.process_time()
        load_before = os.getloadavg()
        samples, wall = drive(
            url,
            home.key,
            probes,
            concurrency=concurrency,
            duration_s=args.duration,
            total=None,
            keepalive=args.keepalive,
            server_alive=alive,
        )
        client_cpu = time.process_time() - client_cpu_before
        cpu_after = cpu_seconds(descendants(server.process.pid) if alive() else pids)
        load_after = os.getloadavg()
        exit_code = server.process.poll()
    log = server_log_summary(server)
    shutil.rmtree(home.path, ignore_errors=True)

    ok = [s.latency_s for s in samples if s.error is None]
    errors = [s for s in samples if s.error is not None]
    per_probe = {
        name: {
            "requests": sum(1 for s in samples if s.probe == name),
            "errors": sum(1 for s in errors if s.probe == name),
            "p50_ms": percentile_ms(
                [s.latency_s for s in samples if s.probe == name and s.error is None], 50
            ),
        }
        for name, _, _ in probes
    }
    # Processes started during the window (respawned workers) count from zero.
    server_cpu = {
        str(pid): round(cpu_after[pid] - cpu_before.get(pid, 0.0), 1)
        for pid in cpu_after
        if cpu_after[pid] - cpu_before.get(pid, 0.0) >= 0.05
    }
    if died_in_warmup:
        died: str | None = "warm-up"
    elif exit_code is not None:
        died = "timed window"
    else:
        died = None
    return {
        "workers": workers,
        "concurrency": concurrency,
        "duration_s": args.duration,
        "wall_s": round(wall, 2),
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(errors),
        "throughput_rps": round(len(samples) / wall, 3) if wall > 0 else None,
        "ok_throughput_rps": round(len(ok) / wall, 3) if wall > 0 else None,
        "p50_ms": percentile_ms(ok, 50),
        "p95_ms": percentile_ms(ok, 95),
        "p99_ms": percentile_ms(ok, 99),
        "max_ms": round(max(ok) * 1000, 1) if ok else None,
        "latency_note": "percentiles over successful (2xx) requests",
        "outcomes": dict(Counter(s.outcome for s in samples)),
        "first_errors": [
            {"probe": s.probe, "at_s": round(s.start, 2), "outcome": s.outcome, "detail": s.error}
            for s in errors[:MAX_ERRORS_KEPT]
        ],
        "per_probe": per_probe,
        "first_request_ms_model_loading": first,
        "unloaded_single_request_ms": single,
        "warmup_requests": 2 * len(probes) + len(warm),
        "warmup_errors": len(warm_errors),
        "first_warmup_errors": [
            {"probe": s.probe, "outcome": s.outcome, "detail": s.error}
            for s in warm_errors[:MAX_ERRORS_KEPT]
        ],
        "server_process_exited_during": died,
        "server_exit_code": exit_code,
        "server_cpu_s_by_process": server_cpu,
        "server_cpu_s_total": round(sum(server_cpu.values()), 1),
        "client_cpu_s": round(client_cpu, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "gallery_size": home.gallery_size,
        "server_log": log,
    }


def table(configs: list[dict[str, Any]]) -> str:
    head = (
        "| workers | concurrency | duration s | requests | errors | rps | p50 ms | p95 ms "
        "| p99 ms | max ms | server CPU s | client CPU s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {c['workers']} | {c['concurrency']} | {c['duration_s']:g} | {c['requests']} "
        f"| {c['errors']} | {c['throughput_rps']} | {c['p50_ms']} | {c['p95_ms']} "
        f"| {c['p99_ms']} | {c['max_ms']} | {c['server_cpu_s_total']} | {c['client_cpu_s']} |"
        for c in configs
    ]
    notes = [
        f"workers={c['workers']} concurrency={c['concurrency']}: server process exited during "
        f"the {c['server_process_exited_during']} (exit code {c['server_exit_code']})"
        for c in configs
        if c["server_process_exited_during"]
    ] + [
        f"workers={c['workers']} concurrency={c['concurrency']}: "
        f"{c['server_log']['api_processes_died']} API worker process(es) died and were "
        "restarted by uvicorn"
        for c in configs
        if c["server_log"]["api_processes_died"]
    ]
    return "\n".join([head, *rows, *(["", *notes] if notes else [])])


def parse_config(text: str) -> tuple[int, int]:
    workers, _, concurrency = text.lower().partition("x")
    try:
        return int(workers), int(concurrency)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WORKERSxCONCURRENCY, e.g. 2x4: {text}"
        ) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=60.0, help="timed window, seconds")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[4], help="client threads (list)"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="API processes (list)"
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=100_000,
        help="per-user and per-organisation searches per minute for the server",
    )
    parser.add_argument(
        "--warmup-per-worker",
        type=int,
        default=6,
        help="concurrent warm-up searches per API process, before the timed window",
    )
    parser.add_argument(
        "--keepalive",
        action="store_true",
        help="reuse one connection per client thread (default: a new connection per request)",
    )
    parser.add_argument(
        "--config",
        type=parse_config,
        nargs="+",
        metavar="WxC",
        help="explicit configurations, e.g. 1x1 1x4 2x4 (instead of --workers x --concurrency)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    plan: list[tuple[int, int]] = args.config or [
        (w, c) for w in args.workers for c in args.concurrency
    ]

    missing = [n for n in [*GALLERY_PHOTOS, *PROBES] if not (FACES / n).exists()]
    if missing:
        sys.exit(f"{FACES} lacks {missing}: the NASA photos are read from there")
    probes = load_probes(PROBES)
    root = Path(tempfile.mkdtemp(prefix="probity-bench-api-"))
    started = datetime.now(UTC)
    configs: list[dict[str, Any]] = []
    try:
        for workers, concurrency in plan:
            configs.append(run_configuration(root, workers, concurrency, args, probes))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    result: dict[str, Any] = {
        "benchmark": "api_concurrent_search",
        "date": started.isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": (
                "client and server share the machine's cores over loopback; the client is "
                "httpx with one thread per concurrent request"
            ),
        },
        "gallery": {"photos": list(GALLERY_PHOTOS), "size": configs[0]["gallery_size"]},
        "probes": PROBES,
        "probes_folder": "../shared/faces (read in place)",
        "endpoint": "POST /api/v1/cases/BENCH-1/searches (multipart field probe), 201 expected",
        "rate_limit_setting": {
            "PROBITY_SEARCH__PER_USER_PER_MINUTE": args.rate_limit,
            "PROBITY_SEARCH__PER_ORGANISATION_PER_MINUTE": args.rate_limit,
            "why": "raised for the server process so that throughput, not the limiter, is measured",
        },
        "connections": "kept alive per client thread" if args.keepalive else "new per request",
        "warmup": (
            "every probe twice sequentially (the first pass loads the models), then "
            f"{args.warmup_per_worker} x workers concurrent searches; excluded from the figures"
        ),
        "error_definition": (
            f"any non-2xx answer or client exception (timeout {REQUEST_TIMEOUT_S:g} s); after an "
            f"exception the thread pauses {ERROR_PAUSE_S:g} s; the window ends early if the "
            "server process exits"
        ),
        "acceptance": {
            "target": "0 errors in every configuration (warm-up included)",
            "met": all(c["errors"] == 0 and c["warmup_errors"] == 0 for c in configs),
        },
        "configurations": configs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(configs))
    print(f"\ngallery {result['gallery']['size']} templates; probes cycled: {', '.join(PROBES)}")
    print(f"rate limits raised to {args.rate_limit}/min; results: {args.out}")
    if not result["acceptance"]["met"]:
        sys.exit("acceptance target not met: errors (see first_errors and server_log in the JSON)")


if __name__ == "__main__":
    main()
