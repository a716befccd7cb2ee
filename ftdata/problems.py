"""The kinds of problem the reader and the format normaliser detect.

Each member's value is the name of the reader rule (scope ``source``) that reports it, so
a problem is bound to its rule by identity: a misspelt kind is an ``AttributeError`` at
import, not a finding that silently never appears. This module imports nothing from
ftdata, so every layer may use it.
"""

from __future__ import annotations

import enum


class Problem(str, enum.Enum):
    """A problem kind; its value is the name of the rule that reports it.

    Members compare and hash equal to their value and print as it, so code that keys on
    rule names keeps working.
    """

    # Raised by the engine when a rule fails on a record.
    RULE_ERROR = "rule-error"
    # The file and its JSON (ftdata.io, ftdata.jsonstrict).
    INVALID_JSON = "invalid-json"
    INVALID_UTF8 = "invalid-utf8"
    UTF8_BOM = "utf8-bom"
    CRLF_LINE_ENDING = "crlf-line-ending"
    BLANK_LINE = "blank-line"
    NAN_OR_INFINITY = "nan-or-infinity"
    DUPLICATE_KEY = "duplicate-key"
    LONE_SURROGATE = "lone-surrogate"
    NESTING_TOO_DEEP = "nesting-too-deep"
    LINE_TOO_LONG = "line-too-long"
    UNSAFE_INTEGER = "unsafe-integer"
    NOT_AN_OBJECT = "not-an-object"
    MISSING_FINAL_NEWLINE = "missing-final-newline"
    NOT_A_DATASET = "not-a-dataset"
    # The record's format (ftdata.formats).
    UNKNOWN_FORMAT = "unknown-format"
    WRONG_TYPE = "wrong-type"
    MISSING_MESSAGES = "missing-messages"
    MISSING_KEY = "missing-key"
    UNRECOGNISED_ROLE = "unrecognised-role"
    ROLE_WHITESPACE = "role-whitespace"
    MISSING_CONTENT = "missing-content"
    # Preference and unpaired preference records (ftdata.formats).
    PROMPT_MISMATCH = "implicit-prompt-mismatch"
    INVALID_LABEL = "invalid-kto-label"
    # Stepwise supervision records (ftdata.formats).
    STEPWISE_LENGTH_MISMATCH = "stepwise-length-mismatch"
    INVALID_STEP_LABEL = "invalid-step-label"

    # On Python 3.11+ a mixed-in enum prints as ``Problem.INVALID_JSON``; a problem kind
    # should print as the rule name it stands for, on every version.
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)

    __hash__ = str.__hash__


#: Problems the JSON reader emits (ftdata.io, ftdata.jsonstrict).
READER = frozenset(
    {
        Problem.INVALID_JSON,
        Problem.INVALID_UTF8,
        Problem.UTF8_BOM,
        Problem.CRLF_LINE_ENDING,
        Problem.BLANK_LINE,
        Problem.NAN_OR_INFINITY,
        Problem.DUPLICATE_KEY,
        Problem.LONE_SURROGATE,
        Problem.NESTING_TOO_DEEP,
        Problem.LINE_TOO_LONG,
        Problem.UNSAFE_INTEGER,
        Problem.NOT_AN_OBJECT,
        Problem.MISSING_FINAL_NEWLINE,
        Problem.NOT_A_DATASET,
    }
)

#: Problems the format normaliser emits (ftdata.formats).
NORMALISER = frozenset(
    {
        Problem.UNKNOWN_FORMAT,
        Problem.WRONG_TYPE,
        Problem.MISSING_MESSAGES,
        Problem.MISSING_KEY,
        Problem.UNRECOGNISED_ROLE,
        Problem.ROLE_WHITESPACE,
        Problem.MISSING_CONTENT,
        Problem.PROMPT_MISMATCH,
        Problem.INVALID_LABEL,
        Problem.STEPWISE_LENGTH_MISMATCH,
        Problem.INVALID_STEP_LABEL,
    }
)
