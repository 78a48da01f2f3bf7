"""Every setting of every stage, declared once: its type, its default and what it means.

A :class:`Section` is a named group of :class:`Setting` s (one stage's settings, such as pretraining or the linear
probe); sections nest (``synthetic.settings.kinetics``) and :class:`MapOf` holds a section per free-form key
(``variants.<name>``, ``pretrain.per_set.<set>``). :func:`config_section` is the whole configuration file built from
these sections. Everything that checks settings goes through here:

* the Snakemake workflow validates its config with :func:`validate_config` (unknown keys, types, choices, bounds;
  defaults filled in), after converting values given on the command line (``--config seeds=[0,1,2]`` arrives as
  strings) to the declared types;
* every ``hico-bench`` verb resolves its ``--settings`` with :meth:`Section.resolve`;
* ``config/README.md`` documents every setting with its default (a test checks it against these declarations).

A mistake is one :class:`~hico_bench.errors.UserError` sentence naming the key and, for an unknown key, the valid ones.
This module imports neither torch nor pandas, so that ``hico-bench --help`` and the workflow start fast.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from hico_bench.errors import UserError
from hico_bench.models import BACKBONE_NAMES

Choices = tuple | Callable[[], Iterable[Any]] | None


@dataclass(frozen=True)
class Setting:
    """One key: ``kind`` is ``int``, ``float``, ``bool``, ``str``, ``list`` (of ``item``), ``dict`` (free-form
    mapping), ``paths`` (a path or a list of paths) or ``range`` (a number or a pair ``[lo, hi]``; ``item`` is
    ``int`` or ``float``)."""

    name: str
    kind: str
    default: Any
    help: str
    choices: Choices = None          # allowed values (a callable is evaluated when first needed)
    minimum: float | None = None     # inclusive bound of numbers (of every item for lists and ranges)
    maximum: float | None = None
    nullable: bool = False           # null (None) is allowed
    item: str | None = None          # the kind of list items / range ends
    required: bool = False           # must be given (no default)

    def default_value(self) -> Any:
        """The default (a callable default is evaluated: the lists of every registered task or variant)."""
        return self.default() if callable(self.default) else copy.deepcopy(self.default)

    def allowed(self) -> tuple | None:
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)


@dataclass(frozen=True)
class Section:
    """A group of settings and sub-sections.

    ``partial`` sections are checked but not filled with their defaults: in the config file, ``pretrain.settings``
    holds only what the user sets, so that a job's parameters (Snakemake's rerun trigger) change only when the user
    changes them; the verb that runs the job fills in the defaults.
    """

    name: str
    help: str
    entries: tuple[Setting | Section | MapOf, ...]
    partial: bool = False
    see: str = ""                    # the docs document this section in a table of its own (where)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def entry(self, key: str) -> Setting | Section | MapOf:
        for e in self.entries:
            if e.name == key:
                return e
        raise KeyError(key)

    def defaults(self) -> dict[str, Any]:
        """Every default (sub-sections filled recursively, partial ones empty)."""
        out: dict[str, Any] = {}
        for e in self.entries:
            if isinstance(e, Setting):
                out[e.name] = e.default_value()
            elif isinstance(e, Section):
                out[e.name] = {} if e.partial else e.defaults()
            else:
                out[e.name] = copy.deepcopy(e.default)
        return out

    def check(self, given: Any, where: str, fill: bool | None = None) -> dict[str, Any]:
        """``given`` converted to the declared types and checked; defaults filled when ``fill`` (default: not
        ``partial``). ``where`` is the dotted key of this section (``""`` at the top)."""
        fill = (not self.partial) if fill is None else fill
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise UserError(f"{_key(where) or 'the configuration'} must be a mapping of keys to values, "
                            f"not {given!r}.")
        unknown = [k for k in given if k not in self.keys]
        if unknown:
            raise unknown_key(where, unknown[0], self.keys)
        out: dict[str, Any] = {}
        for e in self.entries:
            sub = f"{where}.{e.name}" if where else e.name
            if e.name in given:
                out[e.name] = _check_entry(e, given[e.name], sub)
            elif isinstance(e, Setting) and e.required:
                raise UserError(f"config key {sub} is not set; it is required ({e.help}).")
            elif fill:
                out[e.name] = _check_entry(e, None, sub) if not isinstance(e, Setting) else e.default_value()
        return out

    def resolve(self, given: Mapping[str, Any] | None, where: str | None = None) -> dict[str, Any]:
        """The defaults updated with ``given`` (checked): what a verb runs with."""
        return self.check(given or {}, self.name if where is None else where, fill=True)

    def partial_view(self, see: str = "") -> Section:
        """The same settings, checked without filling defaults."""
        return Section(self.name, self.help, self.entries, partial=True, see=see)

    def merged(self, *sections: Section, name: str | None = None, help: str | None = None,
               exclude: Iterable[str] = ()) -> Section:
        """This section's entries followed by those of ``sections`` (a key declared twice is a programming error)."""
        entries = [e for e in self.entries if e.name not in set(exclude)]
        for s in sections:
            entries += list(s.entries)
        names = [e.name for e in entries]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"settings declared twice: {dupes}")
        return Section(name or self.name, help or self.help, tuple(entries), self.partial, self.see)


