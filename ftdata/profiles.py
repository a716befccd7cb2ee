"""Provider profiles: the strictness each fine-tuning provider or trainer documents.

A profile only raises severities, turns rules on and sets options; the user's own
configuration and command-line options still win over it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    extend_select: tuple[str, ...] = ()
    severity: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "openai",
            "OpenAI fine-tuning: unknown message keys are rejected; tool-call arguments are JSON strings.",
            severity={"FT105": "error", "FT118": "error"},
            options={"FT116": {"arguments": "string", "require_ids": True}, "FT105": {"allow": []}},
        ),
        Profile(
            "together",
            "Together AI: strict user/assistant alternation, conversations end with the assistant, no extra keys.",
            extend_select=("FT106",),
            severity={
                "FT105": "error",
                "FT106": "error",
                "FT111": "error",
                "FT112": "error",
                "FT113": "error",
                "FT114": "error",
                "FT115": "error",
            },
            options={"FT114": {"strict_alternation": True}, "FT105": {"allow": []}},
        ),
        Profile(
            "mistral",
            "Mistral fine-tuning: at most one system message, first; conversations end with the assistant.",
            severity={"FT111": "error", "FT112": "error", "FT113": "error"},
        ),
        Profile(
            "trl",
            "TRL SFTTrainer with Hugging Face chat templates: tool-call arguments may be objects, ids optional.",
            options={
                "FT116": {"arguments": "any", "require_ids": False},
                "FT105": {"allow": ["reasoning_content", "thinking"]},
            },
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(sorted(PROFILES))})") from None
