# Setup: validate the config, name the programs, and hold every input function.
import json
import os

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml", set_default=True)

DS = config["dataset"]
WORK = f"results/_work/{DS}"
DATA = f"results/{DS}"
MODELS = "results/models"
# Models train on models.dataset (published datasets such as datasets/reference; several,
# timed on several machines, are merged into MERGED_TRAIN_DATA) when it is set, and are then
# also scored on the dataset built here (FRESH_SCORES in each run directory).
_DATASETS = config["models"]["dataset"]
MODEL_DATASETS = [d.rstrip("/") for d in ([_DATASETS] if isinstance(_DATASETS, str) else _DATASETS) if d]
MERGED_TRAIN_DATA = "results/train_data"
TRAIN_DATA = (MODEL_DATASETS[0] if len(MODEL_DATASETS) == 1 else MERGED_TRAIN_DATA) if MODEL_DATASETS else DATA
EXTERNAL_TRAIN_DATA = TRAIN_DATA != DATA
# perfgraph adapt: the models made models of this machine (models/adapt.py), when they trained elsewhere.
ADAPT_MODELS = [m for m in config["adapt"]["models"] if m in config["models"]["names"]]
ADAPT = bool(config["adapt"]["enabled"] and EXTERNAL_TRAIN_DATA and ADAPT_MODELS)
ADAPTED = "results/adapted"
# Adapt on the random programs this run builds and times, rather than time programs of its own.
ADAPT_ON_BUILT = ADAPT and config["adapt"]["on_built"]
SPLIT = f"{MODELS}/split.parquet" if EXTERNAL_TRAIN_DATA else f"{DATA}/split.parquet"
FRESH_SCORES = f"on_{DS}"
# The calibration kernel is built once per machine (per Halide target) by the first timing job.
CALIBRATION = "results/_work/calibration"
CORES = config["parallelism"] or os.cpu_count()
# What a schedule runs on: the autoschedulers schedule for it and timing uses that many threads.
SCHEDULE_THREADS = config["timing"]["threads"] or CORES


def random_programs():
    r = config["programs"]["random"]
    return {f"r{seed:05d}": seed for seed in range(r["first_seed"], r["first_seed"] + r["count"])}


def user_programs():
    """programs.user by program id: each entry as (its source, ``path.py`` or ``path.py:Class``,
    and its GeneratorParams)."""
    from pipelines.halide.programs import user_program_id

    items = [(u, {}) if isinstance(u, str) else (u["source"], u.get("generator_params", {}))
             for u in config["programs"]["user"]]  # fmt: skip
    return {user_program_id(src, gp): (src, gp) for src, gp in items}


PROGRAMS = (
    list(random_programs())
    + [f"zoo_{z}" for z in config["programs"]["zoo"]]
    + list(user_programs())
)


wildcard_constraints:
    prog=r"r\d{5}|zoo_\w+|user_\w+",
    # A model's first training run is results/models/<name>/; run k of models.seeds is .../<name>/seeds/<k>.
    model=r"[a-z0-9_]+(/seeds/\d+)?",


def generate_args(wildcards):
    """The generator's source arguments for one program."""
    prog = wildcards.prog
    if prog in random_programs():
        params = json.dumps(config["programs"]["random"]["params"], sort_keys=True)
        return f"--seed {random_programs()[prog]} --params '{params}'"
    if prog in user_programs():
        source, generator_params = user_programs()[prog]
        return f"--user {source} --generator-params '{json.dumps(generator_params, sort_keys=True)}'"
    return f"--zoo {prog.removeprefix('zoo_')}"


def user_program_file(wildcards):
    from pipelines.halide.programs import parse_user_source

    return [parse_user_source(user_programs()[wildcards.prog][0])[0]] if wildcards.prog in user_programs() else []


def sampler_weights_files(wildcards=None):
    """The Halide .weights files the sampler mix reads: inputs of every compile job."""
    from pipelines.halide.samplers import weights_files

    return weights_files(config["sampling"])


def as_json(key):
    return json.dumps(config[key], sort_keys=True)


def timing_json():
    """The timing protocol for the timing jobs, its thread count resolved."""
    return json.dumps({**config["timing"], "threads": SCHEDULE_THREADS}, sort_keys=True)


#: Whether the refine stage draws (sampling.refine.count > 0): then it times and holds the bench slot.
REFINE = config["sampling"]["refine"]["count"] > 0


def timing_threads(wildcards=None, threads=None):
    # Timing holds every core of the machine, whatever it runs on, so nothing runs beside it.
    return CORES


#: Where a model's runs live under its directory: the first run there, run k under seeds/<k>/.
RUN_SUBDIRS = [""] + [f"seeds/{k}/" for k in range(1, config["models"]["seeds"])]


def runs_of(*names):
    """The training runs of ``names`` (each model's first, then their extra seeds ``<name>/seeds/<k>``)."""
    return [f"{n}/{r}".rstrip("/") for r in RUN_SUBDIRS for n in names]


def checkpoints(root, *names):
    """The checkpoints of every run of ``names`` under ``root``."""
    return [f"{root}/{r}/checkpoint.pt" for r in runs_of(*names)]


def adapted_runs():
    """Every adapted run: each of adapt.models and its extra seeds, as perfgraph adapt writes them."""
    return runs_of(*ADAPT_MODELS)


def run_dirs(root, name, below=""):
    """The directories of a model's runs under ``root`` (and ``below`` each), for --model-dir / --out-dir."""
    return " ".join(f"{root}/{r}{below}" for r in runs_of(name))


def dataset_tables(directory=DATA):
    from featurize.schema import TABLE_NAMES

    return [f"{directory}/{t}.parquet" for t in TABLE_NAMES]


def get_final_output():
    out = dataset_tables() + [f"{MODELS}/summary.json"]
    if config["report"]["enabled"]:
        out += ["results/report/index.html", "results/report/summary.md"]
    return out