@dataclass(frozen=True)
class MapOf:
    """A mapping of free-form keys (``keys`` restricts them when given) to values checked by ``value``."""

    name: str
    help: str
    value: Section | Setting
    default: dict = field(default_factory=dict)
    keys: Choices = None
    key_help: str = "name"
    expand: bool = False             # the docs list the value's keys (else one row: the value is documented elsewhere)

    def check(self, given: Any, where: str) -> dict[str, Any]:
        if given is None:
            return copy.deepcopy(self.default)
        if not isinstance(given, Mapping):
            raise UserError(f"config key {where} must be a mapping of {self.key_help}s to settings, not {given!r}.")
        allowed = None
        if self.keys is not None:
            allowed = tuple(self.keys() if callable(self.keys) else self.keys)
        out = {}
        for k, v in given.items():
            k = str(k)
            if allowed is not None and k not in allowed:
                raise unknown_key(where, k, allowed)
            out[k] = _check_entry(self.value, v, f"{where}.{k}")
        return out


def unknown_key(where: str, key: str, valid: Iterable[str]) -> UserError:
    place = f"{where}.{key}" if where else key
    listed = ", ".join(sorted(str(v) for v in valid)) or "none"
    return UserError(f"unknown setting {place!r}; the valid keys{' of ' + where if where else ''} are: {listed}.")


def _key(where: str) -> str:
    return f"config key {where}" if where else ""


def _check_entry(e: Setting | Section | MapOf, value: Any, where: str) -> Any:
    if isinstance(e, (Section, MapOf)):
        return e.check(value, where)
    return check_value(e, value, where)


# ------------------------------------------------------------------------------------------------ values and types
_NULLS = ("null", "none", "~", "")
_TRUE, _FALSE = ("true", "yes", "on"), ("false", "no", "off")
_KIND_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
               "list": "a list", "dict": "a mapping", "range": "a number or a pair [lo, hi]",
               "paths": "a path or a list of paths"}
_PLURAL = {"int": "integers", "float": "numbers", "str": "strings", "bool": "booleans"}


def _from_text(kind: str, text: str) -> Any:
    """A command-line string as ``kind`` (Snakemake hands ``--config`` values inside lists and mappings over as
    strings); returns the text unchanged when it is not of that kind, so that the check below names it."""
    t = text.strip()
    try:
        if kind == "int" and t.lstrip("+-").isdigit():
            return int(t)
        if kind == "float":
            return float(t) if t.lower() not in ("nan", "inf", "+inf", "-inf", "infinity") else text
        if kind == "bool" and t.lower() in _TRUE + _FALSE:
            return t.lower() in _TRUE
        if kind in ("list", "dict", "range") and t[:1] in "[{":
            import yaml

            return yaml.safe_load(t)
        if kind == "range":
            return _from_text("int", t) if t.lstrip("+-").isdigit() else _from_text("float", t)
    except Exception:  # not a number, or YAML that does not parse: the check names the text as given
        return text
    return text


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scalar(kind: str, value: Any) -> tuple[bool, Any]:
    """(ok, value converted) for one scalar of ``kind``."""
    if isinstance(value, str) and kind != "str":
        value = _from_text(kind, value)
    if kind == "int":
        if _is_int(value):
            return True, value
        if _is_num(value) and float(value).is_integer():
            return True, int(value)
        return False, value
    if kind == "float":
        return (True, float(value)) if _is_num(value) else (False, value)
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "str":
        return isinstance(value, str), value
    raise ValueError(kind)


def _bounds(s: Setting, v: Any, where: str) -> None:
    if s.minimum is not None and v < s.minimum:
        raise UserError(f"setting {where} must be at least {s.minimum:g}, not {v!r}.")
    if s.maximum is not None and v > s.maximum:
        raise UserError(f"setting {where} must be at most {s.maximum:g}, not {v!r}.")


