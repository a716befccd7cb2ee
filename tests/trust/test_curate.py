"""dedup, split and leak never lose, overwrite or mix records: refusals before reading,
sets committed whole (kill -9 at each step, a full disk), inputs that change between two
reads, unreadable records never compared, and splits leak-free by default."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.curation.dedup import dedup
from ftdata.curation.split import split, write_split
from ftdata.outputs import COMMIT_PREFIX, PAUSE_ENV, TEMP_PREFIX, InputChangedError, OutputError, recover
from tests.conftest import run_cli

PAUSE = 0.5


def _chat(q: str, a: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}).encode()


def _dataset(n: int, *, repeat: int = 1, tag: str = "") -> bytes:
    """``n`` chat records; each prompt appears ``repeat`` times (with different answers)."""
    return b"".join(_chat(f"question {k // repeat} {tag}", f"answer {k} {tag}") + b"\n" for k in range(n))


def _cmd(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "ftdata", *map(str, args)]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1", **extra}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((TEMP_PREFIX, COMMIT_PREFIX)))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _consistent(folder: Path, manifest_name: str) -> dict[str, bytes]:
    """The set described by the manifest in place; every sha256 in it must match."""
    manifest = json.loads((folder / manifest_name).read_bytes())
    assert manifest["schema"] == "ftdata.manifest/1"
    files = {}
    for entry in manifest["outputs"].values():
        data = (folder / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
        assert len(data) == entry["bytes"]
        files[entry["path"]] = data
    files[manifest_name] = (folder / manifest_name).read_bytes()
    return files


# ---------------------------------------------------------------- refusals, before reading


def test_dedup_refuses_a_derived_output_that_is_its_input(tmp_path: Path) -> None:
    (tmp_path / "f.rejected.jsonl").write_bytes(_dataset(6, repeat=2))
    before = _snapshot(tmp_path)
    done = run_cli("dedup", "f.rejected.jsonl", "-o", "f.jsonl", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "f.rejected.jsonl is the input" in done.stderr
    assert _snapshot(tmp_path) == before


def test_dedup_refuses_a_clusters_path_that_is_its_input(tmp_path: Path) -> None:
    (tmp_path / "d.clusters.json").write_bytes(b"[\n" + b",\n".join(_dataset(4).splitlines()) + b"\n]\n")
    before = _snapshot(tmp_path)
    done = run_cli("dedup", "d.clusters.json", "-o", "d.json", cwd=tmp_path)
    assert done.returncode == 2
    assert "is the input" in done.stderr
    assert _snapshot(tmp_path) == before


def test_dedup_refuses_a_hard_link_or_symlink_to_its_input(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_bytes(_dataset(4))
    os.link(tmp_path / "data.jsonl", tmp_path / "hard.jsonl")
    os.symlink(tmp_path / "data.jsonl", tmp_path / "soft.jsonl")
    before = (tmp_path / "data.jsonl").read_bytes()
    for alias in ("hard.jsonl", "soft.jsonl"):
        done = run_cli("dedup", "data.jsonl", "-o", alias, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert (tmp_path / "data.jsonl").read_bytes() == before


def test_dedup_refuses_a_missing_or_read_only_output_folder(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_bytes(_dataset(4))
    missing = run_cli("dedup", "data.jsonl", "-o", "nope/out.jsonl", cwd=tmp_path)
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        read_only = run_cli("dedup", "data.jsonl", "-o", "ro/out.jsonl", cwd=tmp_path)
        assert read_only.returncode == 2
        assert "not writable" in read_only.stderr


def test_the_api_refuses_to_write_over_its_input(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(_dataset(6, repeat=2))
    before = path.read_bytes()
    with pytest.raises(OutputError, match="is the input"):
        dedup(path, path)
    with pytest.raises(OutputError, match="is the input"):
        dedup(path, tmp_path / "data.jsonl")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_split_refuses_a_folder_holding_its_input(tmp_path: Path) -> None:
    (tmp_path / "sp").mkdir()
    (tmp_path / "sp" / "train.jsonl").write_bytes(_dataset(40))
    before = _snapshot(tmp_path / "sp")
    done = run_cli("split", "sp/train.jsonl", "-o", "sp", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "is the input" in done.stderr
    assert _snapshot(tmp_path / "sp") == before
    result = split(tmp_path / "sp" / "train.jsonl")
    with pytest.raises(OutputError):
        write_split(result, tmp_path / "sp")
    assert _snapshot(tmp_path / "sp") == before


# ---------------------------------------------------------------- sets committed whole


def _old_and_new(tmp_path: Path, command: str) -> tuple[Path, list[str], str, dict[str, bytes], dict[str, bytes]]:
    """A folder holding the old complete set of ``command``, the arguments of a run that
    writes a new one, the manifest's name, and both sets as written by clean runs."""
    (tmp_path / "old.jsonl").write_bytes(_dataset(60, repeat=2, tag="old"))
    (tmp_path / "new.jsonl").write_bytes(_dataset(80, repeat=2, tag="new"))
    out = tmp_path / "out"
    out.mkdir()
    sets = {}
    for name in ("old", "new"):
        reference = tmp_path / f"ref-{name}"
        reference.mkdir()
        for folder in (reference, out) if name == "old" else (reference,):
            if command == "dedup":
                args = ["dedup", f"{name}.jsonl", "-o", folder / "data.jsonl", "--scope", "prompt"]
            else:
                args = ["split", f"{name}.jsonl", "-o", folder, "--eval-size", "0.2"]
            done = subprocess.run(_cmd(*args), cwd=tmp_path, capture_output=True, env=_env())
            assert done.returncode == 0, done.stderr
        sets[name] = _snapshot(reference)
    if command == "dedup":
        args = ["dedup", "new.jsonl", "-o", str(out / "data.jsonl"), "--scope", "prompt"]
        manifest = "data.manifest.json"
    else:
        args = ["split", "new.jsonl", "-o", str(out), "--eval-size", "0.2"]
        manifest = "manifest.json"
    assert _snapshot(out) == sets["old"]
    return out, args, manifest, sets["old"], sets["new"]


