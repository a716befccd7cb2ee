"""Audit of the planted 100k-record corpus (about 185 MB): wall time, peak memory and the
size of the HTML report, with estimated token counts, with MinHash near duplicates on top,
and with exact counts from a 32k-vocabulary BPE tokenizer trained on the corpus itself.

    python benchmarks/audit_speed.py [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import DATA, machine, measure, publish, table
from corpus import write_planted

# ChatML with generation markers and a tool role, as current instruct templates have.
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }}<|im_end|>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(corpus: Path, target: Path, vocab: int = 32_000, sample: int = 20_000) -> Path:
    """A byte-level BPE tokenizer with ``vocab`` entries trained on the first ``sample``
    records of ``corpus``, saved with a chat template (cached in ``target``)."""
    if (target / "tokenizer.json").exists():
        return target
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    def texts():
        with corpus.open(encoding="utf-8") as f:
            for _, line in zip(range(sample), f, strict=False):
                for m in json.loads(line).get("messages", []):
                    if isinstance(m.get("content"), str):
                        yield m["content"]

    model = Tokenizer(models.BPE(unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "<|im_start|>", "<|im_end|>", "<pad>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    model.train_from_iterator(texts(), trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=model, bos_token="<s>", eos_token="<|im_end|>", pad_token="<pad>")
    tok.chat_template = TEMPLATE
    tok.save_pretrained(str(target))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    corpus = DATA / "planted-100k.jsonl"
    if not corpus.exists():
        write_planted(corpus, 100_000)
    tokenizer = build_tokenizer(corpus, DATA / "tokenizer-32k")
    html, out = DATA / "audit-report.html", DATA / "audit-report.json"
    ftdata = [sys.executable, "-m", "ftdata", "audit", str(corpus), "--html", str(html), "--json", str(out), "-q"]
    runs = [
        ("default checks, estimated tokens", []),
        ("+ MinHash near duplicates (FT404), diversity (FT208)", ["--extend-select", "FT404,FT208"]),
        (
            "+ exact tokens (32k BPE, chat template), max_length 1024",
            ["--extend-select", "FT404,FT208", "--tokenizer", str(tokenizer), "--max-length", "1024"],
        ),
    ]
    rows = []
    for label, extra in runs:
        timing = measure([*ftdata, *extra], args.repeat)
        findings = len(json.loads(out.read_text())["findings"])
        rows.append(
            [
                label,
                f"{timing['seconds']:.1f}",
                f"{timing['max_rss_mb']:.0f}",
                f"{findings:,}",
                f"{html.stat().st_size / 1e3:.0f} KB",
                f"{out.stat().st_size / 1e6:.1f} MB",
            ]
        )
    text = "\n".join(
        [
            f"Audit of {corpus.name} ({corpus.stat().st_size / 1e6:.0f} MB, 100,000 records) on {machine()}, "
            f"best of {args.repeat}:",
            "",
            table(["audit", "wall s", "peak RSS MB", "findings", "HTML", "JSON"], rows),
        ]
    )
    publish(text, args.markdown, "audit", "python benchmarks/audit_speed.py")


if __name__ == "__main__":
    main()
