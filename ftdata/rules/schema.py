"""FT1xx: the shape of a record in its format. The first group is checked by the format
normaliser (:mod:`ftdata.formats`); the rest are functions of the normalised record."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ftdata.engine.dataset import DatasetView
from ftdata.findings import Issue, PathT, Severity, plural
from ftdata.formats import (
    MESSAGE_KEYS,
    MESSAGES,
    PREFERENCE,
    PROMPT_COMPLETION,
    SHAREGPT,
    SHAREGPT_TURN_KEYS,
    TEXT,
    TOP_LEVEL_KEYS,
    UNPAIRED_PREFERENCE,
)
from ftdata.problems import Problem
from ftdata.records import Message, Record
from ftdata.registry import Scope, rule

ERROR = Severity.ERROR
WARNING = Severity.WARNING
_CONTAINER = {MESSAGES: "messages", SHAREGPT: "conversations", PROMPT_COMPLETION: "completion"}


@rule("FT100", Problem.UNKNOWN_FORMAT.value, scope=Scope.READER, severity=ERROR)
def unknown_format() -> None:
    """## What it does
    Checks that each record is in a supported format: OpenAI-style `messages`,
    `prompt`/`completion`, Alpaca `instruction`/`input`/`output`, ShareGPT
    `conversations`, language-modelling `text`, a preference pair (`chosen`/`rejected`,
    `chosen_messages`/`rejected_messages`), unpaired preference (a KTO `label`) or
    stepwise supervision (`prompt`/`completions`/`labels`). See docs/formats.md.

    The message names the nearest type, the keys of the record that would fill it and
    the `--map` that reads the file as that type. A task holding a list of examples
    (an `instruction` or `definition` with `instances: [{"input", "output"}]`) is
    reported here too: it is not one example but many.

    ## Why is this bad?
    A trainer guesses the format from the keys (TRL looks for `messages`, `prompt`,
    `completion`, `text`); a record that fits none is dropped or crashes the run.

    ## Example
    ```json
    {"question": "What is 2+2?", "answer": "4"}
    ```

    Use instead:
    ```json
    {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}
    ```

    ## Fix
    Map the file's own keys onto a type (`--map question=prompt,answer=completion`, or
    `[tool.ftdata.fields]`; a LLaMA-Factory `dataset_info.json` next to the file is read
    too), convert the record, or force a format with `--format` to see what is missing.
    """


@rule("FT101", "mixed-formats", scope=Scope.DATASET, severity=ERROR)
def mixed_formats(dataset: DatasetView) -> Iterator[Issue]:
    """## What it does
    Checks that all records of a file use one format. Records in a format other than
    the most common one are reported as one group per format.

    ## Why is this bad?
    Loaders infer one schema per file: `datasets` fails with a cast error or fills the
    missing columns with nulls, and TRL picks one format and mangles the others.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    {"prompt": "Hi", "completion": "Hello"}
    ```

    ## Fix
    Convert the minority records to the dominant format, or split the file.
    """
    counts = dataset.formats.counts()
    if len(counts) < 2:
        return
    dominant, dominant_count = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    for fmt in sorted(counts):
        if fmt == dominant:
            continue
        indices = list(dataset.formats.indices(fmt))
        verb = "is" if len(indices) == 1 else "are"
        yield Issue(
            f"{plural(len(indices), 'record')} {verb} in the {fmt} format while {dominant_count:,} are {dominant}",
            index=indices[0],
            related=tuple(indices[1:]),
        )


@rule("FT102", Problem.WRONG_TYPE.value, scope=Scope.READER, severity=ERROR)
def wrong_type() -> None:
    """## What it does
    Checks that every field has the type its format requires: `messages` a list of
    objects, `role` a string, `content` a string or a list of content parts, and so on.

    ## Why is this bad?
    Chat templates concatenate strings; a number, an object or a list where a string
    belongs raises at tokenisation time, often hours into a run.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": {"text": "Hi"}}]}
    ```

    Use instead:
    ```json
    {"messages": [{"role": "user", "content": "Hi"}]}
    ```
    """


@rule("FT103", Problem.MISSING_MESSAGES.value, scope=Scope.READER, severity=ERROR)
def missing_messages() -> None:
    """## What it does
    Checks that the list of turns (`messages`, `conversations`, or a conversational
    `prompt`/`completion`) is present and not empty.

    ## Why is this bad?
    A record without turns has nothing to train on; OpenAI rejects the file.

    ## Example
    ```json
    {"messages": []}
    ```
    """


@rule("FT104", Problem.MISSING_KEY.value, scope=Scope.READER, severity=ERROR)
def missing_key() -> None:
    """## What it does
    Checks that every required key is present: `role` and `content` in a message
    (`content` may be left out only by an assistant message with tool calls), `from` and
    `value` in a ShareGPT turn, `instruction` and `output` in Alpaca, `prompt` and
    `completion` together.

    ## Why is this bad?
    Chat templates index `message['content']` directly and raise on the record.

    ## Example
    ```json
    {"messages": [{"role": "user"}, {"role": "assistant", "content": "Hello"}]}
    ```

    ## Fix
    When another key of the record holds the missing one (torchtune's `response` for
    Alpaca's `output`), the finding ends with the `--map` that reads it.
    """


@rule("FT105", "unrecognised-key", severity=WARNING)
def unrecognised_key(
    record: Record, *, allow: tuple[str, ...] = ("reasoning_content", "thinking")
) -> list[Issue] | None:
    """## What it does
    Checks for keys a message or turn does not define. Known message keys are `role`,
    `content`, `name`, `tool_calls`, `tool_call_id`, `weight`, `loss_weight` and
    `function_call`; ShareGPT turns have `from`, `value` and `weight`. The reasoning keys
    that open-model chat templates render (`reasoning_content`: Qwen3, DeepSeek-R1;
    `thinking`: gpt-oss) are accepted unless a provider profile says otherwise (`openai`
    and `together` reject them). The turns of both sides of a preference pair are checked.

    ## Why is this bad?
    OpenAI rejects messages with other keys. Elsewhere the key is ignored, so a typo
    such as `contents` or `Role` silently drops what it held.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Hi", "timestamp": 1700000000}]}
    ```

    ## Options
    - `allow` (list of str, default ["reasoning_content", "thinking"]): further keys to
      accept; `[]` accepts none.
    """
    fmt = record.format
    if fmt not in _TURN_FORMATS:
        return None
    out = None
    for m in (*record.messages, *record.rejected):
        data = m.data
        if type(data) is not dict:
            continue
        # Preference records hold ShareGPT turns or messages, whichever their dialect uses.
        sharegpt = fmt == SHAREGPT or (fmt in (PREFERENCE, UNPAIRED_PREFERENCE) and "from" in data)
        known = SHAREGPT_TURN_KEYS if sharegpt else MESSAGE_KEYS
        if not data.keys() <= known:
            for key in data:
                if key not in known and key not in allow:
                    out = out or []
                    kind = "turn" if sharegpt else "message"
                    out.append(Issue(f"unrecognised key {key!r} in {kind}", path=(*m.path, key), key=True))
    return out


_TURN_FORMATS = frozenset({MESSAGES, PROMPT_COMPLETION, SHAREGPT, PREFERENCE, UNPAIRED_PREFERENCE})


@rule("FT106", "extra-top-level-key", severity=WARNING, default=False)
def extra_top_level_key(record: Record, *, allow: tuple[str, ...] = ()) -> list[Issue] | None:
    """## What it does
    Checks for top-level keys that are not part of the record's format (an `id`, a
    `metadata` object). The media lists (`images`, `videos`, `audios`) belong to every
    format but `text`, and `tools` to messages, ShareGPT, prompt/completion and the
    preference formats. Off by default; the `together` profile turns it on.

    ## Why is this bad?
    Most trainers ignore extra keys, and they are a fine place for metadata. Some
    providers reject any key they do not know.

    ## Example
    ```json
    {"id": "a1", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    ```

    ## Options
    - `allow` (list of str, default []): keys to accept.
    """
    fmt = record.format
    if fmt is None:
        return None
    known = TOP_LEVEL_KEYS[fmt]
    data = record.data
    if data.keys() <= known:
        return None
    return [
        Issue(f"key {key!r} is not part of the {fmt} format", path=(key,), key=True)
        for key in data
        if key not in known and key not in allow
    ] or None


@rule("FT107", Problem.UNRECOGNISED_ROLE.value, scope=Scope.READER, severity=ERROR)
def unrecognised_role() -> None:
    """## What it does
    Checks that every role is one the format knows: `system`, `developer`, `user`,
    `assistant`, `tool` (and the legacy `function`) for messages; `system`, `human`,
    `user`, `gpt`, `assistant`, `function_call`, `observation` and `tool` for ShareGPT.
    Role names are case-sensitive.

    ## Why is this bad?
    Chat templates branch on the role: an unknown one is dropped, rendered without its
    header, or raises (`Conversation roles must alternate...`). OpenAI rejects the file.

    ## Example
    ```json
    {"messages": [{"role": "User", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    ```

    Use instead:
    ```json
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    ```
    """


@rule("FT108", Problem.MISSING_CONTENT.value, scope=Scope.READER, severity=ERROR)
def missing_content() -> None:
    """## What it does
    Checks for a `content` (or ShareGPT `value`, Alpaca field) that is `null`, except on
    an assistant message that carries tool calls.

    ## Why is this bad?
    Templates render `None` as the text "None" or raise; pandas writes missing values as
    `null`, so this usually means a join or an export went wrong.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": null}, {"role": "assistant", "content": "Hello"}]}
    ```
    """


@rule("FT109", "no-assistant-message", severity=ERROR)
def no_assistant_message(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that a conversation has at least one assistant message that is trained on
    (one whose `weight` is not 0). Not checked on language-modelling `text` (no turns)
    nor on preference pairs, whose replies FT702 and FT111 check.

    ## Why is this bad?
    Supervised fine-tuning learns the assistant turns only. Without one the example
    contributes nothing, or a loss of 0; OpenAI rejects the file.

    ## Example
    ```json
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    ```
    """
    fmt = record.format or ""
    container = _CONTAINER.get(fmt)
    if fmt == UNPAIRED_PREFERENCE:
        container = "messages" if "messages" in record.data else "completion"
    elif fmt == MESSAGES and "messages" not in record.data:
        container = "conversations"  # OpenAI messages under ShareGPT's key
    if container is None or container not in record.data or not record.messages:
        return None
    seen = False
    for m in record.messages:
        if m.role == "assistant":
            if type(m.data) is not dict or _weight(m.data) != 0:
                return None
            seen = True
    if seen:
        return [Issue("every assistant message has weight 0: nothing to train on", path=(container,))]
    return [Issue("conversation has no assistant message: nothing to train on", path=(container,))]


def _weight(data: dict[str, object]) -> object:
    """A turn's training weight: ``weight`` (OpenAI, Mistral) or LLaMA-Factory's v1
    ``loss_weight``; 1 when it has neither."""
    return data.get("weight", data.get("loss_weight", 1))


@rule("FT110", "empty-content", severity=ERROR)
def empty_content(record: Record) -> list[Issue] | None:
    """## What it does
    Checks for user and assistant turns whose text is empty or only whitespace, and for
    an empty language-modelling `text`. An assistant message with tool calls may have
    empty content, and an empty Alpaca `input` is the normal way to say "no input". The
    replies of a preference pair are FT702's.

    ## Why is this bad?
    An empty assistant turn teaches the model to answer with nothing (often straight
    to the end-of-turn token); an empty user turn is a broken conversation.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Summarise this."}, {"role": "assistant", "content": "  "}]}
    ```
    """
    out = None
    for role, text, path in record.segments:
        if (not text or text.isspace()) and (role == "user" or role == "assistant"):
            if role == "assistant" and _has_tool_calls(record, path):
                continue
            if record.format == PREFERENCE and _within(record.reply, path):
                continue
            out = out or []
            what = "empty" if not text else "only whitespace"
            name = "'text'" if record.format == TEXT else f"{role} content"
            out.append(Issue(f"{name} is {what}", path=path))
    return out


def _within(messages: Sequence[Message], path: PathT) -> bool:
    return any(path[: len(m.path)] == m.path for m in messages)


def _has_tool_calls(record: Record, path: tuple[str | int, ...]) -> bool:
    return any(m.tool_calls and path[: len(m.path)] == m.path for m in record.messages)


@rule("FT111", "last-message-not-assistant", severity=WARNING)
def last_message_not_assistant(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that a conversation ends with an assistant message.

    ## Why is this bad?
    Turns after the last assistant message are never trained on: they cost tokens and
    usually mean the conversation was cut or the answer is missing. Mistral's and
    Together's fine-tuning APIs reject such records (see the profiles).

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]}
    ```
    """
    pattern = record.pattern
    if not pattern or pattern[-1] not in "UST" or ("A" not in pattern and "C" not in pattern):
        return None
    last = record.messages[-1]
    return [Issue(f"conversation ends with a {last.role} message, which is never trained on", path=last.path)]


@rule("FT112", "system-not-first", severity=WARNING)
def system_not_first(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that system messages come before every other turn.

    ## Why is this bad?
    Most chat templates only render a system message in first position (Llama, Mistral
    and Gemma templates take `messages[0]`); one in the middle is dropped, rendered as
    a user turn, or raises.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be brief."}, {"role": "assistant", "content": "Hello"}]}
    ```
    """
    if "S" not in record.pattern.lstrip("S"):
        return None
    out = None
    seen_other = False
    for i, m in enumerate(record.messages):
        if m.role == "system":
            if seen_other:
                out = out or []
                out.append(Issue(f"system message at position {i} comes after other turns", path=m.path))
        else:
            seen_other = True
    return out


@rule("FT113", "multiple-system-messages", severity=WARNING)
def multiple_system_messages(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that a conversation has at most one system message.

    ## Why is this bad?
    Templates keep the first system message and drop or misplace the others; Mistral's
    format allows only one.

    ## Example
    ```json
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    ```

    ## Fix
    Merge the system messages into one.
    """
    if record.pattern.count("S") < 2:
        return None
    systems = [m for m in record.messages if m.role == "system"]
    if len(systems) < 2:
        return None
    return [
        Issue(f"system message {k + 1} of {len(systems)}: a conversation has at most one", path=m.path)
        for k, m in enumerate(systems[1:], start=1)
    ]


@rule("FT114", "consecutive-same-role", severity=WARNING)
def consecutive_same_role(record: Record, *, strict_alternation: bool = False) -> list[Issue] | None:
    """## What it does
    Checks for two user or two assistant turns in a row. With `strict_alternation`,
    checks that after the system message the turns go user, assistant, user, ... with no
    tool turns.

    ## Why is this bad?
    Llama-2, Mistral and Gemma templates raise "Conversation roles must alternate";
    other templates merge or mislabel the turns. Two user turns in a row usually mean
    an answer was lost.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Hello"}]}
    ```

    ## Options
    - `strict_alternation` (bool, default false): require user/assistant alternation
      starting with a user turn (the `together` profile sets it).
    """
    pattern = record.pattern
    if (
        not strict_alternation
        and "UU" not in pattern
        and "AA" not in pattern
        and "AC" not in pattern
        and "S" not in pattern[1:]
    ):
        return None
    out = None
    turns = [m for m in record.messages if m.role != "system"]
    if strict_alternation:
        for i, m in enumerate(turns):
            expected = "user" if i % 2 == 0 else "assistant"
            if m.role != expected:
                out = out or []
                out.append(
                    Issue(f"turn {i + 1} after the system message is {m.role}, expected {expected}", path=m.path)
                )
                break
        return out
    prev = None
    for m in turns:
        if prev is not None and m.role == prev.role and m.role in ("user", "assistant") and not prev.tool_calls:
            out = out or []
            out.append(Issue(f"two {m.role} turns in a row", path=m.path))
        prev = m
    return out


@rule("FT115", "assistant-before-user", severity=WARNING)
def assistant_before_user(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that the first turn after the system message is a user turn. Not checked on
    language-modelling `text`, which is one trained text with no turns.

    ## Why is this bad?
    Many templates assume the conversation opens with the user and raise or mislabel
    the turns otherwise. It is legitimate for a bot that greets first, which is why this
    is a warning.

    ## Example
    ```json
    {"messages": [{"role": "assistant", "content": "How can I help?"}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    ```
    """
    first = record.pattern.lstrip("S")[:1]
    if (first != "A" and first != "C") or record.format == TEXT:
        return None
    if record.format == PREFERENCE and "U" not in record.pattern:
        return None  # two strings sharing a prefix: the prompt is inside the text
    m = next(m for m in record.messages if m.role == "assistant")
    return [Issue("the assistant speaks before any user turn", path=m.path)]


@rule("FT117", "invalid-weight", severity=ERROR)
def invalid_weight(record: Record) -> list[Issue] | None:
    """## What it does
    Checks that a `weight` is the integer 0 or 1 and appears on assistant turns only,
    and that LLaMA-Factory's v1 `loss_weight` is a number from 0 to 1, non-zero on
    assistant turns only (it is written on every turn, 0.0 on the prompt's).

    ## Why is this bad?
    OpenAI and Mistral accept exactly 0 (do not train on this turn) or 1; anything else
    is rejected, and a weight on a user turn has no meaning.

    ## Example
    ```json
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 0.5}]}
    ```
    """
    out = None
    for m in record.messages:
        data = m.data
        if type(data) is not dict:
            continue
        if "loss_weight" in data:
            issue = _loss_weight(data["loss_weight"], m.role, (*m.path, "loss_weight"))
            if issue is not None:
                out = out or []
                out.append(issue)
        if "weight" not in data:
            continue
        weight = data["weight"]
        path = (*m.path, "weight")
        if type(weight) is not int or weight not in (0, 1):
            out = out or []
            out.append(Issue(f"weight must be 0 or 1, got {_show(weight)}", path=path))
        elif m.role != "assistant":
            out = out or []
            out.append(Issue(f"weight on a {m.role} turn has no effect: only assistant turns are weighted", path=path))
    return out


def _loss_weight(weight: object, role: str, path: PathT) -> Issue | None:
    if type(weight) not in (int, float) or not 0 <= weight <= 1:  # type: ignore[operator]
        return Issue(f"loss_weight must be a number from 0 to 1, got {_show(weight)}", path=path)
    if weight and role != "assistant":
        return Issue(
            f"loss_weight {weight} on a {role} turn has no effect: only assistant turns are trained", path=path
        )
    return None


def _show(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return repr(value)


@rule("FT120", Problem.STEPWISE_LENGTH_MISMATCH.value, scope=Scope.READER, severity=ERROR)
def stepwise_length_mismatch() -> None:
    """## What it does
    Checks that a stepwise-supervision record (TRL's `prompt` + `completions` +
    `labels`) has exactly one label per step.

    ## Why is this bad?
    A process reward model is trained on each step with its label. TRL pairs them up by
    position, so a missing or extra label either fails the batch or, worse, shifts every
    label after it onto the wrong step.

    ## Example
    ```json
    {"prompt": "Is 9.11 larger than 9.8?", "completions": ["Compare the tenths: 1 < 8.", "So 9.8 is larger."], "labels": [true]}
    ```

    Use instead:
    ```json
    {"prompt": "Is 9.11 larger than 9.8?", "completions": ["Compare the tenths: 1 < 8.", "So 9.8 is larger."], "labels": [true, true]}
    ```
    """


@rule("FT121", Problem.INVALID_STEP_LABEL.value, scope=Scope.READER, severity=ERROR)
def invalid_step_label() -> None:
    """## What it does
    Checks that the `labels` of a stepwise-supervision record are a list of booleans:
    `true` for a correct step, `false` for a wrong one.

    ## Why is this bad?
    TRL casts each label to a class; `"false"` is a non-empty string and so truthy, a
    score such as `0.7` is not a label at all, and `null` fails the cast when the dataset
    is loaded.

    ## Example
    ```json
    {"prompt": "2 + 2?", "completions": ["2 + 2 = 4."], "labels": ["true"]}
    ```

    Use instead:
    ```json
    {"prompt": "2 + 2?", "completions": ["2 + 2 = 4."], "labels": [true]}
    ```
    """


@rule("FT119", Problem.ROLE_WHITESPACE.value, scope=Scope.READER, severity=ERROR, fixable=True)
def role_whitespace() -> None:
    """## What it does
    Checks for a role with leading or trailing whitespace (`" user"`, `"assistant\\n"`).

    ## Why is this bad?
    The role no longer matches in templates or provider checks, so the turn is dropped
    or the record rejected, and the whitespace is invisible when you look for it.

    ## Fix
    `ftdata lint --fix` strips it.
    """