@pytest.mark.parametrize("command", ["dedup", "split"])
@pytest.mark.parametrize("step", [0, 1, 2, 3, 4])
def test_kill_9_at_each_step_of_a_commit_leaves_the_old_set_or_the_new(tmp_path: Path, command: str, step: int) -> None:
    out, args, manifest, old, new = _old_and_new(tmp_path, command)
    # Steps: 0 before the commit starts, 1 before the old manifest goes, 2.. before each
    # rename; the writer sleeps PAUSE before each, so killing mid-pause stops it there.
    proc = subprocess.Popen(_cmd(*args), cwd=tmp_path, env=_env(**{PAUSE_ENV: str(PAUSE)}), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(n.startswith(TEMP_PREFIX) and n.endswith(manifest) for n in os.listdir(out)):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.002)
    time.sleep((step + 0.5) * PAUSE)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # A manifest in place always describes the files beside it.
    if (out / manifest).exists():
        _consistent(out, manifest)
    else:
        assert step >= 1
        assert any(n.startswith(COMMIT_PREFIX) for n in os.listdir(out))
    recover(out)
    assert _leftovers(out) == []
    after = _snapshot(out)
    assert after == (old if step == 0 else new)
    _consistent(out, manifest)
    # and a next run cleans whatever a killed run left, then writes its set
    again = subprocess.run(_cmd(*args), cwd=tmp_path, capture_output=True, env=_env())
    assert again.returncode == 0, again.stderr
    assert _snapshot(out) == new


@pytest.mark.parametrize("command", ["dedup", "split"])
def test_a_next_run_finishes_or_cleans_what_a_killed_run_left(tmp_path: Path, command: str) -> None:
    out, args, manifest, _, new = _old_and_new(tmp_path, command)
    for step in (0, 2):
        proc = subprocess.Popen(_cmd(*args), cwd=tmp_path, env=_env(**{PAUSE_ENV: str(PAUSE)}))
        while not any(n.startswith(TEMP_PREFIX) and n.endswith(manifest) for n in os.listdir(out)):
            time.sleep(0.002)
        time.sleep((step + 0.5) * PAUSE)
        proc.kill()
        proc.wait()
        assert _leftovers(out)
        again = subprocess.run(_cmd(*args), cwd=tmp_path, capture_output=True, env=_env())
        assert again.returncode == 0, again.stderr
        assert _leftovers(out) == []
        assert _snapshot(out) == new


