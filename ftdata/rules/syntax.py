"""FT0xx: the file and its JSON. Checked by the reader (:mod:`ftdata.io`); these entries
carry each check's code, severity, options and documentation."""

from __future__ import annotations

from ftdata.findings import Severity
from ftdata.io import DEFAULT_MAX_DEPTH, DEFAULT_MAX_LINE_BYTES
from ftdata.problems import Problem
from ftdata.registry import Scope, rule

ERROR = Severity.ERROR
WARNING = Severity.WARNING


@rule("FT000", Problem.RULE_ERROR.value, scope=Scope.READER, severity=ERROR)
def rule_error() -> None:
    """## What it does
    Reports a rule that raised an exception on a record instead of finishing its check.

    ## Why is this bad?
    The record was not fully checked. This is a bug in the rule (a third-party rule, or
    ftdata itself) rather than in the data: please report it with the record.
    """


@rule("FT001", Problem.INVALID_JSON.value, scope=Scope.READER, severity=ERROR)
def invalid_json() -> None:
    """## What it does
    Checks that every line of a JSONL file (every element of a JSON array file) is valid
    JSON, and reports the first syntax error of a line with its exact column.

    ## Why is this bad?
    A training loader either crashes on the line or, worse, skips it silently: the
    example is lost and nobody notices.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Hi"},]}
    ```

    Use instead:
    ```json
    {"messages": [{"role": "user", "content": "Hi"}]}
    ```

    ## Fix
    Repair the line by hand; the message says what the parser expected at the column.
    """


@rule("FT002", Problem.INVALID_UTF8.value, scope=Scope.READER, severity=ERROR)
def invalid_utf8() -> None:
    """## What it does
    Checks that every record is valid UTF-8.

    ## Why is this bad?
    JSON must be UTF-8. Bytes in another encoding (Latin-1, Windows-1252) make strict
    readers fail and lenient ones produce mojibake or U+FFFD replacement characters.

    ## Example
    A line containing the byte `0xE9` for "é" as written by a Latin-1 editor.

    ## Fix
    Re-encode the file as UTF-8 (for example `iconv -f latin1 -t utf-8`).
    """


@rule("FT003", Problem.UTF8_BOM.value, scope=Scope.READER, severity=ERROR, fixable=True)
def utf8_bom() -> None:
    """## What it does
    Checks for a UTF-8 byte order mark (`EF BB BF`) at the start of the file.

    ## Why is this bad?
    JSON forbids a BOM. `json.loads`, orjson and Arrow's JSON reader reject the first
    line, so the first example fails to load or the whole file does.

    ## Example
    A file saved by Notepad or Excel "UTF-8 with BOM".

    ## Fix
    `ftdata lint --fix` removes it.
    """


@rule("FT004", Problem.CRLF_LINE_ENDING.value, scope=Scope.READER, severity=WARNING, fixable=True)
def crlf_line_ending() -> None:
    """## What it does
    Checks for Windows (CRLF) line endings; reported once per file with the count.

    ## Why is this bad?
    Most JSON readers accept the trailing `\\r`, but line-based tools (`wc`, `split`,
    `shuf`, shell pipelines) and some loaders keep it as part of the record, and mixed
    endings make diffs noisy.

    ## Fix
    `ftdata lint --fix` rewrites the file with LF endings.
    """


@rule("FT005", Problem.BLANK_LINE.value, scope=Scope.READER, severity=WARNING, fixable=True)
def blank_line() -> None:
    """## What it does
    Checks for empty or whitespace-only lines in a JSONL file.

    ## Why is this bad?
    JSON Lines has one JSON value per line; a blank line is not JSON. Some loaders
    skip it, others (`json.loads` per line, pandas) raise on it.

    ## Fix
    `ftdata lint --fix` removes blank lines.
    """


@rule("FT006", Problem.NAN_OR_INFINITY.value, scope=Scope.READER, severity=ERROR)
def nan_or_infinity() -> None:
    """## What it does
    Checks for `NaN`, `Infinity` and `-Infinity`, and for numbers too large for a double.

    ## Why is this bad?
    They are not JSON. Python's `json` writes them by default (`allow_nan=True`) and
    reads them back, but orjson, Arrow (`datasets`) and most other languages reject the
    record. A `NaN` usually means a pandas missing value leaked into the data.

    ## Example
    ```json
    {"prompt": "Price?", "completion": "42", "score": NaN}
    ```

    ## Fix
    Replace the value with `null` or drop the field, and write with `allow_nan=False`.
    """


