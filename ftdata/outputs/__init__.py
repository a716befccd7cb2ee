"""What every command that writes files promises, and the one writer that keeps the promise.

**The guard.** No output replaces an input or another output, and the output's folder
exists and is writable, all checked before any data is read (:func:`check_outputs`,
:func:`check_folder_outputs`). An output that copies an input's records byte for byte is
named for the layout it holds: a ``.jsonl``/``.ndjson`` name for JSON Lines, a ``.json``
name for a JSON array (:func:`check_layout`; other names promise nothing). An input read
twice is fingerprinted (:class:`Fingerprint`: size, mtime, inode and the sha256 of its
bytes) and a change between the passes is an error (:class:`InputChangedError`): nothing
is written.

**The writer.** :class:`OutputSet` writes a set of files and its manifest into one folder:

1. every file goes to a temporary name ``.ftdata-tmp.<token>.<name>`` in that folder and
   is fsynced, the manifest too;
2. the manifest's temporary file is renamed ``.ftdata-commit.<token>.<manifest>``: from
   here on the new set is durable and the commit will be finished;
3. the old manifest is removed, the files are renamed into place, then the manifest.

So a manifest in place always describes the files beside it (their sha256s match): either
the old complete set or the new one. A run killed during step 3 leaves no manifest and a
``.ftdata-commit`` file; the next :class:`OutputSet` on that folder (or :func:`recover`)
finishes that commit, and removes the temporary files of runs killed before step 2, which
leaves the old set as it was. On any error (a full disk included) the temporary files are
removed and the old set is untouched.

**Rejects** (``ftdata.rejects/1``), one JSON object a line, in input order::

    {"schema": "ftdata.rejects/1", "index": 4, "line": 5, "reason": "unreadable",
     "rule": "FT001", "detail": "unexpected character ...", "raw": "{\\"messages\\": [oops]}"}

``index`` is the 0-based record index, ``line`` its 1-based first line (None when
unknown), ``reason`` why it was left out (``duplicate``, ``unreadable``), ``rule`` the code
of the rule that explains it (None when no rule does), ``detail`` a sentence. Then the
record's exact bytes: ``raw`` (their text, when they are valid UTF-8) or ``raw_base64``,
so that the kept file and the rejects together hold every input record byte for byte
(the parsed record is ``json.loads(raw)``; a re-serialised copy would not round-trip).
Further keys depend on the reason (a duplicate's ``cluster``, ``representative``,
``representative_line``, ``similarity``, ``method``).

**Manifest** (``ftdata.manifest/1``), written last by every command that writes data::

    {"schema": "ftdata.manifest/1", "ftdata": "0.1.0", "command": "split",
     "options": {...}, "rules": [{"code": "FT601", "options": {...}}],
     "inputs": [{"path": "data.jsonl", "size": 1234, "sha256": "...", "records": 110}],
     "counts": {...},
     "outputs": {"train": {"path": "train.jsonl", "bytes": 1000, "sha256": "...", "records": 87}}}

Output paths are relative to the manifest's folder. Commands may add keys of their own.
"""

from ftdata.outputs.guard import (
    Fingerprint,
    InputChangedError,
    OutputError,
    PathLike,
    check_folder_outputs,
    check_layout,
    check_outputs,
    layout_named,
)
from ftdata.outputs.records import MANIFEST_SCHEMA, REJECTS_SCHEMA, manifest, reject_line
from ftdata.outputs.sets import COMMIT_PREFIX, PAUSE_ENV, TEMP_PREFIX, OutputSet, recover

__all__ = [
    "COMMIT_PREFIX",
    "MANIFEST_SCHEMA",
    "PAUSE_ENV",
    "REJECTS_SCHEMA",
    "TEMP_PREFIX",
    "Fingerprint",
    "InputChangedError",
    "OutputError",
    "OutputSet",
    "PathLike",
    "check_folder_outputs",
    "check_layout",
    "check_outputs",
    "layout_named",
    "manifest",
    "recover",
    "reject_line",
]