def check_value(s: Setting, value: Any, where: str) -> Any:
    """``value`` converted to ``s``'s kind and checked against its choices and bounds; UserError otherwise."""
    if value is None or (isinstance(value, str) and s.kind != "str" and s.nullable
                         and value.strip().lower() in _NULLS):
        if s.nullable:
            return None
        raise UserError(f"setting {where} must be {_KIND_WORDS[s.kind]}, not null.")
    kind = s.kind
    if kind in ("int", "float", "bool", "str"):
        ok, v = _scalar(kind, value)
        if not ok:
            raise UserError(f"setting {where} must be {_KIND_WORDS[kind]}, not {value!r}.")
        if kind in ("int", "float"):
            _bounds(s, v, where)
    elif kind == "list":
        v = _from_text("list", value) if isinstance(value, str) else value
        if isinstance(v, tuple):
            v = list(v)
        if not isinstance(v, list):
            raise UserError(f"setting {where} must be a list of {_PLURAL[s.item]}, not {value!r}.")
        items = []
        for i, x in enumerate(v):
            ok, y = _scalar(s.item, x)
            if not ok:
                raise UserError(f"setting {where} must be a list of {_PLURAL[s.item]}; item {i} is {x!r}.")
            if s.item in ("int", "float"):
                _bounds(s, y, f"{where}[{i}]")
            items.append(y)
        v = items
    elif kind == "range":
        v = _from_text("range", value) if isinstance(value, str) else value
        pair = list(v) if isinstance(v, (list, tuple)) else [v, v]
        conv = [_scalar(s.item, x) for x in pair]
        if len(pair) != 2 or not all(ok for ok, _ in conv):
            raise UserError(f"setting {where} must be {'an integer' if s.item == 'int' else 'a number'} or a "
                            f"pair [lo, hi], not {value!r}.")
        lo, hi = conv[0][1], conv[1][1]
        _bounds(s, lo, where)
        if hi < lo:
            raise UserError(f"setting {where} must satisfy lo <= hi, not {value!r}.")
        v = [lo, hi]
    elif kind == "paths":
        v = value
        if isinstance(v, tuple):
            v = list(v)
        if not (isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(x, str) for x in v))):
            raise UserError(f"setting {where} must be a path or a list of paths, not {value!r}.")
    elif kind == "dict":
        if isinstance(value, str):
            value = _from_text("dict", value)
        if not isinstance(value, Mapping):
            raise UserError(f"setting {where} must be a mapping, not {value!r}.")
        v = {str(k): _plain(x) for k, x in value.items()}
    else:
        raise ValueError(f"unknown kind {kind!r} of setting {where}")
    allowed = s.allowed()
    if allowed is not None:
        for x in v if kind == "list" else [v]:
            if x not in allowed:
                listed = ", ".join(str(a) for a in allowed)
                raise UserError(f"setting {where} must be one of {listed}; {x!r} is not.")
    return v


def _plain(x: Any) -> Any:
    """Free-form values (``backbone_kwargs``) given on the command line arrive as strings: read them as YAML."""
    if isinstance(x, str):
        import yaml

        try:
            return yaml.safe_load(x) if x.strip() else x
        except Exception:
            return x
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# -------------------------------------------------------------------------------------------------- the sections
BACKBONE = Section("model", "the backbone", (
    Setting("backbone", "str", "tiny", "the video backbone (see the README's backbone table)",
            choices=BACKBONE_NAMES),
    Setting("backbone_kwargs", "dict", {}, "extra arguments of the backbone builder (e.g. tiny's widths)"),
))

CLIP = Section("input", "the clip geometry", (
    Setting("frames", "int", 8, "frames per clip", minimum=1),
    Setting("size", "int", 16, "crop side fed to the network (px)", minimum=8),
    Setting("decode_size", "int", 32, "short side frames are decoded at, before cropping (px); null = as stored",
            minimum=8, nullable=True),
    Setting("sampling_rate", "int", 2, "clip time = frames x sampling_rate / target_fps seconds", minimum=1),
    Setting("target_fps", "float", 10.0, "see sampling_rate", minimum=1e-6),
))
"""Clip geometry: configured separately for pretraining (``pretrain.input``) and downstream (``downstream.input``)."""

MODEL = BACKBONE.merged(CLIP, name="model", help="the backbone and the clip geometry of one job")
"""What every downstream verb's ``--model`` holds (the config composes it from ``model:`` and a stage's ``input:``)."""

RECALL_KS = (1, 5, 10, 20, 50)
"""Retrieval R@k reported by default (the VCOP protocol; the paper's Table 6 shows R@1-20)."""

