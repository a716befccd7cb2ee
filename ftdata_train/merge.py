"""``merge(adapter, output)``: fold a LoRA adapter into its base model, in 16-bit.

The base is reloaded from ``adapter_config.json``'s ``base_model_name_or_path`` in the
requested float dtype, never 4-bit: merging into a quantised base rounds the update into the
4-bit blocks and loses accuracy, so a QLoRA adapter is merged into a 16-bit copy of its base.
The merged model is written as safetensors with the tokenizer and ``merge-manifest.json``
(sha256 of every adapter file, the base, the dtype, library versions) into a temporary folder
beside ``output`` and renamed into place at the end: ``output`` is either complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MANIFEST_FILE = "merge-manifest.json"
MANIFEST_SCHEMA = "ftdata_train.merge/1"

#: Accepted spellings of the merge dtype.
DTYPES: dict[str, str] = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
}
_QUANTISED = {"4bit", "nf4", "fp4", "int4", "int8", "8bit", "4-bit", "8-bit"}


class MergeError(ValueError):
    """A merge that cannot be done as asked: the message says why and what to do."""


def _dtype(name: str) -> str:
    key = name.strip().lower()
    if key in _QUANTISED:
        raise MergeError(
            f"refusing to merge into a {name} base: merging rounds the update into quantised weights and loses "
            "accuracy; merge in bfloat16 or float16 (the default reloads the base in bfloat16)"
        )
    if key not in DTYPES:
        raise MergeError(f"unknown dtype {name!r}; use one of bfloat16, float16, float32")
    return DTYPES[key]


def _adapter_config(adapter: Path) -> dict[str, Any]:
    file = adapter / "adapter_config.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MergeError(f"{adapter} is not a peft adapter folder (no adapter_config.json)") from None
    except (OSError, ValueError) as exc:
        raise MergeError(f"{file}: cannot read it ({exc})") from exc
    if not isinstance(data, dict) or not data.get("base_model_name_or_path"):
        raise MergeError(f"{file} does not name its base model (base_model_name_or_path)")
    return data


def _same_or_inside(a: Path, b: Path) -> bool:
    ra, rb = Path(os.path.realpath(a)), Path(os.path.realpath(b))
    return ra == rb or rb in ra.parents


def _check_output(output: Path, adapter: Path, base: str) -> None:
    for name, folder in (("adapter", adapter), ("base model", Path(base))):
        if folder.exists() and (_same_or_inside(output, folder) or _same_or_inside(folder, output)):
            raise MergeError(f"the output {output} would overwrite the {name} folder {folder}; choose another output")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise MergeError(f"the output {output} already exists and is not empty; remove it or choose another output")
    parent = output.absolute().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise MergeError(f"cannot write the output {output}: {parent} is not a writable folder")


def _trained_method(adapter: Path) -> str | None:
    """The method of the run that wrote the adapter (``train-config.json``), when known."""
    try:
        data = json.loads((adapter / "train-config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("method") if isinstance(data, dict) else None


def _sha256s(folder: Path) -> dict[str, str]:
    from ftdata.outputs import Fingerprint

    return {p.name: Fingerprint.of(p).sha256 for p in sorted(folder.iterdir()) if p.is_file()}


def merge(adapter: str | os.PathLike[str], output: str | os.PathLike[str], *, dtype: str = "bfloat16") -> Path:
    """Merge the LoRA adapter in ``adapter`` into its base and save the result to ``output``.

    ``dtype`` is the float type the base is reloaded in and the merged weights saved in
    (``bfloat16``/``bf16``, ``float16``/``fp16``, ``float32``/``fp32``). Raises
    :class:`MergeError` for a folder that is not an adapter, an output that is the adapter or
    base folder or is not empty, a 4-bit request or a base that cannot be loaded.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftdata_train.trainer import library_versions

    adapter = Path(adapter)
    output = Path(output)
    resolved = _dtype(dtype)
    settings = _adapter_config(adapter)
    base = str(settings["base_model_name_or_path"])
    _check_output(output, adapter, base)
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, resolved))
    except (OSError, ValueError) as exc:
        raise MergeError(
            f"cannot load the base model {base!r} named in {adapter / 'adapter_config.json'}: {exc}"
        ) from exc
    tokenizer_source = adapter if (adapter / "tokenizer_config.json").is_file() else Path(base)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    except (OSError, ValueError) as exc:
        raise MergeError(f"cannot load the tokenizer from {tokenizer_source}: {exc}") from exc
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()

    output.absolute().parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.absolute().parent))
    try:
        merged.save_pretrained(str(temp), safe_serialization=True)
        tokenizer.save_pretrained(str(temp))
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "base": base,
            "adapter": str(adapter),
            "adapter_files": _sha256s(adapter),
            "peft_type": settings.get("peft_type"),
            "adapter_peft_version": settings.get("peft_version"),
            "trained_method": _trained_method(adapter),
            "dtype": resolved,
            "outputs": _sha256s(temp),
            "versions": library_versions(),
        }
        (temp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if output.is_dir():
            output.rmdir()  # empty (checked above); os.replace cannot replace a folder
        os.replace(temp, output)
        # mkdtemp makes a private folder; the merged model is as readable as any other output
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(output, 0o777 & ~umask)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return output
