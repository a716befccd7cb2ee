"""``ftdata dedup``, ``ftdata split`` and ``ftdata leak``: commands that write or check curated data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ftdata.cli import UsageFailure, choice_option, input_format_option, main, progress_bar
from ftdata.cli.curate_options import engine_for, ray_options
from ftdata.findings import plural
from ftdata.render.text import visible, visible_path


@main.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the kept records (same container as the input).",
)
@choice_option("--method", ["exact", "minhash", "semantic"], help="How records are compared.")
@choice_option("--keep", ["first", "longest"], help="Which record of a cluster to keep.")
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Similarity from which records are duplicates (minhash: Jaccard, default 0.8; semantic: cosine, default 0.95).",
)
@choice_option("--scope", ["conversation", "prompt", "answer"], help="What to compare.")
@click.option("--casefold", is_flag=True, help="exact: treat text that differs only in case as equal.")
@choice_option("--shingle", ["word", "char"], help="minhash: word or character n-grams.")
@click.option(
    "-n", "--ngram", type=click.IntRange(1, 64), default=5, show_default=True, help="minhash: the n of the n-grams."
)
@click.option(
    "--num-perm", type=click.IntRange(8, 1024), default=128, show_default=True, help="minhash: number of permutations."
)
@click.option(
    "--answer-threshold", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
    help="minhash, scope conversation: least Jaccard of the replies of a pair (0: off; see FT404).",
)  # fmt: skip
@click.option(
    "--model",
    default="sentence-transformers/all-MiniLM-L6-v2",
    show_default=True,
    help="semantic: a sentence-transformers model name or path, or minilm-static (fast; see FT405).",
)
@choice_option(
    "--unreadable",
    ["keep", "reject"],
    help="What to do with records that cannot be read (never compared): keep them unchanged, or reject them.",
)
@input_format_option
@ray_options("exact and minhash dedup")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def dedup(
    source: Path,
    output: Path,
    method: str,
    keep: str,
    threshold: float | None,
    scope: str,
    casefold: bool,
    shingle: str,
    ngram: int,
    num_perm: int,
    answer_threshold: float,
    model: str,
    unreadable: str,
    input_format: str | None,
    engine: str | None,
    address: str | None,
    work_dir: Path | None,
    blocks: int | None,
    quiet: bool,
) -> None:
    """Keep one record per cluster of duplicates.

    Kept records go to OUTPUT byte for byte; duplicates go to OUTPUT's name with
    .rejected.jsonl (with their cluster, representative and similarity), the clusters to
    .clusters.json and a manifest to .manifest.json, committed together. Records that
    cannot be read are never compared: they are kept unchanged (exit status 1) or, with
    --unreadable reject, rejected with the rule that explains why. Nothing is lost.
    """
    from ftdata.config import ConfigError
    from ftdata.curation.dedup import dedup as run

    options: dict[str, Any] = dict(method=method, keep=keep, threshold=threshold, scope=scope, casefold=casefold)
    options.update(shingle=shingle, n=ngram, num_perm=num_perm, answer_threshold=answer_threshold)
    options.update(unreadable=unreadable, format=read_as(source, input_format))
    engine, address = engine_for(engine, address, True, source.parent)
    with progress_bar(quiet or engine == "ray") as progress:
        try:
            if engine == "ray":
                from ftdata.distributed import on_cluster

                extra = {"model": model} if method == "semantic" else {}
                result = on_cluster(
                    source, output, address=address, work_dir=work_dir, blocks=blocks, **extra, **options
                )
            else:
                result = run(source, output, model=model, progress=progress, **options)
        except (OSError, ValueError, ImportError, ConfigError) as e:
            raise UsageFailure(str(e)) from None
    if not quiet:
        rejected = f"{plural(result.duplicates, 'duplicate')} in {plural(len(result.clusters), 'cluster')}"
        if result.invalid:
            rejected += f" and {plural(result.invalid, 'unreadable record')}"
        click.echo(
            f"Kept {len(result.kept):,} of {plural(result.records, 'record')} in {output}; "
            f"{rejected} in {result.outputs['rejected']}; clusters in {result.outputs['clusters']}; "
            f"manifest in {result.outputs['manifest']}.",
            err=True,
        )
    if not result.complete:
        click.echo(f"warning: {_unreadable_summary(result.unreadable, output)}", err=True)
        sys.exit(1)


def _unreadable_summary(unread: list[Any], where: Path) -> str:
    """How many records could not be read, where, and the commonest cause."""
    from collections import Counter

    lines = [str(u.line) if u.line is not None else f"record {u.index}" for u in unread[:5]]
    more = f" and {len(unread) - 5:,} more" if len(unread) > 5 else ""
    (rule, detail), n = Counter((u.rule, u.detail) for u in unread).most_common(1)[0]
    cause = f"{rule + ': ' if rule else ''}{detail}"
    return (
        f"{plural(len(unread), 'record')} could not be read, so were not compared, and are kept unchanged in "
        f"{where} (line {', '.join(lines)}{more}); most common cause ({n:,}): {cause}. "
        "Use --unreadable reject to send them to the rejects."
    )


@main.command("split")
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for train/eval(/test) files, rejected.jsonl and manifest.json.",
)
@click.option(
    "--eval-size",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.15,
    show_default=True,
    help="Share of records held out for evaluation.",
)
@click.option(
    "--test-size",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.0,
    show_default=True,
    help="Share of records held out for a final test.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the placement order.")
@click.option("--stratify-by", help="Field path (metadata.task), 'system' or 'format' to stratify on.")
@click.option(
    "--group-by",
    multiple=True,
    help="Keep together: a field path, 'prompt' (the default), 'duplicates', 'near-duplicates' or "
    "'semantic' (repeatable); 'none' keeps nothing together.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Similarity for near-duplicates (Jaccard, default 0.8) and semantic (cosine, default 0.9) groups.",
)
@choice_option("--scope", ["prompt", "answer", "conversation"], help="What near and semantic duplicates compare.")
@click.option(
    "--min-per-stratum",
    type=click.IntRange(min=1),
    help="Smaller strata go to train whole (default: one record per split).",
)
@click.option(
    "--bins",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Quantile bins for a numeric stratification field.",
)
@input_format_option
@ray_options("the record reads", work_dir=False)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but warnings.")
def split_command(
    source: Path,
    output: Path,
    eval_size: float,
    test_size: float,
    seed: int,
    stratify_by: str | None,
    group_by: tuple[str, ...],
    threshold: float | None,
    scope: str,
    min_per_stratum: int | None,
    bins: int,
    input_format: str | None,
    engine: str | None,
    address: str | None,
    blocks: int | None,
    quiet: bool,
) -> None:
    """Split a dataset into train/eval(/test) files that share no group.

    Groups (identical prompts by default, a field such as a conversation id, duplicates,
    near duplicates) never straddle splits; sizes are met in records, within each
    stratum; the same input, options and seed give the same bytes. Records are copied
    byte for byte, and the files and manifest.json are committed together. The written
    files are then audited for exact prompt leaks: exit status 1 if any.
    """
    from ftdata.config import ConfigError
    from ftdata.curation.split import check_split_outputs, split, write_split

    sizes = {"train": 1.0 - eval_size - test_size, "eval": eval_size}
    if test_size:
        sizes["test"] = test_size
    if sizes["train"] <= 0:
        raise UsageFailure("--eval-size and --test-size leave nothing to train on")
    if "none" in group_by and len(group_by) > 1:
        raise UsageFailure("--group-by none cannot be combined with another grouping")
    grouping: Any = list(group_by) if len(group_by) > 1 else (group_by[0] if group_by else "prompt")
    engine, address = engine_for(engine, address, True, source.parent)
    try:
        check_split_outputs(source, sizes, output)
        result = split(
            source, sizes=sizes, seed=seed, stratify_by=stratify_by, group_by=grouping,
            min_per_stratum=min_per_stratum, bins=bins, threshold=threshold, scope=scope,
            format=read_as(source, input_format), engine=engine, address=address, blocks=blocks,
        )  # fmt: skip
        paths = write_split(result, output)
    except (OSError, ValueError, ImportError, ConfigError) as e:
        raise UsageFailure(str(e)) from None
    for warning in result.warnings:
        click.echo(f"warning: {visible(warning)}", err=True)
    if not quiet:
        counts = result.counts
        total = sum(counts.values())
        parts = ", ".join(
            f"{name} {n:,} ({n / (total or 1):.1%}, target {result.targets[name]:.0%})" for name, n in counts.items()
        )
        click.echo(
            f"Split {total:,} records in {result.groups:,} groups: {parts}; {len(result.rejected):,} unreadable. Manifest: {paths['manifest']}",
            err=True,
        )
    for k in result.leaks:
        click.echo(
            f"{visible_path(k.source_b)}:{k.line_b}: leak: the same prompt as {visible_path(k.source_a)}:{k.line_a}",
            err=True,
        )
    if result.rejected:
        click.echo(
            f"warning: {len(result.rejected):,} records could not be read and are in {paths['rejected']} "
            "with the reason (not in any split)",
            err=True,
        )
    if result.leaks:
        click.echo(
            f"warning: {len(result.leaks):,} eval/test records share their prompt with an earlier split", err=True
        )
    if result.leaks or result.rejected:
        sys.exit(1)


@main.command("leak")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--method",
    "methods",
    multiple=True,
    type=click.Choice(["exact", "minhash", "semantic"]),
    help="Ways to match records (repeatable; default: exact and minhash).",
)
@click.option(
    "--scope", type=click.Choice(["prompt", "answer", "conversation"]), help="What to compare (default: prompt)."
)
@click.option(
    "--threshold", type=click.FloatRange(0.0, 1.0, min_open=True), help="MinHash Jaccard threshold (default 0.8)."
)
@click.option(
    "--semantic-threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Embedding cosine threshold (default 0.9).",
)
@click.option("--model", help="Embedding model for --method semantic.")
@choice_option("--output-format", ["concise", "json"], help="How to print the pairs.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Configuration file with [tool.ftdata.splits] (default: searched from here).",
)
@input_format_option
@ray_options("the leak checks")
@click.option("-q", "--quiet", is_flag=True, help="Print the pairs only.")
def leak_command(
    files: tuple[Path, ...],
    methods: tuple[str, ...],
    scope: str | None,
    threshold: float | None,
    semantic_threshold: float | None,
    model: str | None,
    output_format: str,
    config_file: Path | None,
    input_format: str | None,
    engine: str | None,
    address: str | None,
    work_dir: Path | None,
    blocks: int | None,
    quiet: bool,
) -> None:
    """Find records of one file that reappear in another (eval questions seen in training).

    FILES are the splits, train first. Without FILES, the files and options come from
    [tool.ftdata.splits] in the configuration. Exit status 1 when anything leaks, 2 when
    records could not be read (the audit is then incomplete).
    """
    from ftdata.config import ConfigError, find_config, load_config
    from ftdata.curation.leakage import leakage

    try:
        found = config_file or find_config(Path.cwd())
        splits = dict(load_config(found).splits) if found else {}
    except ConfigError as e:
        raise UsageFailure(str(e)) from None
    paths = list(files) or [_relative(Path(f)) for f in splits.get("files", [])]
    if len(paths) < 2:
        raise UsageFailure("give at least two files, or list them in [tool.ftdata.splits] files")
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageFailure(f"no such file: {missing[0]}")
    options: dict[str, Any] = dict(methods=methods or None, scope=scope, threshold=threshold, config=found or False)
    options.update(format=read_as(paths[0], input_format), semantic_threshold=semantic_threshold, model=model)
    engine, address = engine_for(engine, address, found or False, paths[0].parent)
    try:
        if engine == "ray":
            from ftdata.distributed import leak_on_cluster

            report = leak_on_cluster(paths, address=address, work_dir=work_dir, blocks=blocks, **options)
        else:
            report = leakage(paths, **options)
    except (OSError, ValueError, ImportError, ConfigError) as e:
        raise UsageFailure(str(e)) from None
    if output_format == "json":
        from dataclasses import asdict

        import orjson

        unreadable = {s: [asdict(u) for u in items] for s, items in report.unreadable.items()}
        body: dict[str, Any] = {"sources": report.sources, "records": report.records, "options": report.options}
        body.update(complete=report.complete, unreadable=unreadable, errors=report.errors, leaks=report.to_dicts())
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    else:
        for k in report.leaks:
            click.echo(
                f"{visible_path(k.source_b)}:{k.line_b}: {k.method} {k.similarity:.2f} {visible_path(k.source_a)}:{k.line_a}"
            )
        if not quiet:
            by_file = ", ".join(
                f"{len(report.leaked_records(s)):,} of {report.records[s]:,} in {s}" for s in report.sources[1:]
            )
            if report.leaks:
                click.echo(f"{plural(len(report), 'leaked record')} ({by_file}).")
            elif report.complete:
                click.echo("No leaks.")
    if not report.complete:
        for name, items in report.unreadable.items():
            click.echo(f"ftdata: error: {_unreadable_records(items, name)}", err=True)
        for message in report.errors:
            click.echo(f"ftdata: error: {visible(message)}; the leakage audit is incomplete", err=True)
        sys.exit(2)
    sys.exit(1 if report.failed() else 0)


def _unreadable_records(items: list[Any], name: str) -> str:
    from collections import Counter

    (rule, detail), n = Counter((u.rule, u.detail) for u in items).most_common(1)[0]
    first = items[0].line if items[0].line is not None else items[0].index
    return (
        f"{plural(len(items), 'record')} of {name} could not be read (first at line {first}; most common cause, "
        f"{n:,}: {rule + ': ' if rule else ''}{detail}); the leakage audit is incomplete"
    )


def read_as(source: Path, spec: str | None) -> str | None:
    """The format spec to read ``source`` with: ``[tool.ftdata.fields]`` of its
    configuration, then the entry of a LLaMA-Factory dataset_info.json for it, then what
    --input-format/--map/--dataset-info say (each winning over the one before)."""
    from ftdata.api import settings_for
    from ftdata.config import ConfigError
    from ftdata.formats.dataset_info import DatasetInfoError, spec_for
    from ftdata.formats.fields import compose, parse_spec

    try:
        settings = settings_for(True, source.parent)
        given = parse_spec(spec)
        own = given.fields.as_dict() if given.fields else {}
        base = compose(given.format or settings.format, {**settings.fields, **own}, given.dataset_info)
        info = Path(settings.dataset_info) if settings.dataset_info and not given.dataset_info else None
        return spec_for(source, base, dataset_info=info)
    except (ConfigError, DatasetInfoError) as e:
        raise UsageFailure(str(e)) from None


def _relative(path: Path) -> Path:
    """``path`` relative to the working folder when it lies below it (shorter to read)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