METHOD = Section("method", "the method's switches (a variant is a set of these)", (
    Setting("method", "str", "hico", "the variant's name, recorded in the checkpoint and the metrics"),
    Setting("num_clips", "int", 3, "clips per video: 3 for HiCo (v_i, v_j, v_k), 2 for SimCLR and VCL only",
            choices=(2, 3)),
    Setting("schedule", "str", "gradual", "delta_max schedule: gradual (alpha/alpha_max x Delta), fixed (Delta), "
            "none (clips drawn independently over the whole video)", choices=("gradual", "fixed", "none")),
    Setting("delta_s", "float", 1.0, "Delta in seconds: delta_max at the end of a gradual run, or the fixed window",
            minimum=0),
    Setting("topical", "bool", True, "TCL on: the last clip is re-drawn over the whole video (v_k) and phi scores "
            "every same-video pair (needs num_clips 3)"),
    Setting("temperature", "float", 0.1, "VCL / NT-Xent temperature", minimum=1e-6),
    Setting("gamma", "float", 0.5, "focal exponent of TCL; 0 = class-balanced BCE", minimum=0),
    Setting("vcl_weight", "float", 1.0, "weight of the VCL (or NT-Xent) loss", minimum=0),
    Setting("tcl_weight", "float", 1.0, "weight of the TCL loss", minimum=0),
    Setting("head_mid_dim", "int", 1024, "hidden width of the projection MLPs g and h", minimum=1),
    Setting("head_out_dim", "int", 128, "output width of g and h", minimum=1),
))

OPTIM = Section("optimisation", "pretraining optimisation", (
    Setting("optimizer", "str", "lars", "lars, adam or sgd", choices=("lars", "adam", "sgd")),
    Setting("base_lr", "float", 0.3, "learning rate; with scale_lr multiplied by global clips / 256", minimum=0),
    Setting("scale_lr", "bool", True, "the paper's linear scaling rule: lr = base_lr x global clips / 256"),
    Setting("weight_decay", "float", 1e-6, "not applied to BatchNorm parameters and biases", minimum=0),
    Setting("momentum", "float", 0.9, "LARS / SGD momentum (Nesterov)", minimum=0, maximum=1),
    Setting("bn_lars_exclude", "bool", True, "BatchNorm parameters skip the LARS trust ratio (the long runs' "
            "setting; the short HACS runs use false)"),
    Setting("warmup_epochs", "float", 0.0, "linear warm-up epochs, then cosine to 0", minimum=0),
    Setting("warmup_start_lr", "float", 0.001, "learning rate at the start of the warm-up (not scaled)", minimum=0),
    Setting("epochs", "int", 1, "training epochs", minimum=1),
    Setting("batch_videos", "int", 8, "videos per process and step (paper: 32 per GPU)", minimum=1),
))

RUNTIME = Section("runtime", "how a training job runs (none of these changes a result on CPU)", (
    Setting("seed", "int", 0, "random seed (set by the config's seeds:)", minimum=0),
    Setting("num_workers", "int", 0, "DataLoader worker processes", minimum=0),
    Setting("cache_frames", "bool", False, "decode each video once per worker and keep its frames in memory "
            "(tiny datasets only)"),
    Setting("checkpoint_every", "int", 1, "epochs between resume points", minimum=1),
    Setting("checkpoint_minutes", "float", 0.0, "also a resume point after the first step that ends this many minutes "
            "after the last one (mid-epoch too); 0 = off", minimum=0),
    Setting("precision", "str", "fp32", "fp32, or bf16 (bf16 autocast, CUDA only)", choices=("fp32", "bf16")),
    Setting("device", "str", "auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda")),
    Setting("threads", "int", 0, "torch CPU threads; 0 = torch's default", minimum=0),
    Setting("progress_bar", "bool", True, "show a progress bar on stderr"),
))

PRETRAIN_DATA = Section("pretrain-data", "what the pretraining set holds", (
    Setting("trimmed", "bool", False, "the pretraining videos are trimmed clips (Kinetics-400): the variant with "
            "every HiCo switch off (schedule none, topical false) then draws each clip's start uniformly over "
            "[0, duration - clip time], as the official code's interval-based sampling does on trimmed clips; every "
            "other variant, and every variant on untrimmed videos, draws clip centres in [clip time, duration - "
            "clip time]"),
))
"""Settings that describe the pretraining set rather than the method: they belong to a set (``pretrain.per_set``)."""

