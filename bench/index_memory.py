"""Memory of ``probity serve --workers W`` with and without the index process.

What it measures: on a home filled by bench/fill_home.py (``--home``; its index is built
first, so no run pays a catch-up), for each W in ``--workers`` and each mode
(``in-process``: every API worker loads its own copy of the index, as before;
``index-process``: one index process holds it and the workers call it), it starts the real
``probity serve`` on loopback, signs in as an approved investigator with an API key
(set up with the real CLI, as bench/api_concurrent_search.py does, whose helpers it
imports), opens a case and makes searches with a real probe photo, each on a new
connection, until every API worker has answered at least one (ONNX Runtime is imported by
a worker's first face analysis, so its library in /proc/<pid>/maps says which have; at
most ``--max-searches``). uvicorn restarts a worker that misses its 5 s health check (under
load, at start), and a fresh worker must search too before the figures are read.
Then it reads, for every process of the server (uvicorn's supervisor, the workers, the
index process):

- **RSS** (``VmRSS`` of /proc/<pid>/status): pages resident in the process, shared ones
  counted in every process that maps them, so the sum overstates what the machine holds;
- **PSS** (``Pss`` of /proc/<pid>/smaps_rollup): each shared page divided among the
  processes sharing it; the sum of PSS is what the processes together cost the machine.

The gallery is synthetic (fill_home.py), so the probe photo finds no true mate: what is
measured is the memory of the search path, which is the same whatever the scores.

Usage::

    .venv/bin/python bench/fill_home.py --home /tmp/h1m --subjects 1000000 --check
    .venv/bin/python bench/index_memory.py --home /tmp/h1m [--workers 1 2 4]

Results: a markdown table on stdout and ``bench/results/index_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_concurrent_search as acs  # a sibling script, not a package

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "index_memory.json"
PROBE = "andrew_morgan_2.jpg"
SETUP_FILE = "bench-api.json"


def read_memory(pid: int) -> dict[str, Any] | None:
    """VmRSS and Pss of one process, in KiB (None if it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None

    def field(text: str, name: str) -> int:
        for line in text.splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
        return 0

    kind = "index" if "index_server" in cmdline else "other"
    if "multiprocessing" in cmdline and "spawn_main" in cmdline:
        kind = "worker"
    elif "resource_tracker" in cmdline:
        kind = "tracker"
    elif " serve " in f" {cmdline} ":
        kind = "supervisor"
    return {"rss_kib": field(status, "VmRSS"), "pss_kib": field(rollup, "Pss"), "kind": kind}


def has_searched(pid: int) -> bool:
    """Whether the process has analysed a face: ONNX Runtime is imported on the first one
    (engine/onnx_recogniser.py), so its library shows in the process's memory map."""
    try:
        return "onnxruntime" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def set_up(home: Path) -> tuple[dict[str, str], str]:
    """An organisation, an approved investigator and supervisor and an API key (once per
    home; kept in <home>/bench-api.json)."""
    env = acs.clean_env(home)
    marker = home / SETUP_FILE
    if marker.exists():
        return env, str(json.loads(marker.read_text())["key"])
    h = ("--home", str(home))
    acs.cli(env, "org", "create", "Met", "--kind", "law_enforcement", *h)
    expires = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 365 * 86400))
    for user, role in (("sup", "supervisor"), ("inv", "investigator")):
        acs.cli(
            env,
            *("user", "create", user, "--org", "Met", "--role", role),
            *("--training-expires", expires, *h),
        )
    acs.cli(env, "user", "approve", "sup", *h)
    acs.cli(env, "user", "approve", "inv", "--supervisor", "sup", *h)
    key = json.loads(acs.cli(env, "key", "create", "inv", "--label", "bench", *h, "--json"))["key"]
    marker.write_text(json.dumps({"key": key}))
    os.chmod(marker, 0o600)
    return env, str(key)


