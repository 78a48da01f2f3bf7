"""The seeds of one run configuration grouped into measured cells; display names and the order of rows.

A run is known by its identity record only (:class:`hico_bench.identity.RunIdentity`): the runs whose identities
share :attr:`RunIdentity.config` (method, backbone, pretraining set, pretraining input, external name: everything
but the seed) and that were evaluated on the same task, dataset, downstream input and splits are the seeds of one
:class:`Group`, averaged in the tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd

from hico_bench.errors import UserError
from hico_bench.identity import RANDOM_INIT, RunIdentity
from hico_bench.method import display_name, method_order
from hico_bench.results.cells import MISSING_MD, Measured

#: How the tables name the backbones (the paper's names); a backbone not listed is shown as its key.
BACKBONE_NAMES = {"s3dg": "S3D-G-23", "r3d18": "R3D-18", "r2plus1d10": "R(2+1)D-10", "r2plus1d18": "R(2+1)D-18",
                  "tiny": "tiny"}
#: How the tables name the pretraining sets (the paper's names); a set not listed is shown as its key.
SET_NAMES = {"k400": "Kinetics-400", "uk400": "untrimmed Kinetics-400", "hacs": "HACS", "none": "none"}
#: How the tables name the downstream datasets; a dataset not listed is shown as its key.
DATASET_NAMES = {"ucf101": "UCF101", "hmdb51": "HMDB51", "activitynet": "ActivityNet"}
#: Row order of the pretraining sets; other sets come after, by name.
SET_ORDER = ("k400", "uk400", "hacs")
#: The method an external checkpoint has when its config entry names none (``hico_bench.settings.EXTERNAL``).
UNKNOWN_EXTERNAL_METHOD = "external"


def backbone_name(backbone: str) -> str:
    return BACKBONE_NAMES.get(backbone, backbone)


def set_name(pretrain_set: str) -> str:
    return SET_NAMES.get(pretrain_set, pretrain_set)


def dataset_name(dataset: str) -> str:
    return DATASET_NAMES.get(dataset, dataset)


def method_cell(method: str, external: str = "") -> str:
    """The method column's text: ``HiCo``, or for an external checkpoint ``HiCo (external: official_hico)``
    (``external: <name>`` when its config entry names no method)."""
    if not external:
        return display_name(method)
    if method == UNKNOWN_EXTERNAL_METHOD:
        return f"external: {external}"
    return f"{display_name(method)} (external: {external})"


@dataclass
class Group:
    """The measurements of one run configuration (all its seeds) on one task, dataset, downstream input and splits.

    Pretraining logs make groups too: ``task == "pretrain"``, ``dataset`` = the pretraining set, no downstream input.
    """

    method: str
    backbone: str
    set: str
    pretrain_input: str
    external: str
    task: str
    dataset: str
    downstream_input: str
    split: str
    metrics: dict[str, Measured] = field(default_factory=dict)

    @property
    def config(self) -> tuple:
        """:attr:`RunIdentity.config` of the group's runs (everything but the seed)."""
        return (self.method, self.backbone, self.set, self.pretrain_input, self.external)

    @property
    def runs(self) -> list[str]:
        return sorted({r for m in self.metrics.values() for r in m.runs})

    @property
    def downstream(self) -> str:
        """The downstream input, with the splits when they are not the standard split 1 (``16x112 (splits 1,2,3)``)."""
        text = self.downstream_input or MISSING_MD
        return text if self.split in ("", "1") else f"{text} (splits {self.split})"

    @property
    def display(self) -> tuple[str, str, str]:
        """The method, backbone and pretraining-set cells."""
        return method_cell(self.method, self.external), backbone_name(self.backbone), set_name(self.set)


_GROUP_KEY = ("method", "backbone", "set", "pretrain_input", "external", "task", "dataset", "downstream_input",
              "split")


def group_measurements(df: pd.DataFrame) -> list[Group]:
    """Group the rows of :func:`hico_bench.results.collect.collect` over seeds.

    Two files holding the same metric of one run (same identity, seed included) on the same task, dataset,
    downstream input and splits are a UserError naming both.
    """
    groups: dict[tuple, Group] = {}
    seen: dict[tuple, str] = {}
    cells: dict[tuple, dict[str, list]] = {}
    for rec in df.to_dict("records"):
        key = tuple(rec[k] for k in _GROUP_KEY)
        seed = int(rec["seed"])
        skey = key + (seed, rec["metric"])
        if skey in seen and seen[skey] != rec["source"]:
            raise UserError(f"{seen[skey]} and {rec['source']} both hold {rec['metric']} of run {rec['run']} "
                            f"({rec['task']} on {rec['dataset']}); keep one of them.")
        seen[skey] = rec["source"]
        if key not in groups:
            groups[key] = Group(*key)
        base = RunIdentity(rec["method"], rec["backbone"], rec["set"], rec["pretrain_input"], 0, rec["external"])
        acc = cells.setdefault(key, {}).setdefault(rec["metric"], [])
        acc.append((seed, float(rec["value"]), rec["source"], base.name))
    for key, metrics in cells.items():
        for metric, items in metrics.items():
            items.sort()
            groups[key].metrics[metric] = Measured(
                values=tuple(v for _, v, _, _ in items), sources=tuple(s for _, _, s, _ in items),
                runs=tuple(dict.fromkeys(r for _, _, _, r in items)), seeds=tuple(s for s, _, _, _ in items))
    return list(groups.values())


def natural_key(text: str) -> tuple:
    """Sort key putting ``8x112`` before ``16x112`` (digit runs compare as numbers)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text))


def set_rank(pretrain_set: str) -> tuple:
    return (SET_ORDER.index(pretrain_set) if pretrain_set in SET_ORDER else len(SET_ORDER), pretrain_set)


def order_key(group: Group) -> tuple:
    """Row order: random init last; then backbone, pretraining input, set, method (:func:`method_order`), external
    name, downstream input, splits, dataset."""
    return (group.method == RANDOM_INIT, group.backbone, natural_key(group.pretrain_input), set_rank(group.set),
            method_order(group.method), group.method, group.external, natural_key(group.downstream_input),
            group.split, group.dataset)


def runs_text(groups: Iterable[Group]) -> str:
    """The runs behind some cells, by configuration (the seed-0 run's name): ``hico_tiny_uk400_8x16 (seeds 0,1,2)``,
    the name alone for seed 0 alone, ``hico_tiny_uk400_8x16 (seed 1)`` for another seed alone."""
    seeds: dict[str, set[int]] = {}
    for g in groups:
        for m in g.metrics.values():
            for run in m.runs:
                seeds.setdefault(run, set()).update(m.seeds)

    def text(run: str, s: set[int]) -> str:
        if s == {0}:
            return run
        return f"{run} (seed{'s' if len(s) > 1 else ''} {','.join(map(str, sorted(s)))})"

    return "; ".join(text(run, s) for run, s in sorted(seeds.items()))


def join_notes(*notes: Any) -> str:
    """The non-empty notes, each once, in order, ``; ``-separated."""
    return "; ".join(n for n in dict.fromkeys(notes) if n)