PRETRAIN = BACKBONE.merged(CLIP, METHOD, OPTIM, RUNTIME, PRETRAIN_DATA, Section("pretrain-extra", "", (
    Setting("augment_on", "str", "loader", "loader: augment each clip in the DataLoader workers; device: the "
            "workers return uint8 clips decoded at decode_size x decode_size and the augmentation runs batch-wise "
            "on the training device", choices=("loader", "device")),
    Setting("sync_bn", "bool", False, "SyncBatchNorm across processes"),
    Setting("deterministic", "bool", True, "deterministic algorithms (bit-exact resume on CPU)"),
)), name="pretrain", help="pretraining settings")
"""Every setting of one pretraining run (``hico-bench pretrain --settings``)."""

FEATURES = Section("features", "frozen per-video features shared by the tasks on features", (
    Setting("views", "int", 10, "clips per video, evenly spaced, averaged", minimum=1),
    Setting("batch_size", "int", 8, "videos per batch", minimum=1),
    Setting("num_workers", "int", 0, "DataLoader worker processes", minimum=0),
    Setting("cache_frames", "bool", False, "decode each video once and keep its frames (tiny datasets only)"),
    Setting("seed", "int", 0, "seed of the random-init backbone", minimum=0),
))

EXPORT = Section("export", "ActivityNet feature export", (
    Setting("stride", "int", 16, "frames between snippet starts", minimum=1),
    Setting("snippet_frames", "int", 16, "frames per snippet", minimum=1),
    Setting("batch_size", "int", 32, "snippets per forward pass", minimum=1),
    Setting("max_bad_fraction", "float", 0.05, "the export fails when more than this fraction of videos cannot be "
            "decoded", minimum=0, maximum=1),
    Setting("seed", "int", 0, "seed of the random-init backbone", minimum=0),
    Setting("num_workers", "int", 0, "DataLoader worker processes decoding and transforming the snippets while the "
            "main process runs the backbone (0: all in the main process; the features are the same)", minimum=0),
    Setting("subsets", "list", ["training", "validation"], "ActivityNet subsets to export (the manifest's train, "
            "val and test splits); the default holds the localization probe's train_subset and eval_subset; [all] "
            "exports every video, testing included", item="str",
            choices=("training", "validation", "testing", "all")),
))

LOCALIZE = Section("probe", "the light localization probe on exported ActivityNet features", (
    Setting("train_subset", "str", "training", "ground-truth subset the snippet classifier is fitted on"),
    Setting("eval_subset", "str", "validation", "ground-truth subset detected and scored"),
    Setting("C", "float", 1.0, "inverse L2 strength of the snippet classifier (logistic regression)", minimum=1e-12),
    Setting("max_snippets", "int", 200_000, "at most this many training snippets (a random subset fixed by seed)",
            minimum=1),
    Setting("max_iter", "int", 1000, "iterations of the logistic regression solver", minimum=1),
    Setting("seed", "int", 0, "snippet subsampling and the solver's random state", minimum=0),
    Setting("thresholds", "list", [0.3, 0.5, 0.7], "actionness thresholds whose runs become segments",
            item="float", minimum=0, maximum=1),
    Setting("smooth", "list", [1, 5], "moving-average windows (snippets) applied to the actionness", item="int",
            minimum=1),
    Setting("top_classes", "int", 2, "classes each segment is labelled with", minimum=1),
    Setting("use_video_scores", "bool", True, "multiply by the video-level class share"),
    Setting("nms_sigma", "float", 0.5, "Gaussian soft-NMS sigma; null skips it", minimum=1e-6, nullable=True),
))

MANIFEST = Section("manifest", "manifests", (
    Setting("max_bad_fraction", "float", 0.05, "a manifest job fails when more than this fraction of listed "
            "videos is missing or broken", minimum=0, maximum=1),
    Setting("workers", "int", 2, "threads probing videos (PyAV decodes without holding Python's lock)", minimum=1),
))

PREPARE = Section("prepare", "re-encoded copies for fast random access", (
    Setting("enabled", "bool", False, "later stages read the re-encoded copies (results/manifests/<dataset>"
            ".prepared.csv)"),
    Setting("root", "str", "results/data/prepared", "where the copies go (<root>/<dataset>/, layout kept)"),
    Setting("short_side", "int", 128, "short side of the copies (px)", minimum=16),
    Setting("keyframe_interval_s", "float", 1.0, "seconds between keyframes", minimum=1e-6),
    Setting("workers", "int", 2, "encoding processes", minimum=1),
))

