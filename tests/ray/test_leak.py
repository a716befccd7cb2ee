"""The leakage audit between files on Ray gives the report of a local run: for 1, 2 and 4
blocks a file, after an interruption, from the CLI, with semantic leaks embedded by the
cluster's actors, and ``[tool.ftdata] engine`` chooses where ``ftdata dedup`` and
``ftdata leak`` run."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

from ftdata.curation.leakage import LeakageReport
from ftdata.curation.leakage import leakage as local_leakage
from ftdata.distributed import leakage
from ftdata.distributed.workdir import WorkDirError
from ftdata.executors.ray import RayExecutor
from ftdata.similarity.embeddings import DEFAULT_MODEL
from ftdata.similarity.static_model import STATIC_MINILM
from tests.conftest import REAL, run_cli

#: Options under which each method finds leaks between the halves of identity.json.
MIXED: dict[str, Any] = {"methods": ["exact", "minhash", "semantic"], "threshold": 0.5, "semantic_threshold": 0.8}


def _view(report: LeakageReport) -> tuple[Any, ...]:
    return (
        report.sources, report.records, report.options, report.leaks, report.findings, report.unreadable,
        report.errors,
    )  # fmt: skip


@pytest.fixture(scope="module")
def splits(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """train, eval and test files cut from the planted corpus (its planted duplicates and
    unreadable lines fall on both sides of the cuts), with edited copies of train prompts
    in eval and test."""
    folder = tmp_path_factory.mktemp("splits")
    lines = planted.read_bytes().splitlines(keepends=True)
    edited = []
    for line in lines[10:400:13]:  # near-duplicate prompts: a train prompt with one word more
        record = json.loads(line)
        record["messages"][1]["content"] += " Thanks."
        edited.append(json.dumps(record).encode() + b"\n")
    paths = [folder / f"{name}.jsonl" for name in ("train", "eval", "test")]
    parts = (lines[:900], lines[900:1300] + edited[:20], edited[20:] + lines[1300:])
    for path, part in zip(paths, parts, strict=True):
        path.write_bytes(b"".join(part))
    return paths


CASES = [{}, {"scope": "conversation", "threshold": 0.6}, {"methods": ["minhash"]}, {"methods": ["exact"]}]


@pytest.mark.parametrize("options", CASES, ids=lambda o: "-".join(map(str, o.values())) or "defaults")
def test_leakage_on_ray_is_the_local_report_for_any_number_of_blocks(
    cluster: Any, splits: list[Path], options: dict[str, Any]
) -> None:
    expected = local_leakage(splits, config=False, **options)
    methods = {k.method for k in expected.leaks}
    assert len(expected.leaks) >= 20
    assert methods == set(options.get("methods", ["exact", "minhash"]))
    assert expected.unreadable  # the unreadable lines are reported, not compared
    for blocks in (1, 2, 4):
        got = leakage(splits, executor=RayExecutor(), config=False, blocks=blocks, **options)
        assert _view(got) == _view(expected), blocks


def test_leakage_on_ray_of_real_files(cluster: Any) -> None:
    files = [REAL / "alpaca_en_demo.json", REAL / "v1_sft_demo.jsonl", REAL / "identity.json"]
    expected = local_leakage(files, config=False, threshold=0.5)
    got = leakage(files, executor=RayExecutor(), config=False, threshold=0.5, blocks=3)
    assert _view(got) == _view(expected)


class _Stop(Exception):
    pass


def _stop_at(stage: str, seen: str) -> None:
    if seen == stage:
        raise _Stop(stage)


def test_an_interrupted_leakage_audit_resumes(cluster: Any, splits: list[Path], tmp_path: Path) -> None:
    expected = local_leakage(splits, config=False)
    work = tmp_path / "work"
    run = partial(leakage, splits, executor=RayExecutor(), config=False, blocks=2, work_dir=work)
    with pytest.raises(_Stop):
        run(after_stage=partial(_stop_at, "minhash/buckets"))
    assert (work / "exact" / "groups" / "_SUCCESS").exists()
    assert not (work / "minhash" / "verify").exists()
    scanned = {p: p.stat().st_mtime_ns for p in sorted(work.glob("*/scan/*"))}
    assert _view(run()) == _view(expected)
    assert {p: p.stat().st_mtime_ns for p in sorted(work.glob("*/scan/*"))} == scanned  # not read again
    with pytest.raises(WorkDirError, match="another input or other options"):
        leakage(splits, executor=RayExecutor(), config=False, blocks=2, work_dir=work, scope="answer")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled model, never the hub."""
    pytest.importorskip("sentence_transformers", reason="the 'embed' extra is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def halves(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """identity.json cut in two JSON Lines files (every other record), so that its
    paraphrased identity questions fall on both sides, with two train records copied
    into eval and one eval prompt edited from a train prompt."""
    folder = tmp_path_factory.mktemp("halves")
    records = json.loads((REAL / "identity.json").read_text(encoding="utf-8"))
    train, held_out = records[0::2], records[1::2]
    edited = dict(train[20], instruction=train[20]["instruction"] + " Please answer briefly.")
    held_out += [train[3], train[7], edited]
    paths = [folder / "train.jsonl", folder / "eval.jsonl"]
    for path, part in zip(paths, (train, held_out), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return paths


class _KeepsItsEmbedders(RayExecutor):
    """The Ray executor, holding on to the embedders it hands the run (to read their counts)."""

    def embedder(self) -> Any:
        made = super().embedder()
        self.made = [*getattr(self, "made", []), made]
        return made


def _embedded(executor: _KeepsItsEmbedders) -> int:
    """The texts the executor's actors embedded (every distinct text once, none cached)."""
    stats = [e.stats for e in getattr(executor, "made", [])]
    assert all(sum(s.per_actor) == s.texts for s in stats)
    assert not any(s.gpus for s in stats)  # the test cluster has none: CPU actors
    return sum(s.texts for s in stats)


# The model and the mix of methods are independent: every mix with the fast model, the
# semantic pass alone with the (slow) default one.
MODEL_CASES = pytest.mark.parametrize(
    ("model", "options"),
    [(DEFAULT_MODEL, {"methods": ["semantic"]}), (STATIC_MINILM, {"methods": ["semantic"]}), (STATIC_MINILM, MIXED)],
    ids=["semantic-default", "semantic-static", "all-static"],
)


@MODEL_CASES
def test_semantic_leakage_on_ray_is_embedded_by_the_actors(
    cluster: Any, offline: None, halves: list[Path], model: str, options: dict[str, Any]
) -> None:
    expected = local_leakage(halves, config=False, model=model, **options)
    methods = [k.method for k in expected.leaks]
    assert methods.count("semantic") >= 15  # the paraphrased questions
    assert set(methods) == set(options["methods"])
    executor = _KeepsItsEmbedders()
    got = leakage(halves, executor=executor, config=False, model=model, blocks=2, **options)
    assert _view(got) == _view(expected)
    texts = _embedded(executor)
    # the distinct prompts of both files, each embedded once by an actor, none here (the
    # two train records copied into eval are texts seen already)
    assert 30 < texts <= sum(expected.records.values()) - 2


@pytest.mark.parametrize(("model", "options"), [(DEFAULT_MODEL, {"methods": ["semantic"]}), (STATIC_MINILM, MIXED)])
def test_semantic_leakage_on_ray_of_the_leak_fixtures(
    cluster: Any, offline: None, model: str, options: dict[str, Any]
) -> None:
    files = [REAL.parents[2] / "rules" / "FT603" / "bad" / name for name in ("train.jsonl", "eval.jsonl")]
    expected = local_leakage(files, config=False, model=model, **options)
    assert [k.method for k in expected.leaks] == ["semantic"]
    executor = _KeepsItsEmbedders()
    assert _view(leakage(files, executor=executor, config=False, model=model, **options)) == _view(expected)
    assert _embedded(executor) == 4  # two prompts a file, all different


def _leak_args(halves: list[Path], model: str, options: dict[str, Any]) -> list[Any]:
    args: list[Any] = ["leak", *halves, "--output-format", "json", "--model", model]
    for method in options["methods"]:
        args += ["--method", method]
    for key in ("threshold", "semantic_threshold"):
        if key in options:
            args += [f"--{key.replace('_', '-')}", str(options[key])]
    return args


@MODEL_CASES
def test_cli_semantic_leak_engine_ray_prints_the_local_bytes(
    cluster: Any, offline: None, halves: list[Path], tmp_path: Path, model: str, options: dict[str, Any]
) -> None:
    address = cluster.get_runtime_context().gcs_address
    args = _leak_args(halves, model, options)
    local = run_cli(*args, cwd=tmp_path)
    assert local.returncode == 1, local.stderr  # leaks, every record read
    report = json.loads(local.stdout)
    assert {k["method"] for k in report["leaks"]} == set(options["methods"])
    assert report["options"]["model"] == model
    remote = run_cli(*args, "--engine", "ray", "--address", address, "--blocks", "2", cwd=tmp_path)
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)


