"""Shared helpers: paths, golden files, and running the real CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
#: Whole real files from LLaMA-Factory's PyPI sdist (tests/data/real/llamafactory-0.9.5/SOURCES.md).
REAL = TESTS / "data" / "real" / "llamafactory-0.9.5"
GOLDEN_DIR = TESTS / "golden"
UPDATE_GOLDEN = os.environ.get("FTDATA_UPDATE_GOLDEN") == "1"
# Each CLI test sees a fresh run, never one served from a lint cache left by another test
# or in the checkout; tests/test_cache.py runs the cache with an environment of its own.
os.environ["FTDATA_NO_CACHE"] = "1"
# Models ftdata derives on first use (minilm-static) are built once into the tests' own
# cache folder (git-ignored), never into the user's ~/.cache.
os.environ.setdefault("FTDATA_CACHE_DIR", str(TESTS / ".cache" / "ftdata"))


def check_golden(path: Path, text: str) -> None:
    """Compare ``text`` with a golden file; FTDATA_UPDATE_GOLDEN=1 rewrites it."""
    if UPDATE_GOLDEN or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE_GOLDEN:
            pytest.fail(f"golden file {path} was missing and has been written; check it and rerun")
    assert text == path.read_text(encoding="utf-8")


def run_cli(
    *args: str | os.PathLike[str], cwd: Path | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ftdata ARGS`` in a fresh interpreter and capture its output."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "ftdata", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        input=input.decode() if input is not None else None,
        timeout=300,
    )


@pytest.fixture
def sample() -> Path:
    return ROOT / "ftdata" / "samples" / "support_chat.jsonl"


TOKENIZER_DIR = TESTS / ".cache" / "tiny-tokenizer"
PLAIN_TOKENIZER_DIR = TESTS / ".cache" / "tiny-tokenizer-plain"

# A ChatML-like template that marks assistant text for assistant-only loss and refuses
# roles it does not know, as many real templates do.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unsupported role ' + m['role']) }}{% endif %}"
    "<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }}<|im_end|>{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_tokenizer(target: Path, *, generation: bool = True) -> Path:
    """Train a small byte-level BPE tokenizer on the bundled sample data and save it with a
    chat template (with or without generation markers)."""
    if (target / "tokenizer.json").exists():
        return target
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = (ROOT / "ftdata" / "samples" / "support_chat.jsonl").read_text(encoding="utf-8").splitlines()
    model = Tokenizer(models.BPE(unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    model.train_from_iterator(texts, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=model, bos_token="<s>", eos_token="<|im_end|>", unk_token="<unk>", pad_token="<pad>"
    )
    template = CHAT_TEMPLATE
    if not generation:
        template = template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    tok.chat_template = template
    target.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(target))
    return target


@pytest.fixture(scope="session", autouse=True)
def tiny_tokenizers() -> tuple[Path, Path]:
    """Both tiny tokenizers, built once (the token rules' fixtures refer to them)."""
    return build_tiny_tokenizer(TOKENIZER_DIR), build_tiny_tokenizer(PLAIN_TOKENIZER_DIR, generation=False)
