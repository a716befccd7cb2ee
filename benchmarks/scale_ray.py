"""Time and peak memory of lint and MinHash dedup, local and on Ray, in the same run.

    python benchmarks/scale_ray.py N [N ...] [--configs lint-local-1,lint-ray-2,...]

For each N a planted corpus (benchmarks/corpus.py) is written, then each configuration runs
in a fresh interpreter: ``lint-local-J`` (``ftdata.lint`` with J processes),
``lint-ray-W`` (a local Ray cluster of W CPUs), ``dedup-local-1`` (``ftdata dedup --method
minhash``; the local command runs in one process) and ``dedup-ray-W``; ``split-local-1`` and
``split-ray-W`` (``ftdata.split`` with its defaults, then the files written; not run unless
named in ``--configs``). Time excludes the
start of the Ray cluster (reported apart); memory is the peak of the summed RSS of the
interpreter and all its descendants (pool workers, or the Ray raylet, GCS and workers),
sampled every 0.1 s. Every Ray run's outputs are compared with the local run's bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CONFIGS = ["lint-local-1", "lint-local-2", "lint-ray-1", "lint-ray-2", "dedup-local-1", "dedup-ray-1", "dedup-ray-2"]


class PeakTree:
    """The peak of the summed RSS of this process and its descendants."""

    def __init__(self) -> None:
        import psutil

        self.root = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in [self.root, *self.root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a process that just ended
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def child(config: str, source: str, out: str) -> dict:
    """Run one configuration here and return its figures."""
    import logging

    kind, engine, count = config.split("-")
    workers = int(count)
    start_cluster = 0.0
    executor = None
    if engine == "ray":
        import ray

        from ftdata.executors.ray import RayExecutor

        t = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        start_cluster = time.perf_counter() - t
        executor = RayExecutor(parts=2 * workers)
    peak = PeakTree()
    t = time.perf_counter()
    if kind == "lint":
        import ftdata
        from ftdata.render.jsonout import render_json

        report = ftdata.lint(source, config=False, jobs=workers, executor=executor)
        with open(out, "w", encoding="utf-8") as f:
            render_json(report, f)
    elif kind == "split":
        from ftdata.curation.split import split

        options = {"engine": "ray", "blocks": 2 * workers} if executor is not None else {}
        split(source, **options).write(out)
    else:
        if executor is None:
            from ftdata.curation.dedup import dedup
        else:
            from functools import partial

            from ftdata.distributed import dedup as distributed

            dedup = partial(distributed, executor=executor, blocks=2 * workers)
        dedup(source, out, method="minhash")
    seconds = time.perf_counter() - t
    return {
        "config": config,
        "seconds": round(seconds, 2),
        "peak_mb": round(peak.stop() / 2**20),
        "cluster_start_s": round(start_cluster, 1),
    }


def _outputs(folder: Path) -> dict[str, str]:
    """The SHA-256 of each output file, which is then removed: at a million records the
    outputs of every configuration would not fit on the disk beside each other."""
    digests = {}
    for p in sorted(folder.iterdir()):
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digests[p.name] = h.hexdigest()
        p.unlink()
    return digests


def main(argv: list[str]) -> None:
    configs = CONFIGS
    if "--configs" in argv:
        k = argv.index("--configs")
        configs = argv[k + 1].split(",")
        argv = argv[:k] + argv[k + 2 :]
    sys.path.insert(0, str(Path(__file__).parent))
    import corpus

    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ftdata-scale-") as tmp:
        for n in map(int, argv):
            source = Path(tmp) / f"corpus-{n}.jsonl"
            corpus.write_planted(source, n)
            reference: dict[str, dict[str, str]] = {}
            for config in configs:
                folder = Path(tmp) / f"{n}-{config}"
                folder.mkdir()
                name = {"lint": "findings.json", "dedup": "out.jsonl", "split": ""}[config.split("-")[0]]
                run = subprocess.run(
                    [sys.executable, __file__, "--child", config, str(source), str(folder / name)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                figures = json.loads(run.stdout.strip().splitlines()[-1])
                outputs = _outputs(folder)
                kind = config.split("-")[0]
                same = reference.setdefault(kind, outputs) == outputs
                print(
                    json.dumps({"records": n, **figures, "same_bytes_as_local": same, "load": os.getloadavg()[0]}),
                    flush=True,
                )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(*sys.argv[2:5])))
    else:
        main(sys.argv[1:])