def test_an_interrupted_audit_with_semantic_leaks_resumes(
    cluster: Any, offline: None, halves: list[Path], tmp_path: Path
) -> None:
    options: dict[str, Any] = {**MIXED, "model": STATIC_MINILM}
    expected = local_leakage(halves, config=False, **options)
    work = tmp_path / "work"
    run = partial(leakage, halves, executor=RayExecutor(), config=False, blocks=2, work_dir=work)
    # stopped without semantic, resumed with it: the semantic method keeps nothing there,
    # so the exact and MinHash stages already done are used, not done again
    with pytest.raises(_Stop):
        run(methods=["exact", "minhash"], threshold=0.5, after_stage=partial(_stop_at, "minhash/buckets"))
    scanned = {p: p.stat().st_mtime_ns for p in sorted(work.glob("*/scan/*"))}
    grouped = (work / "exact" / "groups" / "_SUCCESS").stat().st_mtime_ns
    assert scanned
    assert _view(run(**options)) == _view(expected)
    assert {p: p.stat().st_mtime_ns for p in sorted(work.glob("*/scan/*"))} == scanned
    assert (work / "exact" / "groups" / "_SUCCESS").stat().st_mtime_ns == grouped
    assert (work / "minhash" / "verify" / "_SUCCESS").exists()
    assert sorted(p.name for p in work.iterdir()) == ["exact", "job.json", "minhash"]
    # and once more, everything finished: the same report, the semantic leaks found again
    assert _view(run(**options)) == _view(expected)
    # semantic alone uses no work directory at all
    alone: dict[str, Any] = {**options, "methods": ["semantic"]}
    got = leakage(halves, executor=RayExecutor(), config=False, work_dir=tmp_path / "unused", **alone)
    assert _view(got) == _view(local_leakage(halves, config=False, **alone))
    assert not (tmp_path / "unused").exists()