def measure(
    home: Path,
    env: dict[str, str],
    key: str,
    workers: int,
    mode: str,
    max_searches: int,
    backend: str | None = None,
) -> dict[str, Any]:
    port = acs.free_port()
    run_env = dict(env)
    if backend:
        run_env["PROBITY_INDEX_BACKEND"] = backend
    run_env["PROBITY_SEARCH__PER_USER_PER_MINUTE"] = "10000"
    run_env["PROBITY_SEARCH__PER_ORGANISATION_PER_MINUTE"] = "10000"
    flag = "--index-process" if mode == "index-process" else "--no-index-process"
    log_path = home / f"serve-mem-w{workers}-{mode}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(acs.PROBITY),
                *("serve", "--home", str(home), "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", str(workers), flag),
            ],
            env=run_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = acs.Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        acs.wait_healthy(server, timeout_s=300)
        r = httpx.post(
            f"{server.base_url}/api/v1/cases",
            json=acs.CASE,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60.0,
        )
        if r.status_code not in (201, 409):  # 409: opened by an earlier run on this home
            raise RuntimeError(f"POST /api/v1/cases -> {r.status_code}: {r.text}")
        probe = (acs.FACES / PROBE).read_bytes()
        url = f"{server.base_url}/api/v1/cases/{acs.CASE['reference']}/searches"
        searches, latencies, outcomes = 0, [], []
        while searches < max_searches:
            start = time.perf_counter()
            with httpx.Client(timeout=600.0) as client:  # a new connection: any worker
                r = client.post(
                    url,
                    headers={"Authorization": f"Bearer {key}"},
                    files={"probe": (PROBE, probe, "image/jpeg")},
                )
            latencies.append(round((time.perf_counter() - start) * 1000, 1))
            if r.status_code not in (200, 201):
                raise RuntimeError(f"search -> {r.status_code}: {r.text[:500]}")
            outcomes.append(r.json().get("outcome"))
            searches += 1
            now = {p: read_memory(p) for p in acs.descendants(process.pid)}
            workers_now = [p for p, m in now.items() if m is not None and m["kind"] == "worker"]
            if workers == 1 or (
                len(workers_now) == workers and all(has_searched(p) for p in workers_now)
            ):
                break
        final = {p: read_memory(p) for p in acs.descendants(process.pid)}
        procs = {p: m for p, m in final.items() if m is not None}
        return {
            "workers": workers,
            "mode": mode,
            "backend": backend or "the default",
            "searches": searches,
            "first_search_ms": latencies[0],
            "latencies_ms": latencies,
            "outcomes": sorted(set(map(str, outcomes))),
            "processes": procs,
            "rss_mib": round(sum(m["rss_kib"] for m in procs.values()) / 1024),
            "pss_mib": round(sum(m["pss_kib"] for m in procs.values()) / 1024),
            "index_process_pss_mib": round(
                sum(m["pss_kib"] for m in procs.values() if m["kind"] == "index") / 1024
            ),
            "worker_pss_mib": [
                round(m["pss_kib"] / 1024) for m in procs.values() if m["kind"] == "worker"
            ],
        }
    finally:
        acs.stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a home from fill_home.py")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--modes", nargs="+", default=["in-process", "index-process"],
        choices=["in-process", "index-process"],
    )  # fmt: skip
    parser.add_argument("--max-searches", type=int, default=40)
    parser.add_argument(
        "--backend", default=None, help="PROBITY_INDEX_BACKEND for the server (default: its own)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    home = args.home.resolve()
    fill = json.loads((home / "bench-fill.json").read_text())
    env, key = set_up(home)
    load_before = os.getloadavg()
    runs = []
    for workers in args.workers:
        for mode in args.modes:
            with suppress(KeyboardInterrupt):
                run = measure(home, env, key, workers, mode, args.max_searches, args.backend)
                runs.append(run)
                print(
                    f"W={workers} {mode}: RSS {run['rss_mib']} MiB, PSS {run['pss_mib']} MiB "
                    f"({run['searches']} searches)",
                    file=sys.stderr,
                    flush=True,
                )
    result = {
        "subjects": fill["subjects"],
        "templates": fill["subjects"] * fill["templates_per_subject"],
        "database": fill["database"],
        "backend": args.backend or "the default",
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{result['templates']:,} templates ({fill['database']}, {result['backend']})\n")
    print("| workers | index | processes | RSS sum MiB | PSS sum MiB | index process PSS MiB |")
    print("|---:|---|---:|---:|---:|---:|")
    for run in runs:
        print(
            f"| {run['workers']} | {run['mode']} | {len(run['processes'])} | {run['rss_mib']} "
            f"| {run['pss_mib']} | {run['index_process_pss_mib'] or '-'} |"
        )


if __name__ == "__main__":
    main()
