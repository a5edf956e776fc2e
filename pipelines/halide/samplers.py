"""Which schedules are drawn for a program: the sampler mix of ``config.sampling``.

A model can only learn what makes schedules differ from data where they do. Halide
gives these levers on Adams2019, and the mix combines them:

- ``random_dropout`` (percent chance of acting greedily at each decision; 1 drops
  about a fifth of the options at each step, 50 far fewer): samples near the greedy
  path of the shipped cost model, dense near the best schedules;
- ``weights: random``: the search is guided by a cost model with random weights of
  the shipped tensors' shapes, as Halide's own autotune loop starts before it has
  trained weights. These reach schedules 1.1-100x+ slower than the best, the spread
  the dropout samples lack;
- ``weights: <path>``: the search is guided by a retrained cost model, a Halide
  ``.weights`` file (``perfgraph export-weights`` writes one from an Adams2019 model
  trained on measured data). This is the second step of Halide's autotune loop: with
  weights trained on this machine's timings, the greedy path and its dropout
  neighbours land near the fastest schedules (about half its samples within 1.5x of a
  program's best, measured here), the density the random weights lack;
- ``beam_size``: the beam search itself.

A mix sampler is Adams2019, whose samples carry its own featurization, or Mullapudi2016
(``autoscheduler: Mullapudi2016``) with its two levers drawn per seed: the last-level cache
size it tiles for (log-uniform, 256 KiB-64 MiB) and ``balance``, its ratio of the cost of a
memory access to an arithmetic operation (log-uniform, 5-200; Halide's defaults: 16 MiB, 40);
those samples are featurized by the loop-nest reader (:mod:`featurize.halide.loopnest`), and
widen the pool beyond what Adams2019 proposes. Adams2019's beam search with the shipped
weights (Halide's own pick) and Mullapudi2016 and Li2018 are drawn once each as reference
points.

A sampler's draws are seeded 1, 2, ...: seed ``k`` is ``random_dropout_seed = k`` and,
for ``weights: random``, the weights drawn from seed ``k``; the same seed gives the
same schedule. Each sample records its sampler's name and these parameters (a weights
file by its path and the first 16 hex digits of its SHA-256).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featurize.schema import UserError

#: Halide's weights file: signature 'hwf1', the feature versions it was trained for,
#: then each buffer (dimension 0 innermost) in ``Weights::save`` order.
WEIGHTS_SIGNATURE = 0x68776631
FEATURE_VERSIONS = (3, 3)  # PipelineFeatures::version(), ScheduleFeatures::version() in Halide 21
#: Shapes of the shipped Adams2019 tensors (:func:`shipped_weights`).
WEIGHT_SHAPES = {
    "head1_filter": (8, 40, 7),
    "head1_bias": (8,),
    "head2_filter": (24, 39),
    "head2_bias": (24,),
    "conv1_filter": (32, 32),
    "conv1_bias": (32,),
}


def random_weights(seed: int) -> dict[str, np.ndarray]:
    """Weights of the shipped shapes, uniform in [-0.5, 0.5) as Halide's ``Weights::randomize``."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-0.5, 0.5, shape).astype(np.float32) for name, shape in WEIGHT_SHAPES.items()}


def weights_bytes(weights: dict[str, np.ndarray]) -> bytes:
    """Serialise weights to Halide's ``.weights`` format (what ``weights_path`` reads)."""
    out = [struct.pack("<IIII", WEIGHTS_SIGNATURE, *FEATURE_VERSIONS, len(WEIGHT_SHAPES))]
    for name in WEIGHT_SHAPES:
        arr = np.asarray(weights[name], dtype="<f4")
        out.append(struct.pack(f"<I{arr.ndim}I", arr.ndim, *arr.shape))
        # Halide's dimension 0 is innermost: the C-order bytes of the transposed array.
        out.append(np.ascontiguousarray(arr.T).tobytes())
    return b"".join(out)