@rule("FT007", Problem.DUPLICATE_KEY.value, scope=Scope.READER, severity=ERROR)
def duplicate_key() -> None:
    """## What it does
    Checks for an object with the same key twice.

    ## Why is this bad?
    Parsers keep only one of the values (usually the last) without a word, so the
    other is silently lost; different tools may even keep different ones.

    ## Example
    ```json
    {"role": "user", "content": "draft", "content": "final"}
    ```

    ## Fix
    Keep one key; merge the values if both matter.
    """


@rule("FT008", Problem.LONE_SURROGATE.value, scope=Scope.READER, severity=ERROR)
def lone_surrogate() -> None:
    """## What it does
    Checks for `\\uD800`-`\\uDFFF` escapes that are not part of a surrogate pair.

    ## Why is this bad?
    Such a string cannot be encoded as UTF-8: tokenizers raise `UnicodeEncodeError`,
    orjson and Arrow reject the record. They usually come from text cut in the middle
    of an emoji.

    ## Example
    ```json
    {"prompt": "Nice \\ud83d", "completion": "Thanks!"}
    ```

    ## Fix
    Remove the half character or restore the full pair (`\\ud83d\\ude00`).
    """


@rule(
    "FT009",
    Problem.NESTING_TOO_DEEP.value,
    scope=Scope.READER,
    severity=ERROR,
    ranges={"max_depth": (1, 1_000_000)},
    reader_options={"max_depth": "max_depth"},
)
def nesting_too_deep(*, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """## What it does
    Checks that objects and arrays are nested at most `max_depth` levels deep.

    ## Why is this bad?
    Chat records are shallow (about six levels with tool calls). Deep nesting means a
    value was serialised recursively by mistake, and parsers with recursion limits fail.

    ## Options
    - `max_depth` (int, default 64): the deepest nesting allowed.
    """


@rule(
    "FT010",
    Problem.LINE_TOO_LONG.value,
    scope=Scope.READER,
    severity=ERROR,
    ranges={"max_bytes": (1, 2**40)},
    reader_options={"max_bytes": "max_line_bytes"},
)
def line_too_long(*, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
    """## What it does
    Checks that no record is longer than `max_bytes`; longer ones are skipped unread.

    ## Why is this bad?
    A multi-megabyte record is almost always an accident (a whole document pasted into
    one turn, a missing newline joining records) and it will be truncated in training.

    ## Options
    - `max_bytes` (int, default 16777216): the longest record allowed, in bytes.
    """


@rule("FT011", Problem.UNSAFE_INTEGER.value, scope=Scope.READER, severity=WARNING)
def unsafe_integer() -> None:
    """## What it does
    Checks for integers beyond ±2^53 (9007199254740992).

    ## Why is this bad?
    JavaScript and every parser that reads numbers as doubles round them, so IDs no
    longer match after a round trip; orjson turns integers beyond 64 bits into floats.

    ## Example
    ```json
    {"id": 12345678901234567890, "messages": []}
    ```

    ## Fix
    Store large identifiers as strings.
    """


@rule("FT012", Problem.NOT_AN_OBJECT.value, scope=Scope.READER, severity=ERROR)
def not_an_object() -> None:
    """## What it does
    Checks that every record is a JSON object.

    ## Why is this bad?
    Every supported format is an object with named fields; an array, string or number
    on a line is either a broken export or a different kind of file.

    ## Example
    ```json
    ["What is 2+2?", "4"]
    ```
    """


@rule("FT013", Problem.MISSING_FINAL_NEWLINE.value, scope=Scope.READER, severity=WARNING, fixable=True)
def missing_final_newline() -> None:
    """## What it does
    Checks that a JSONL file ends with a newline.

    ## Why is this bad?
    `cat a.jsonl b.jsonl` then joins the last record of one file and the first of the
    next into one invalid line, and `wc -l` under-counts records.

    ## Fix
    `ftdata lint --fix` adds the newline.
    """


NOT_A_DATASET_CODE = "FT014"


@rule(NOT_A_DATASET_CODE, Problem.NOT_A_DATASET.value, scope=Scope.READER, severity=ERROR)
def not_a_dataset() -> None:
    """## What it does
    Reports a `.json` file that holds a single JSON object (not an array of records) in
    no dataset format: a `package.json`, a `tsconfig.json`, a model config. Reported
    once for the file, instead of an unknown-format record and a too-small dataset.

    ## Why is this bad?
    The file is not training data, yet it was given to the linter: usually a glob or a
    pre-commit `files:` pattern that matches every `.json` file of a repository.

    ## Example
    A `package.json` passed to `ftdata lint`, or matched by `files: \\.json$`.

    ## Fix
    Lint only the data files: the pre-commit hook matches `.jsonl`/`.ndjson` by default;
    a JSON dataset opts in with a `files:` pattern naming it (see the README). A JSON
    dataset is an array of records (`[{...}, {...}]`) or one object per line.
    """
