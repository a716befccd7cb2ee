"""``ftdata.curate`` in memory: every record kept or rejected with its reasons, never both,
never neither; the kept records in the source's own type; a duplicate group always keeps
a record that passed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftdata
from ftdata.curation.memory import CurateResult, Reason, Rejected


def _chat(question: str, answer: str = "an answer that says something") -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


VALID = st.builds(_chat, st.sampled_from([f"question number {k} about the topic" for k in range(6)]))
BROKEN = st.sampled_from(
    [
        "a string, not an object",
        17,
        None,
        [1, 2],
        {"unexpected": "layout"},
        {"messages": "not a list"},
        {"messages": [{"role": "user", "content": "no reply to this one"}]},
        {"messages": [{"role": " user", "content": "question number 1 about the topic"}]},
        {"prompt": "", "completion": ""},
    ]
)


def _partition(source: list[Any], result: CurateResult) -> None:
    kept = result.kept_indices
    rejected = [r.index for r in result.rejected]
    assert sorted(kept + rejected) == list(range(len(source))), "every record once, nothing lost"
    assert kept == sorted(kept)
    assert rejected == sorted(rejected)
    assert result.kept == [source[i] for i in kept]
    for r in result.rejected:
        assert r.record == source[r.index]
        assert r.reasons, f"record {r.index} rejected without a reason"
        assert all(isinstance(reason, Reason) and reason.message for reason in r.reasons)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(VALID, BROKEN), max_size=14), st.sampled_from(["exact", "minhash", None]))
def test_kept_and_rejected_partition_the_source(source: list[Any], dedup: str | None) -> None:
    result = ftdata.curate(source, dedup=dedup)
    _partition(source, result)
    for r in result.rejected:
        # A record kept is one ftdata could read; nothing unreadable slips through.
        assert r.index not in result.kept_indices
    readable = [i for i in result.kept_indices if type(source[i]) is dict]
    assert readable == result.kept_indices, "a non-object is never kept"
    if dedup == "exact":
        texts = [repr(source[i]) for i in result.kept_indices]
        assert len(texts) == len(set(texts)), "exact duplicates are rejected, one copy kept"


def test_reasons_name_the_rule_and_unreadable_records_are_rejected() -> None:
    source = [
        _chat("how do I reset my password"),
        "not an object",
        {"layout": "unknown"},
        _chat("how do I reset my password"),
    ]
    result = ftdata.curate(source)
    assert result.kept_indices == [0]
    by_index = {r.index: r for r in result.rejected}
    assert set(by_index) == {1, 2, 3}
    assert by_index[1].reasons[0].code == "FT012"
    assert by_index[2].reasons[0].code == "FT100"
    assert by_index[3].reasons == (Reason("FT401", "duplicate of record 0; 2 copies in this group"),)
    index, record, reasons = by_index[3]  # a plain tuple for pipelines
    assert (index, record, reasons) == (3, source[3], by_index[3].reasons)
    assert isinstance(by_index[3], Rejected)


def test_a_duplicate_group_keeps_a_record_that_passed() -> None:
    broken = {
        "messages": [{"role": " user", "content": "what is two plus two"}, {"role": "assistant", "content": "four"}]
    }
    good = _chat("what is two plus two", "four")
    result = ftdata.curate([broken, good, good])
    assert result.kept_indices == [1], "the error record is dropped and the first good copy kept"
    assert [r.index for r in result.rejected] == [0, 2]
    assert result.rejected[0].reasons[0].code == "FT119"
    assert result.rejected[1].reasons[0].code == "FT401"
    assert "record 1" in result.rejected[1].reasons[0].message, "messages name the source's indices"


def test_drop_takes_severities_and_rule_codes() -> None:
    source = [_chat("a question long enough"), _chat("a question long enough")]
    assert ftdata.curate(source, dedup=None).kept_indices == [0, 1]
    assert ftdata.curate(source, dedup=None, drop=("warning",)).kept_indices == [0]
    assert ftdata.curate(source, dedup=None, drop=["duplicate-record"]).kept_indices == [0]
    with pytest.raises(ValueError, match="unknown rule"):
        ftdata.curate(source, drop=("FT9999",))
    with pytest.raises(ValueError, match="unknown dedup method"):
        ftdata.curate(source, dedup="fuzzy")


def test_a_dataframe_stays_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        [
            {"prompt": "what is the capital of France", "completion": "Paris"},
            {"prompt": "what is the capital of France", "completion": "Paris"},
            {"prompt": "name a prime number", "completion": None},
            {"prompt": "name an even number", "completion": "four"},
        ],
        index=[10, 11, 12, 13],
    )
    result = ftdata.curate(frame)
    assert isinstance(result.kept, pd.DataFrame)
    assert list(result.kept.index) == [10, 13]
    assert list(result.kept.columns) == ["prompt", "completion"]
    assert [r.index for r in result.rejected] == [1, 2]
    assert result.rejected[1].record == {"prompt": "name a prime number", "completion": None}


def test_a_dataset_stays_a_dataset() -> None:
    datasets = pytest.importorskip("datasets")
    rows = [_chat("first question here"), _chat("first question here"), _chat("second question here")]
    result = ftdata.curate(datasets.Dataset.from_list(rows))
    assert isinstance(result.kept, datasets.Dataset)
    assert result.kept.to_list() == [rows[0], rows[2]]
    assert [r.index for r in result.rejected] == [1]