def weights_from_bytes(data: bytes, offset: int = 0) -> dict[str, np.ndarray]:
    """Read Halide's ``.weights`` format (``Weights::load``) into arrays of :data:`WEIGHT_SHAPES`.

    Halide buffers are stored with dimension 0 innermost, so a buffer of extents
    ``(a, b, c)`` is a C array ``[c][b][a]``; it is transposed back to ``[a][b][c]``."""
    sig, _pver, _sver, count = struct.unpack_from("<IIII", data, offset)
    if sig != WEIGHTS_SIGNATURE or count != len(WEIGHT_SHAPES):
        raise UserError("not a Halide Adams2019 weights blob")
    off = offset + 16
    out = {}
    for name in WEIGHT_SHAPES:
        (ndim,) = struct.unpack_from("<I", data, off)
        dims = struct.unpack_from(f"<{ndim}I", data, off + 4)
        off += 4 + 4 * ndim
        n = int(np.prod(dims))
        arr = np.frombuffer(data, dtype="<f4", count=n, offset=off).reshape(dims[::-1]).T
        off += 4 * n
        out[name] = np.array(arr, dtype=np.float32, order="C", copy=True)
    return out


def shipped_weights(library: str | Path | None = None) -> dict[str, np.ndarray]:
    """The weights Halide ships with Adams2019, read from ``libautoschedule_adams2019.so`` of
    the installed ``halide`` package (they are compiled into it: searched for the signature)."""
    if library is None:
        spec = importlib.util.find_spec("halide")
        if spec is None or spec.origin is None:
            raise FileNotFoundError("the halide package is not installed")
        library = Path(spec.origin).parent / "lib64" / "libautoschedule_adams2019.so"
    data = Path(library).read_bytes()
    sig = struct.pack("<I", WEIGHTS_SIGNATURE)
    pos = data.find(sig)
    while pos != -1:
        try:
            weights = weights_from_bytes(data, pos)
        except (UserError, ValueError, struct.error):
            weights = None  # the signature's bytes by chance, not a weights blob
        if weights is not None and weights["head1_filter"].shape == WEIGHT_SHAPES["head1_filter"]:
            return weights
        pos = data.find(sig, pos + 1)
    raise ValueError(f"{library}: no Adams2019 weights found")


def perturbed_weights(weights: dict[str, np.ndarray], sd: float, seed: int) -> dict[str, np.ndarray]:
    """``weights`` plus Gaussian noise of standard deviation ``sd`` (seeded): a cost model near
    another, whose search lands near that one's schedules but not on them."""
    rng = np.random.default_rng(seed)
    return {name: (w + rng.normal(0.0, sd, w.shape)).astype(np.float32) for name, w in weights.items()}


