"""The paper's published numbers and the one rule that matches a measurement to them.

The reference file (``hico_bench/reference/hico_paper_results.csv``, a copy of the shared reference) has one line per
published number: ``table`` (``sota_recognition`` or ``retrieval_table6``), ``method``, ``backbone``, ``pretrain``,
``pretrain_input``, ``finetune_input``, ``protocol``, ``dataset``, ``metric``, ``value`` and an optional ``note``,
all in the paper's vocabulary (``HiCo``, ``R3D-18``, ``untrimmed Kinetics-400``, ``UCF101``, ``top-1 acc``).

:func:`paper_rows` is the matching rule, used by every table.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from hico_bench.errors import UserError
from hico_bench.method import display_name
from hico_bench.results.groups import Group, backbone_name, dataset_name, set_name

#: The committed copy of the paper's numbers (byte-identical to ``shared/reference/hico_paper_results.csv``).
REFERENCE_CSV = Path(__file__).parent.parent / "reference" / "hico_paper_results.csv"

RECOGNITION = "sota_recognition"
RETRIEVAL = "retrieval_table6"
#: The tasks with a counterpart in the paper's recognition table, and the paper's name of their protocol.
PAPER_PROTOCOLS = {"lft": "LFT", "ft": "FT"}
#: The paper's metric names that differ from this project's (``R@k`` is the same in both).
PAPER_METRICS = {"top-1 acc": "top1"}
#: The columns that make one row of each of the paper's tables (its numbers differ only in dataset and metric).
PAPER_ROW = {RECOGNITION: ("method", "backbone", "pretrain", "pretrain_input", "finetune_input", "protocol"),
             RETRIEVAL: ("method", "backbone", "pretrain", "pretrain_input")}
_NEED = ["table", "method", "backbone", "pretrain", "pretrain_input", "finetune_input", "protocol", "dataset",
         "metric", "value"]


def load_reference(path: str | os.PathLike = REFERENCE_CSV) -> pd.DataFrame:
    """The paper's numbers, with ``line`` (1-based line in the file, header = line 1), ``source``
    (``<path>:<line>``) and ``measured_metric`` (the metric's name in this project: ``top1``, ``R@1``, ...)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"paper reference file {path} does not exist.")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"paper reference file {path} is not a readable CSV file ({exc}).") from None
    missing = [c for c in _NEED if c not in df.columns]
    if missing:
        raise UserError(f"paper reference file {path} lacks the column(s) {', '.join(missing)}.")
    df["line"] = range(2, len(df) + 2)
    values = []
    for line, text in zip(df["line"], df["value"]):
        try:
            values.append(float(text))
        except ValueError:
            raise UserError(f"paper reference file {path} line {line}: value {text!r} is not a number.") from None
    df["value"] = values
    if "note" not in df.columns:
        df["note"] = ""
    df["source"] = [f"{path}:{line}" for line in df["line"]]
    df["measured_metric"] = [PAPER_METRICS.get(m, m) for m in df["metric"]]
    return df


def input_size(label: str) -> str | None:
    """The crop side of a clip-geometry label (``16x112`` and the paper's ``?x112`` -> ``"112"``); None for ``none``
    or a label without one."""
    frames, sep, size = label.rpartition("x")
    return size if sep and frames and size.isdigit() else None


def paper_rows(ref: pd.DataFrame, group: Group, any_dataset: bool = False) -> pd.DataFrame:
    """The reference rows a measured group is compared with (none when the paper has no counterpart).

    The group's method (``display_name``; an external checkpoint counts as its method), backbone and pretraining set
    are put in the paper's vocabulary, then:

    * ``lft`` / ``ft``: the paper's state-of-the-art recognition rows with the same method, backbone, pretraining
      set, pretraining input, fine-tuning input (the group's downstream input) and protocol (LFT / FT);
    * ``retrieval``: the rows of the paper's Table 6 with the same method, backbone, pretraining set and input size
      (the paper gives its input as ``?x112``);
    * any other task: none (the strict probe, localization and new tasks have no paper counterpart);

    and the same dataset, unless ``any_dataset`` (the rows of every dataset: how a table row is matched before its
    datasets are filled in). The splits are not compared: the paper reports split 1, a group measured on other
    splits says so in its note.
    """
    same = ((ref["method"] == display_name(group.method)) & (ref["backbone"] == backbone_name(group.backbone))
            & (ref["pretrain"] == set_name(group.set)))
    if group.task in PAPER_PROTOCOLS:
        mask = (same & (ref["table"] == RECOGNITION) & (ref["pretrain_input"] == group.pretrain_input)
                & (ref["finetune_input"] == group.downstream_input)
                & (ref["protocol"] == PAPER_PROTOCOLS[group.task]))
    elif group.task == "retrieval" and input_size(group.pretrain_input) is not None:
        mask = (same & (ref["table"] == RETRIEVAL)
                & (ref["pretrain_input"].map(input_size) == input_size(group.pretrain_input)))
    else:
        return ref.iloc[0:0]
    if not any_dataset:
        mask &= ref["dataset"] == dataset_name(group.dataset)
    return ref[mask]


def paper_row_key(row: pd.Series) -> tuple:
    """The columns that identify the paper's table row a reference line belongs to (:data:`PAPER_ROW`)."""
    return tuple(row[k] for k in PAPER_ROW[row["table"]])
