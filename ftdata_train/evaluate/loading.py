"""Loading what is evaluated: a peft adapter with its base, or a full model and an optional base."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata_train.evaluate.examples import EvalError, PathLike

if TYPE_CHECKING:  # pragma: no cover
    pass


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class Loaded:
    """The models an evaluation compares and their tokenizers."""

    tuned: Any
    tuned_tokenizer: Any
    base: Any = None
    base_tokenizer: Any = None
    #: The tuned model is a peft model whose adapter, disabled, gives the base.
    shared: bool = False
    base_name: str | None = None
    adapter: bool = False


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Keep the model libraries' progress bars, import-time log lines and deprecation
    warnings about their own internals off the caller's stderr for the length of a call."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    bnb = logging.getLogger("bitsandbytes")
    level = bnb.level
    bnb.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)(\.|$)")
            yield
    finally:
        bnb.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def _dtype(device: str) -> Any:
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _load_causal_lm(name: str, device: str) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        model: Any = AutoModelForCausalLM.from_pretrained(name, dtype=_dtype(device))
    except (OSError, ValueError, KeyError) as exc:
        raise EvalError(f"{name}: cannot load the model ({_first_line(exc)})") from exc
    model.to(device)
    model.eval()
    return model


def _load_tokenizer(*names: str) -> Any:
    from transformers import AutoTokenizer

    error: Exception | None = None
    for name in names:
        if Path(name).is_dir() and not (Path(name) / "tokenizer_config.json").is_file():
            continue
        try:
            return AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError, KeyError) as exc:
            error = exc
    raise EvalError(f"{names[0]}: cannot load a tokenizer ({_first_line(error) if error else 'none found'})")


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def _adapter_base(folder: Path) -> str:
    try:
        data = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{folder}: unreadable adapter_config.json ({_first_line(exc)})") from exc
    base = data.get("base_model_name_or_path") if isinstance(data, dict) else None
    if not isinstance(base, str) or not base:
        raise EvalError(f"{folder}: adapter_config.json names no base model; pass base=")
    return base


def load_models(model: PathLike, base: str | None, device: str) -> Loaded:
    """Load ``model`` (an adapter folder or a full model) and the base to compare it with.
    Raises :class:`EvalError` for anything that cannot be loaded."""
    folder = Path(model)
    if not folder.is_dir():
        raise EvalError(f"{folder}: not a model or adapter folder")
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        own_base = _adapter_base(folder)
        base_model = _load_causal_lm(own_base, device)
        try:
            tuned = PeftModel.from_pretrained(base_model, str(folder))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise EvalError(f"{folder}: cannot load the adapter ({_first_line(exc)})") from exc
        tuned.to(device)
        tuned.eval()
        tokenizer = _load_tokenizer(str(folder), own_base)
        loaded = Loaded(tuned, tokenizer, base_name=own_base, adapter=True)
        if base is None or base == own_base:
            loaded.shared, loaded.base_tokenizer, loaded.base_name = True, tokenizer, own_base
        else:
            loaded.base, loaded.base_tokenizer, loaded.base_name = (
                _load_causal_lm(base, device),
                _load_tokenizer(base, str(folder)),
                base,
            )
        return loaded
    if not (folder / "config.json").is_file():
        raise EvalError(f"{folder}: neither an adapter (adapter_config.json) nor a model (config.json)")
    tuned = _load_causal_lm(str(folder), device)
    loaded = Loaded(tuned, _load_tokenizer(str(folder)))
    if base is not None:
        loaded.base, loaded.base_tokenizer, loaded.base_name = (
            _load_causal_lm(base, device),
            _load_tokenizer(base, str(folder)),
            base,
        )
    return loaded