_KINETICS_SYN = Section("kinetics", "synthetic Kinetics-400 (trimmed clips cut from untrimmed sources)", (
    Setting("classes", "int", 8, "topics (object shapes)", minimum=1),
    Setting("videos_per_class", "int", 16, "untrimmed source videos per class", minimum=1),
    Setting("val_per_class", "int", 2, "of which in the val split", minimum=0),
    Setting("scenes", "range", [4, 6], "scenes per untrimmed video", item="int", minimum=1),
    Setting("scene_seconds", "range", [4, 6], "seconds per scene", item="int", minimum=1),
    Setting("clip_seconds", "int", 4, "seconds of each trimmed clip (one scene)", minimum=1),
))
_UCF_SYN = Section("ucf101", "synthetic UCF101", (
    Setting("classes", "int", 12, "classes ((shape, motion) pairs)", minimum=1),
    Setting("groups", "int", 10, "groups (source videos) per class", minimum=2, maximum=99),
    Setting("clips_per_group", "range", [3, 5], "clips cut from each group's source", item="int", minimum=1,
            maximum=99),
    Setting("seconds", "range", [3, 5], "clip length (s)", item="float", minimum=0.5),
))
_HMDB_SYN = Section("hmdb51", "synthetic HMDB51", (
    Setting("classes", "int", 12, "classes ((shape, motion) pairs)", minimum=1),
    Setting("videos_per_class", "int", 30, "videos per class", minimum=2),
    Setting("train_per_class", "int", 18, "of which train in each split", minimum=1),
    Setting("test_per_class", "int", 9, "of which test in each split", minimum=1),
    Setting("seconds", "range", [3, 5], "video length (s)", item="float", minimum=0.5),
))
_ANET_SYN = Section("activitynet", "synthetic ActivityNet v1.3", (
    Setting("classes", "int", 6, "action classes", minimum=1),
    Setting("videos", "int", 36, "videos", minimum=1),
    Setting("validation_videos", "int", 12, "of which in the validation subset", minimum=0),
    Setting("segments", "range", [1, 3], "labelled segments per video", item="int", minimum=1),
    Setting("segment_seconds", "range", [3, 8], "segment length (s)", item="float", minimum=0.5),
    Setting("background_seconds", "range", [2, 6], "background between segments (s)", item="float", minimum=0.1),
))
_HACS_SYN = Section("hacs", "synthetic HACS Segments (untrimmed videos of one topic each, in HACS's layout)", (
    Setting("classes", "int", 8, "topics (object shapes), one class folder each", minimum=1),
    Setting("videos_per_class", "int", 8, "videos per class", minimum=1),
    Setting("val_per_class", "int", 1, "of which in the validation subset", minimum=0),
    Setting("scenes", "range", [3, 5], "scenes per video (actions of the topic, or its shape idling)", item="int",
            minimum=1),
    Setting("scene_seconds", "range", [4, 6], "seconds per scene", item="int", minimum=1),
))
SYNTHETIC = Section("synthetic.settings", "the synthetic benchmark's sizes", (
    Setting("frame_size", "int", 32, "frame side (px, even)", minimum=8),
    Setting("fps", "int", 10, "frames per second", minimum=1, maximum=120),
    Setting("object_size", "range", [0.45, 0.55], "object size as a fraction of the frame", item="float",
            minimum=0.05, maximum=1),
    Setting("distractor_prob", "float", 0.0, "probability of a distractor object per scene", minimum=0, maximum=1),
    Setting("segments_layout", "bool", True, "also write untrimmed Kinetics in HiCo's 5-s segment layout"),
    _KINETICS_SYN, _UCF_SYN, _HMDB_SYN, _ANET_SYN, _HACS_SYN,
))
"""``hico-bench synthesize --settings``: missing keys take these defaults."""


def _path(name: str, help: str) -> Setting:
    return Setting(name, "str", None, help, nullable=True)


def _paths(name: str, help: str) -> Setting:
    """A path or a list of paths (Kinetics CSVs, video folders)."""
    return Setting(name, "paths", None, help, nullable=True)


