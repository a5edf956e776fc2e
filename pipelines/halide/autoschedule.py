"""Halide's autoschedulers, loaded from the plugins that ship inside the wheel."""

from __future__ import annotations

import hashlib
import os
import re
from functools import cache

import halide as hl

from featurize.schema import UserError

PLUGINS = {
    "Adams2019": "libautoschedule_adams2019.so",
    "Mullapudi2016": "libautoschedule_mullapudi2016.so",
    "Li2018": "libautoschedule_li2018.so",
}

#: Parameters each autoscheduler accepts. Halide aborts the whole process on an
#: unknown key, so keys are checked here first.
KNOWN_PARAMS = {
    "Adams2019": {
        "parallelism",
        "beam_size",
        "random_dropout",
        "random_dropout_seed",
        "weights_path",
        "disable_subtiling",
        "disable_memoized_features",
        "disable_memoized_blocks",
        "memory_limit",
    },
    "Mullapudi2016": {"parallelism", "last_level_cache_size", "balance"},
    "Li2018": {"parallelism"},
}


@cache
def load_plugin(name: str) -> None:
    if name not in PLUGINS:
        raise UserError(f"unknown autoscheduler {name!r}; known: {sorted(PLUGINS)}")
    hl.load_plugin(os.path.join(os.path.dirname(hl.__file__), "lib64", PLUGINS[name]))


def host_target() -> hl.Target:
    return hl.get_host_target()


def autoschedule(pipeline: hl.Pipeline, name: str, params: dict, target: hl.Target | None = None):
    """Apply autoscheduler ``name`` to ``pipeline``; return (schedule text, featurization bytes).

    The schedule is applied to the pipeline's Funcs as a side effect, so the
    pipeline can be compiled right after. The featurization is empty for the
    autoschedulers that have none (Mullapudi2016, Li2018).
    """
    unknown = set(params) - KNOWN_PARAMS[name]
    if unknown:
        raise UserError(f"{name}: unknown parameters {sorted(unknown)}")
    load_plugin(name)
    result = pipeline.apply_autoscheduler(
        target or host_target(), hl.AutoschedulerParams(name, {k: str(v) for k, v in params.items()})
    )
    return result.schedule_source, bytes(result.featurization)


_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)
_FUNC_DECL = re.compile(r"\bFunc (\w+) = pipeline\.get_func\((\d+)\);")


def normalize_schedule(text: str) -> str:
    """Schedule text without comments and blank lines, each Func named by its index in the
    pipeline: what the hash is taken of. (Halide suffixes a Func's name with a counter of
    earlier builds in the process, ``norm2_1`` or ``norm2_2``; the schedule is the same.)"""
    names = {name: f"func{idx}" for name, idx in _FUNC_DECL.findall(text)}
    if names:
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")\b")
        text = pattern.sub(lambda m: names[m.group(1)], text)
    lines = [ln.rstrip() for ln in _COMMENT.sub("", text).splitlines()]
    if not any(lines):
        # All comment: a generator's manual schedule, described by the loop nest it lowers to
        # (pipelines.halide.sample.manual_schedule_text); the names without Halide's counters.
        lines = [re.sub(r"\$\d+", "", ln.rstrip()) for ln in text.splitlines()]
    return "\n".join(ln for ln in lines if ln)


def schedule_hash(text: str) -> str:
    """Content hash of a schedule: 16 hex digits of sha256 over the normalized text."""
    return hashlib.sha256(normalize_schedule(text).encode()).hexdigest()[:16]
