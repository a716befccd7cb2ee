"""ftdata_train: from curated data to a LoRA/QLoRA fine-tune with transformers, peft and trl.

Install with ``pip install 'ftdata[train]'``. Nothing heavy is imported until used: the names
below load their module on first access.

- :class:`TrainConfig` (``ftdata train --init`` writes a commented one) and :class:`ConfigError`;
- :func:`prepare`: the data gate (ftdata's lint with the model's tokenizer, leakage between
  train and eval, examples truncation would leave untrained) and the ``datasets.Dataset``\\ s
  TRL takes; :class:`GateError` when the data fails;
- :func:`dry_run`: what the run will cost (tokens, steps, trainable parameters, GPU memory for
  LoRA, QLoRA and full fine-tuning) from the model's config alone;
- :func:`train`, :func:`merge`, :func:`evaluate`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "TrainConfig": "ftdata_train.config",
    "ConfigError": "ftdata_train.config",
    "init_template": "ftdata_train.config",
    "prepare": "ftdata_train.data",
    "Prepared": "ftdata_train.data",
    "GateError": "ftdata_train.gate",
    "DataManifest": "ftdata_train.manifest",
    "SplitStats": "ftdata_train.manifest",
    "tokenize_example": "ftdata_train.labels",
    "render_labels": "ftdata_train.labels",
    "label_preview": "ftdata_train.labels",
    "TokenizedExample": "ftdata_train.labels",
    "dry_run": "ftdata_train.dryrun",
    "DryRun": "ftdata_train.dryrun",
    "train": "ftdata_train.trainer",
    "TrainResult": "ftdata_train.trainer",
    "merge": "ftdata_train.merge",
    "MergeError": "ftdata_train.merge",
    "evaluate": "ftdata_train.evaluate",
    "EvalReport": "ftdata_train.evaluate",
    "EvalError": "ftdata_train.evaluate",
    "score_example": "ftdata_train.evaluate",
    "inspect_model": "ftdata_train.model",
    "ModelInfo": "ftdata_train.model",
    "trainable_parameters": "ftdata_train.model",
    "load_model": "ftdata_train.loading",
    "lora_config": "ftdata_train.model",
    "check_environment": "ftdata_train.loading",
    "resolve_targets": "ftdata_train.model",
    "estimate_time": "ftdata_train.estimate",
    "TimeEstimate": "ftdata_train.estimate",
    "estimate_memory": "ftdata_train.estimate",
    "MemoryEstimate": "ftdata_train.estimate",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from ftdata_train.config import ConfigError as ConfigError
    from ftdata_train.config import TrainConfig as TrainConfig
    from ftdata_train.config import init_template as init_template


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ftdata_train' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