DATASETS = Section("datasets", "your real data (used when synthetic.enabled is false)", (
    Section("k400", "Kinetics-400 (trimmed)", (
        _paths("csv", "the official CSV (label,youtube_id,time_start,time_end,split[,is_cc]), or a list of them"),
        _paths("videos", "folder of trimmed clips {id}_{start:06d}_{end:06d}.mp4, in label folders or flat"),
        Setting("layout", "str", "auto", "auto, label (label folders), flat, or cvdf (file stem's first 11 "
                "characters = id)", choices=("auto", "label", "flat", "cvdf")),
    )),
    Section("uk400", "untrimmed Kinetics-400", (
        _paths("csv", "the Kinetics CSV (labels and ids of the untrimmed videos)"),
        _paths("videos", "folder of full source videos (<id>.<ext> or v_<id>.<ext>); with layout segments, the "
               "folder of the 5-s pieces"),
        Setting("layout", "str", "full", "full (one file per video) or segments (HiCo's "
                "v_{id}_{startms:07d}_{endms:07d}.mp4 pieces)", choices=("full", "segments")),
        _path("segments_list", "HiCo's training.txt (id,startms,endms per piece); only with layout segments"),
    )),
    Section("ucf101", "UCF101", (
        _path("root", "the UCF-101/ folder (<Class>/v_<Class>_gXX_cYY.avi)"),
        _path("splits_dir", "the ucfTrainTestlist/ folder (classInd.txt, trainlist0N.txt, testlist0N.txt)"),
    )),
    Section("hmdb51", "HMDB51", (
        _path("root", "folder of <class>/<video>.avi"),
        _path("splits_dir", "the testTrainMulti_7030_splits/ folder"),
    )),
    Section("activitynet", "ActivityNet v1.3", (
        _path("json", "activity_net.v1-3.min.json (or HACS_segments_v1.1.1.json)"),
        _path("videos", "folder of v_<id>.<ext>"),
    )),
    Section("hacs", "HACS Segments v1.1.1 (its training subset pretrains)", (
        _path("json", "HACS_segments_v1.1.1.json (ActivityNet's layout, durations as strings); with layout segments "
              "optional (labels by id)"),
        _path("videos", "the download's ROOT_DIR (<CLASSNAME>/v_<id>.mp4); with layout segments, HiCo's "
              "DATA_ROOT_DIR (the pieces in its training/ folder)"),
        Setting("layout", "str", "full", "full (one file per video) or segments (HiCo's "
                "v_{id}_{startms:07d}_{endms:07d}.mp4 pieces)", choices=("full", "segments")),
        _path("segments_list", "HiCo's DATA_ROOT_DIR/training.txt (id,startms,endms per piece); only with layout "
              "segments"),
    )),
))


def _variant_names() -> tuple[str, ...]:
    from hico_bench.method import VARIANTS

    return tuple(VARIANTS)


def _task_sections() -> tuple[Section, ...]:
    from hico_bench.evaluate.tasks import TASKS

    return tuple(t.settings.partial_view() for t in TASKS.values())


def _task_names() -> tuple[str, ...]:
    from hico_bench.evaluate.tasks import TASKS

    return tuple(TASKS)


EXTERNAL = Section("external", "a checkpoint this project did not train", (
    Setting("path", "str", None, "the checkpoint file (hico-bench's own, an official HiCo / TAdaConv .pyth, or a "
            "state dict)", required=True),
    Setting("backbone", "str", None, "its backbone", choices=BACKBONE_NAMES, required=True),
    Setting("backbone_kwargs", "dict", {}, "extra arguments of the backbone builder"),
    Setting("format", "str", "auto", "auto, hico-bench, official or state_dict",
            choices=("auto", "hico-bench", "official", "state_dict")),
    Setting("method", "str", "external", "the method it was trained with, as the tables name it (e.g. hico)"),
    Setting("set", "str", "unknown", "its pretraining set (e.g. uk400)"),
    Setting("pretrain_input", "str", "unknown", "its pretraining clip geometry (e.g. 16x112)"),
))

PRETRAIN_SETS = ("k400", "uk400", "hacs")
DOWNSTREAM_DATASETS = ("ucf101", "hmdb51")


def _downstream() -> Section:
    return Section("downstream", "UCF101 / HMDB51 evaluation of every checkpoint", (
        CLIP.merged(name="input", help="downstream clip geometry"),
        Setting("datasets", "list", list(DOWNSTREAM_DATASETS), "downstream datasets", item="str",
                choices=DOWNSTREAM_DATASETS),
        Setting("splits", "list", [1], "official splits; several give their mean too", item="int",
                choices=(1, 2, 3)),
        Setting("tasks", "list", lambda: list(_task_names()), "downstream tasks (default: every task of "
                "hico_bench/evaluate/tasks.py)", item="str", choices=_task_names),
        Setting("random_init", "bool", True, "also evaluate the backbone at random init (the floor every table "
                "shows)"),
        Setting("gpus", "int", 0, "GPUs per job of a task that trains on videos (ft, lft); more than 1 runs "
                "torchrun --standalone --nproc-per-node N with the batch split across them. Feature extraction and "
                "the ActivityNet export use one GPU when this is at least 1", minimum=0),
        FEATURES.partial_view(),
        *_task_sections(),
        MapOf("per_dataset", "settings for one dataset only", Section("tasks", "task settings per dataset", (
            *_task_sections(),)), keys=DOWNSTREAM_DATASETS, key_help="dataset"),
    ))