def test_cli_leak_engine_ray(cluster: Any, splits: list[Path], tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    args: tuple[str | Path, ...] = ("leak", *splits, "--output-format", "json", "--threshold", "0.7")
    local = run_cli(*args, cwd=tmp_path)
    remote = run_cli(*args, "--engine", "ray", "--address", address, "--blocks", "3", cwd=tmp_path)
    assert local.returncode == 2  # the unreadable records make the audit incomplete
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    assert len(json.loads(local.stdout)["leaks"]) >= 20


def _config(folder: Path, address: str) -> None:
    folder.joinpath("pyproject.toml").write_text(f'[tool.ftdata]\nengine = "ray"\naddress = "{address}"\n')


def test_dedup_and_leak_take_the_engine_from_the_configuration(cluster: Any, planted: Path, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    _config(tmp_path, address)
    source = tmp_path / "data.jsonl"
    source.write_bytes(planted.read_bytes())
    # Only a Ray run keeps its intermediates in --work-dir: the configuration chose it.
    work = tmp_path / "dedup-work"
    ray_run = run_cli(
        "dedup", source, "-o", tmp_path / "ray.jsonl", "--method", "minhash", "-q", "--work-dir", work, cwd=tmp_path
    )  # fmt: skip
    here = run_cli("dedup", source, "-o", tmp_path / "here.jsonl", "--method", "minhash", "-q", "--engine", "local")
    assert ray_run.returncode == here.returncode == 1
    assert (work / "job.json").exists()
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()
    # semantic leaks run there too, with the exact ones (the lint pass and the embeddings)
    fixtures = REAL.parents[2] / "rules" / "FT603" / "bad"
    args: tuple[str | Path, ...] = (
        "leak", fixtures / "train.jsonl", fixtures / "eval.jsonl", "--method", "exact", "--method", "semantic",
        "--model", STATIC_MINILM, "--semantic-threshold", "0.8", "--output-format", "json",
    )  # fmt: skip
    leak = run_cli(*args, "--work-dir", tmp_path / "leak-work", cwd=tmp_path)
    here = run_cli(*args, "--engine", "local", cwd=tmp_path)
    assert leak.returncode == 1, leak.stderr
    assert (tmp_path / "leak-work" / "exact" / "job.json").exists()
    assert (leak.returncode, leak.stdout) == (here.returncode, here.stdout)
    assert [k["method"] for k in json.loads(here.stdout)["leaks"]] == ["semantic"]


def test_the_engine_option_wins_over_the_configuration(cluster: Any, planted: Path, tmp_path: Path) -> None:
    _config(tmp_path, "127.0.0.1:9")  # no cluster there: a run that tried to join it would fail
    source = tmp_path / "data.jsonl"
    source.write_bytes(planted.read_bytes())
    here = run_cli("dedup", source, "-o", tmp_path / "out.jsonl", "-q", "--engine", "local", cwd=tmp_path)
    assert here.returncode == 1, here.stderr  # the unreadable records are kept, and said so
    assert (tmp_path / "out.rejected.jsonl").exists()