def write_random_weights(directory: str | Path, seed: int) -> Path:
    """The random weights of ``seed`` as a file in ``directory`` (written once)."""
    path = Path(directory) / f"random_seed{seed}.weights"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Draws of one cost model may run at once (draw_candidates' jobs): each writes its own.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(weights_bytes(random_weights(seed)))
        tmp.replace(path)
    return path


#: Parameters a sample records that are not the autoscheduler's: the cost model it searched
#: with (turned into ``weights_path`` when the draw runs) and, for a refine draw, the schedule
#: it started from (:mod:`pipelines.halide.refine`).
RECORD_ONLY = ("weights", "weights_seed", "weights_sha256", "refines", "perturb_sd", "perturb_seed")


#: The reference "autoscheduler" that is a user generator's own schedule: ``generate()`` built
#: with no autoscheduler named (:func:`pipelines.halide.sample.manual_schedule_text`).
MANUAL = "manual"


@dataclass(frozen=True)
class Draw:
    """One request to an autoscheduler.

    ``params`` is what the sample records; ``weights_seed`` (random weights) is turned
    into the autoscheduler's ``weights_path`` only when the draw runs, ``weights_file``
    (a retrained model) is passed as it is."""

    sampler: str
    autoscheduler: str
    params: dict
    timeout_s: float
    weights_seed: int | None = field(default=None)
    weights_file: str | None = field(default=None)
    perturb: tuple[float, int] | None = field(default=None)  # (sd, seed) of noise on those weights

    def autoscheduler_params(self, weights_dir: str | Path) -> dict:
        params = {k: v for k, v in self.params.items() if k not in RECORD_ONLY}
        if self.perturb is not None:
            if self.weights_seed is not None:
                base, of = random_weights(self.weights_seed), f"seed{self.weights_seed}"
            elif self.weights_file is not None:
                base, of = weights_from_bytes(Path(self.weights_file).read_bytes()), Path(self.weights_file).stem
            else:
                base, of = shipped_weights(), "shipped"
            sd, seed = self.perturb
            path = Path(weights_dir) / f"perturbed_{of}_sd{sd}_seed{seed}.weights"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(weights_bytes(perturbed_weights(base, sd, seed)))
            params["weights_path"] = str(path)
        elif self.weights_seed is not None:
            params["weights_path"] = str(write_random_weights(weights_dir, self.weights_seed))
        elif self.weights_file is not None:
            params["weights_path"] = self.weights_file
        return params


@dataclass(frozen=True)
class MixSampler:
    """One sampler of the mix and the draws it may try, in order."""

    name: str
    wanted: int
    draws: tuple[Draw, ...]


#: ``weights`` values that name no file: Halide's shipped model, or random weights per seed.
BUILTIN_WEIGHTS = ("shipped", "random")


def weights_files(cfg: dict) -> list[str]:
    """The weights files the mix's samplers read (``weights`` other than shipped or random)."""
    return sorted(
        {s["weights"] for s in cfg["samplers"].values() if s.get("count", 1) > 0 and s.get("weights", "shipped") not in BUILTIN_WEIGHTS}
    )


def checked_weights_file(sampler: str, path: str) -> tuple[str, str]:
    """(the absolute path, its SHA-256 prefix) of a sampler's weights file; one clear error
    naming the file if it is missing or not a Halide weights file of the shipped shapes."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: sampler {sampler}: no such weights file (perfgraph export-weights writes one)")
    data = p.read_bytes()
    sig, pver, sver, count = struct.unpack_from("<IIII", data) if len(data) >= 16 else (0, 0, 0, 0)
    if sig != WEIGHTS_SIGNATURE or (pver, sver) != FEATURE_VERSIONS or count != len(WEIGHT_SHAPES):
        raise UserError(
            f"{p}: sampler {sampler}: not a Halide Adams2019 weights file for feature versions {FEATURE_VERSIONS}"
        )
    return str(p.resolve()), hashlib.sha256(data).hexdigest()[:16]


def mullapudi2016_levers(seed: int) -> dict:
    """Mullapudi2016's cache size (bytes, log-uniform in 256 KiB-64 MiB) and balance
    (log-uniform in 5-200) of a seed."""
    rng = np.random.default_rng([2016, seed])
    return {"last_level_cache_size": int(2 ** rng.uniform(18, 26)), "balance": round(float(np.exp(rng.uniform(np.log(5), np.log(200)))), 2)}


def plan_draws(cfg: dict, parallelism: int) -> tuple[list[MixSampler], list[Draw]]:
    """(the mix's samplers with their draws, the reference draws) for one program."""
    mix = []
    for name, s in cfg["samplers"].items():
        weights_file, weights_sha = None, None
        if s["count"] == 0:
            continue
        if s.get("autoscheduler", "Adams2019") == "Mullapudi2016":
            draws = [Draw(name, "Mullapudi2016", {"parallelism": parallelism, **mullapudi2016_levers(seed)}, cfg["timeout_s"])
                     for seed in range(1, s["max_attempts"] + 1)]  # fmt: skip
            mix.append(MixSampler(name, s["count"], tuple(draws)))
            continue
        if s["weights"] not in BUILTIN_WEIGHTS:
            weights_file, weights_sha = checked_weights_file(name, s["weights"])
        draws = []
        for seed in range(1, s["max_attempts"] + 1):
            params = {"parallelism": parallelism, "beam_size": s["beam_size"], "random_dropout": s["random_dropout"]}
            if s["random_dropout"] < 100:
                params["random_dropout_seed"] = seed
            weights_seed = None
            if s["weights"] == "random":
                weights_seed = seed
                params.update(weights="random", weights_seed=seed)
            elif weights_file is not None:
                params.update(weights=s["weights"], weights_sha256=weights_sha)
            draws.append(Draw(name, "Adams2019", params, cfg["timeout_s"], weights_seed, weights_file))
        mix.append(MixSampler(name, s["count"], tuple(draws)))
    refs = []
    if cfg["beam_search"]["enabled"]:
        refs.append(
            Draw(
                "adams2019_beam",
                "Adams2019",
                {"parallelism": parallelism, "beam_size": cfg["beam_search"]["beam_size"], "random_dropout": 100},
                cfg["beam_search"]["timeout_s"],
            )
        )
    for name in cfg["reference_autoschedulers"]:
        params = {} if name == MANUAL else {"parallelism": parallelism}
        refs.append(Draw(name.lower(), name, params, cfg["timeout_s"]))
    return mix, refs