def _limit_file_size(limit: int):  # a preexec_fn
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("command", ["dedup", "split"])
def test_a_full_disk_is_a_clean_error_that_leaves_the_old_set(tmp_path: Path, command: str) -> None:
    out, args, _, old, _ = _old_and_new(tmp_path, command)
    big = _dataset(4000, tag="x" * 40)
    (tmp_path / "new.jsonl").write_bytes(big)
    done = subprocess.run(
        _cmd(*args),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(),
        preexec_fn=_limit_file_size(len(big) // 3),
    )
    assert done.returncode == 2, done.stderr
    assert "cannot write" in done.stderr
    assert "Traceback" not in done.stderr
    assert _leftovers(out) == []
    assert _snapshot(out) == old


# ---------------------------------------------------------------- inputs read twice


def test_an_input_replaced_between_the_two_reads_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(_dataset(200, repeat=2))
    result = split(path)
    (tmp_path / "other.jsonl").write_bytes(_dataset(200, tag="other"))
    os.replace(tmp_path / "other.jsonl", path)
    with pytest.raises(InputChangedError, match="changed between two reads"):
        write_split(result, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see when the input is open")
@pytest.mark.parametrize("command", ["dedup", "split"])
def test_a_command_whose_input_is_replaced_while_it_runs_writes_nothing(tmp_path: Path, command: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(_dataset(20000, repeat=2))
    (tmp_path / "other.jsonl").write_bytes(_dataset(20000, tag="other"))
    (tmp_path / "out").mkdir()
    target = ["-o", "out/data.jsonl"] if command == "dedup" else ["-o", "out"]
    proc = subprocess.Popen(_cmd(command, "data.jsonl", *target), cwd=tmp_path, env=_env(), stderr=subprocess.PIPE)
    fd_dir = Path(f"/proc/{proc.pid}/fd")
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "the command ended before it opened its input"
        assert time.monotonic() < deadline
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                break
        except OSError:
            pass
        time.sleep(0.001)
    os.replace(tmp_path / "other.jsonl", path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert b"changed" in stderr
    assert list((tmp_path / "out").iterdir()) == []


# ---------------------------------------------------------------- unreadable records


def _unknown_layout(n: int) -> bytes:
    """Distinct tool-calling records in a layout ftdata does not read."""
    return b"".join(
        json.dumps({"dialogue": [{"speaker": "u", "utterance": f"call tool {k}"}], "calls": [{"f": k}]}).encode()
        + b"\n"
        for k in range(n)
    )


def test_dedup_keeps_unreadable_records_and_exits_1(tmp_path: Path) -> None:
    readable = [_chat("same", "same"), _chat("same", "same"), _chat("other", "other"), _chat("same", "same")]
    (tmp_path / "data.jsonl").write_bytes(_unknown_layout(50) + b"".join(x + b"\n" for x in readable))
    kept = run_cli("dedup", "data.jsonl", "-o", "out.jsonl", cwd=tmp_path)
    assert kept.returncode == 1, kept.stderr
    assert "50 records could not be read" in kept.stderr
    assert "FT100" in kept.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == _unknown_layout(50) + readable[0] + b"\n" + readable[2] + b"\n"
    rejects = [json.loads(x) for x in (tmp_path / "out.rejected.jsonl").read_bytes().splitlines()]
    assert [r["reason"] for r in rejects] == ["duplicate", "duplicate"]
    rejecting = run_cli("dedup", "data.jsonl", "-o", "rej.jsonl", "--unreadable", "reject", cwd=tmp_path)
    assert rejecting.returncode == 0, rejecting.stderr
    rejects = [json.loads(x) for x in (tmp_path / "rej.rejected.jsonl").read_bytes().splitlines()]
    assert [(r["reason"], r["rule"]) for r in rejects[:50]] == [("unreadable", "FT100")] * 50
    assert all(r["schema"] == "ftdata.rejects/1" for r in rejects)


def test_leak_is_incomplete_not_clean_when_records_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "valid.jsonl").write_bytes(_unknown_layout(20))
    (tmp_path / "copy.jsonl").write_bytes(_unknown_layout(20))
    done = run_cli("leak", "valid.jsonl", "copy.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert "No leaks." not in done.stdout
    assert "could not be read" in done.stderr
    report = ftdata.leakage([tmp_path / "valid.jsonl", tmp_path / "copy.jsonl"])
    assert not report.complete
    assert report.failed()
    assert [u.rule for u in report.unreadable[str(tmp_path / "copy.jsonl")]] == ["FT100"] * 20


_POOL = [
    _chat("How do I reset my password?", "Open Settings."),
    _chat("How do I  reset my password? ", "Open Settings."),
    _chat("Is there a dark mode?", "Yes."),
    _chat("Caf\u00e9?", "Coffee."),
]
_ARBITRARY = st.binary(min_size=1, max_size=40).filter(
    # what a JSON Lines reader cannot hold as one record's bytes: a line break, a
    # trailing CR (part of the line ending), a blank line, a leading byte order mark
    lambda b: b"\n" not in b and not b.endswith(b"\r") and not b.isspace() and not b.startswith(b"\xef\xbb\xbf")
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(st.one_of(st.sampled_from(_POOL), _ARBITRARY), min_size=1, max_size=20),
    policy=st.sampled_from(["keep", "reject"]),
    method=st.sampled_from(["exact", "minhash"]),
)
def test_kept_and_rejected_are_the_input_byte_for_byte(
    tmp_path_factory: pytest.TempPathFactory, items: list[bytes], policy: str, method: str
) -> None:
    folder = tmp_path_factory.mktemp("bytes")
    source = folder / "in.jsonl"
    source.write_bytes(b"\n".join(items) + b"\n")
    result = dedup(source, folder / "out.jsonl", unreadable=policy, method=method)
    kept = (folder / "out.jsonl").read_bytes().split(b"\n")[:-1]
    rejects = [json.loads(x) for x in (folder / "out.rejected.jsonl").read_bytes().splitlines()]
    rebuilt: dict[int, bytes] = dict(zip(result.kept, kept, strict=True))
    for r in rejects:
        rebuilt[r["index"]] = r["raw"].encode() if "raw" in r else base64.b64decode(r["raw_base64"])
    assert [rebuilt[i] for i in range(len(items))] == items
    valid = {i for i, x in enumerate(items) if x in _POOL}
    for r in rejects:
        if r["reason"] == "duplicate":
            assert r["index"] in valid
            assert r["representative"] in valid
        else:
            assert policy == "reject"
            assert r["index"] not in valid
    assert {u.index for u in result.unreadable} == set(range(len(items))) - valid


# ---------------------------------------------------------------- leak-free by default


def test_split_groups_by_prompt_by_default_and_audits_its_outputs(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_bytes(_dataset(270, repeat=3))
    grouped = run_cli("split", "data.jsonl", "-o", "grouped", cwd=tmp_path)
    assert grouped.returncode == 0, grouped.stderr
    assert json.loads((tmp_path / "grouped" / "manifest.json").read_text())["leakage"]["pairs"] == 0
    assert run_cli("leak", "grouped/train.jsonl", "grouped/eval.jsonl", cwd=tmp_path).returncode == 0
    loose = run_cli("split", "data.jsonl", "-o", "loose", "--group-by", "none", cwd=tmp_path)
    assert "eval may share prompts with train" in loose.stderr
    assert loose.returncode == 1, loose.stderr
    assert "leak: the same prompt as loose/train.jsonl" in loose.stderr
    manifest = json.loads((tmp_path / "loose" / "manifest.json").read_text())
    assert manifest["leakage"]["pairs"] > 0
    assert _leftovers(tmp_path / "loose") == []


# ---------------------------------------------------------------- leak is lint with FT601-FT603


def test_leak_and_lint_agree_on_every_leaked_record(tmp_path: Path) -> None:
    topic = "about the billing page of the account settings where the invoices are listed each month"
    train = [_chat(f"train question number {k} {topic}", f"answer {k}") for k in range(30)]
    fresh = [_chat(f"an eval question never seen {k} here", f"reply {k}") for k in range(6)]
    # Exact repeats (one repeated twice in train), and two near repeats of train prompts.
    near = [
        _chat(f"train question number 4 {topic} today", "other"),
        _chat(f"train question number 9 {topic} please", "other"),
    ]
    held = [fresh[0], train[3], fresh[1], train[7], near[0], fresh[2], train[3], near[1], fresh[3]]
    (tmp_path / "train.jsonl").write_bytes(b"\n".join([*train, train[7]]) + b"\n")
    (tmp_path / "eval.jsonl").write_bytes(b"\n".join(held) + b"\n")

    for codes, methods in (("FT601", ["exact"]), ("FT601,FT602", ["exact", "minhash"])):
        flags = [a for m in methods for a in ("--method", m)]
        leak = run_cli("leak", "train.jsonl", "eval.jsonl", *flags, "--output-format", "json", cwd=tmp_path)
        assert leak.returncode == 1, leak.stderr
        leaks = json.loads(leak.stdout)["leaks"]
        lint = run_cli("lint", "train.jsonl", "eval.jsonl", "--select", codes, "--output-format", "json", cwd=tmp_path)
        found = [f for f in json.loads(lint.stdout) if f["code"] in codes.split(",")]
        by_record: dict[int, dict] = {}
        for f in sorted(found, key=lambda f: f["code"]):
            by_record.setdefault(f["index"], f)
        assert [(k["b"]["index"], k["rule"]) for k in leaks] == [(i, by_record[i]["code"]) for i in sorted(by_record)]
        for k in leaks:
            f = by_record[k["b"]["index"]]
            assert (f["source"], f["line"]) == (k["b"]["source"], k["b"]["line"])
            assert f["other"] == k["a"], "both name the same earlier record"
            assert f.get("score", 1.0) == k["similarity"]
        exact = {k["b"]["index"] for k in leaks if k["method"] == "exact"}
        assert exact == {1, 3, 6}, "each leaked record once, whatever its number of matches"
        assert {k["b"]["index"]: k["a"]["line"] for k in leaks if k["method"] == "exact"} == {1: 4, 3: 8, 6: 4}
    assert {k["b"]["index"] for k in leaks if k["method"] == "minhash"} == {4, 7}
    assert all(0.8 <= k["similarity"] < 1.0 for k in leaks if k["method"] == "minhash")
    report = ftdata.leakage([tmp_path / "train.jsonl", tmp_path / "eval.jsonl"])
    assert len(report) == len(report.findings) == 5
    assert report.findings[0].other is not None
    assert report.findings[0].other.source == str(tmp_path / "train.jsonl")


def test_leak_options_come_from_the_rules_and_the_splits_table(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(_chat("a shared question about refunds", "one") + b"\n")
    (tmp_path / "b.jsonl").write_bytes(_chat("a different question about refunds", "one") + b"\n")
    assert run_cli("leak", "a.jsonl", "b.jsonl", cwd=tmp_path).returncode == 0
    by_answer = run_cli("leak", "a.jsonl", "b.jsonl", "--scope", "answer", "--method", "exact", cwd=tmp_path)
    assert by_answer.returncode == 1, "the answers are the same"
    (tmp_path / "pyproject.toml").write_text('[tool.ftdata.splits]\nscope = "answer"\nmethods = ["exact"]\n')
    configured = run_cli("leak", "a.jsonl", "b.jsonl", "--output-format", "json", cwd=tmp_path)
    assert configured.returncode == 1
    assert json.loads(configured.stdout)["options"]["scope"] == "answer"
    flag_wins = run_cli("leak", "a.jsonl", "b.jsonl", "--scope", "prompt", cwd=tmp_path)
    assert flag_wins.returncode == 0
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ftdata]\nignore = ["FT601"]\n[tool.ftdata.splits]\nscope = "answer"\n'
    )
    assert run_cli("leak", "a.jsonl", "b.jsonl", "--method", "exact", cwd=tmp_path).returncode == 1, (
        "the configuration's selection cannot switch the leak rules off"
    )


def test_leak_findings_keep_score_and_other_in_the_dataframe(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    held = tmp_path / "eval.jsonl"
    record = {
        "messages": [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
        ]
    }
    train.write_text(json.dumps(record) + "\n", encoding="utf-8")
    held.write_text(json.dumps(record) + "\n", encoding="utf-8")
    report = ftdata.lint([train, held], select=["FT601"], config=False)
    frame = report.to_pandas()
    leaked = frame[frame["code"] == "FT601"]
    assert len(leaked) == 1
    other = leaked.iloc[0]["other"]
    assert other["index"] == 0
    assert Path(other["source"]).name in {"train.jsonl", "eval.jsonl"}
