"""``--address ray://HOST:PORT`` (Ray Client): a head node started by the test itself,
with a client server port, gives the bytes of a local run; skipped, with the reason,
where Ray Client cannot run (it needs grpcio, the ``ray[client]`` extra)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

from tests.conftest import REAL, run_cli

NO_CLIENT = "Ray Client (ray://) needs grpcio, which is not installed here: pip install 'ray[client]'"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def client_address() -> Iterator[str]:
    """A one-CPU head node of its own (its own ports, temp folder and token), stopped by
    signalling only the processes it started. Recent Ray versions require a token on
    every connection; the head and the clients share one the fixture writes (the token
    authentication of ``RAY_AUTH_MODE=token``), so the test depends on no file in ~/.ray."""
    pytest.importorskip("grpc", exc_type=ImportError, reason=NO_CLIENT)
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip(f"no ray command beside {sys.executable}")
    port, client = _free_port(), _free_port()
    temp = tempfile.mkdtemp(prefix="ftray", dir="/tmp")  # short: Ray's socket paths have a length limit
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)  # for the head and for every ftdata run of the tests
    args = [
        str(ray_cli), "start", "--head", "--block", f"--port={port}", f"--ray-client-server-port={client}",
        "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats",
    ]  # fmt: skip
    head = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 90
        while not _listening(client):
            if head.poll() is not None or time.monotonic() > deadline:
                detail = head.stderr.read().decode(errors="replace")[-300:] if head.poll() is not None else "timeout"
                pytest.skip(f"a local Ray head with a client server could not start here: {detail}")
            time.sleep(0.5)
        yield f"ray://127.0.0.1:{client}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the session this test started, and nothing else
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _through(address: str, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``ftdata ARGS --engine ray --address ADDRESS``. Ray Client starts a server process
    for each connection, on ports of its own choosing; one that cannot start (a port
    still held by a server of an earlier cluster on this machine, or a server that died as
    it started, which Ray's proxy reports as "Initialization failure from server") is
    Ray's failure, not ftdata's, and is tried again, twice at most."""
    command = [*args, "--engine", "ray", "--address", address]
    done = run_cli(*command, cwd=cwd)
    for _ in range(2):
        if not any(m in done.stderr for m in _SERVER_DID_NOT_START):
            break
        done = run_cli(*command, cwd=cwd)
    return done


#: What Ray Client prints when the server process of a connection could not start.
_SERVER_DID_NOT_START = ("Starting Ray client server failed", "Initialization failure from server")


def test_lint_and_split_through_ray_client_match_a_local_run(client_address: str, tmp_path: Path) -> None:
    """The file is named relative to the working folder, which the cluster's workers do
    not share: ftdata sends them its absolute path."""
    path = REAL / "v1_sft_demo.jsonl"
    local = run_cli("lint", "--isolated", "--output-format", "json", path.name, cwd=REAL)
    remote = _through(client_address, "lint", "--isolated", "--output-format", "json", path.name, cwd=REAL)
    assert (remote.returncode, remote.stdout) == (local.returncode, local.stdout), remote.stderr[-2000:]
    assert run_cli("split", path, "-o", tmp_path / "local", "--seed", "4").returncode == 0
    remote = _through(client_address, "split", path, "-o", tmp_path / "ray", "--seed", "4")
    assert remote.returncode == 0, remote.stderr[-2000:]
    for name in ("train.jsonl", "eval.jsonl", "rejected.jsonl", "manifest.json"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