def _pretrain() -> Section:
    return Section("pretrain", "the pretraining grid", (
        CLIP.merged(name="input", help="pretraining clip geometry"),
        Setting("sets", "list", ["k400", "uk400"], "pretraining sets: k400 (trimmed Kinetics-400), uk400 "
                "(untrimmed Kinetics-400), hacs (HACS Segments, untrimmed)", item="str", choices=PRETRAIN_SETS),
        Setting("variants", "list", lambda: list(_variant_names()), "variants to pretrain (default: every variant "
                "of hico_bench/method.py; more under variants:)", item="str"),
        Setting("gpus", "int", 0, "GPUs per run; more than 1 runs torchrun --standalone --nproc-per-node N",
                minimum=0),
        PRETRAIN.partial_view(see="the pretraining settings below").merged(
            name="settings", help="pretraining settings for every run",
            exclude=("backbone", "backbone_kwargs", *CLIP.keys, "method", "seed")),
        MapOf("per_set", "pretraining settings for one set only", PRETRAIN.partial_view().merged(
            name="per_set", help="", exclude=("backbone", "backbone_kwargs", *CLIP.keys, "method", "seed")),
            keys=PRETRAIN_SETS, key_help="pretraining set"),
    ))


def config_section() -> Section:
    """The whole configuration file."""
    return Section("", "the configuration", (
        Setting("results", "str", "results", "folder every output goes under"),
        Setting("seeds", "list", [0], "pretraining seeds; seed 0 is named <run>, others <run>_seedN", item="int",
                minimum=0),
        Section("synthetic", "the generated benchmark", (
            Setting("enabled", "bool", True, "generate the data and ignore datasets:"),
            Setting("root", "str", "results/data/synthetic", "where the generated datasets are written"),
            Setting("seed", "int", 0, "generator seed: the same seed gives the same files", minimum=0),
            SYNTHETIC.partial_view(see="the synthetic benchmark's settings below").merged(
                name="settings", help="generator sizes"),
        )),
        DATASETS,
        MANIFEST,
        PREPARE,
        BACKBONE,
        _pretrain(),
        MapOf("variants", "pretraining variants defined in the config (or built-in ones overridden)",
              PRETRAIN.partial_view().merged(name="variant", help="a variant's settings",
                                             exclude=("backbone", "backbone_kwargs", *CLIP.keys, "method", "seed")),
              key_help="variant"),
        _downstream(),
        Section("localization", "ActivityNet feature export, a light localization probe and the ActivityNet mAP", (
            Setting("enabled", "bool", True, "export features and score the localization probe"),
            EXPORT.partial_view(),
            LOCALIZE.partial_view(),
        )),
        MapOf("external", "checkpoints this project did not train, evaluated downstream as rows of their own",
              EXTERNAL, key_help="checkpoint name", expand=True),
        MapOf("groups", "more grids in the same DAG: each overrides seeds, model, pretrain, variants, downstream or "
              "localization of the base config", Setting("group", "dict", {}, "the group's overrides"),
              key_help="group"),
    ))


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config checked against :func:`config_section`, values converted to their declared types and defaults
    filled in; a mistake is a UserError naming the key."""
    return config_section().check(dict(config), "")


# --------------------------------------------------------------------------------------------------- documentation
def format_default(value: Any) -> str:
    """A default as config/README.md shows it (YAML-ish: null, true, [1, 5])."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_default(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_default(v)}" for k, v in value.items()) + "}"
    return str(value)


def doc_rows(section: Section, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, meaning) of every setting of ``section`` and its sub-sections, for the docs. A
    sub-section documented in a table of its own (``see``) is one row pointing there."""
    rows = []
    for e in section.entries:
        key = f"{prefix}{e.name}"
        if isinstance(e, Section) and e.see:
            rows.append((key, "{}", f"{e.help}: {e.see}"))
        elif isinstance(e, Section):
            rows += doc_rows(e, f"{key}.")
        elif isinstance(e, MapOf) and e.expand:
            rows += doc_rows(e.value, f"{key}.<{e.key_help}>.")
        elif isinstance(e, MapOf):
            rows.append((f"{key}.<{e.key_help}>", format_default(e.default), e.help))
        else:
            rows.append((key, "required" if e.required else format_default(e.default_value()), e.help))
    return rows


def doc_table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{k}` | `{d}` | {h} |" for k, d, h in rows]
    return "\n".join(lines)
