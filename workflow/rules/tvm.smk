# TVM side (issue 5): tensor programs -> MetaSchedule schedules -> timed -> Parquet graph tables
# -> TVM's XGBModel and the GNNs. Reads config["tvm"] and the shared noise and models keys, as
# validated by common.smk (every default is the schema's); the timing protocol, its threads and
# the calibration kernel come from common.smk too (timing_json, SCHEDULE_THREADS, CALIBRATION,
# CORES). Its wildcard `tprog` never meets the Halide rules' `prog`.
import json

TVM = config["tvm"]
TVM_DS = f"tvm_{DS}"
TVM_WORK = f"results/_work/{TVM_DS}"
# tvm.dataset: a published TVM dataset (datasets/reference_tvm) the models train and are scored on
# as it is; without it the TVM programs are built and timed here, into results/tvm_<dataset>/.
TVM_BUILT = f"results/{TVM_DS}"
TVM_DATA = TVM["dataset"].rstrip("/") or TVM_BUILT
TVM_MODELS = f"results/models/{TVM_DS}"
TVM_SPLIT = f"{TVM_MODELS}/split.parquet"
TVM_TABLES = [
    "programs", "nodes", "edges", "schedules", "node_schedule_features", "measurements", "timing_samples",
    "machines", "tvm_store_features", "tvm_node_features",
]  # fmt: skip


def tvm_random_programs():
    r = TVM["programs"]["random"]
    return {f"t{s:05d}": s for s in range(r["first_seed"], r["first_seed"] + r["count"])}


TVM_PROGRAMS = list(tvm_random_programs()) + [f"tzoo_{z}" for z in TVM["programs"]["zoo"]]


wildcard_constraints:
    tprog=r"t\d{5}|tzoo_\w+",
    tmodel=r"tvm_xgb|gcn|gine|gatv2",


def tvm_generate_args(wildcards):
    seeds = tvm_random_programs()
    if wildcards.tprog in seeds:
        params = json.dumps(TVM["programs"]["random"]["params"], sort_keys=True)
        return f"--seed {seeds[wildcards.tprog]} --params '{params}'"
    return f"--zoo {wildcards.tprog.removeprefix('tzoo_')}"


def tvm_json(obj):
    return json.dumps(obj, sort_keys=True)


def get_tvm_final_output():
    """The TVM dataset and model summary, or nothing when `tvm.enabled` is false."""
    if not TVM["enabled"]:
        return []
    return [f"{TVM_DATA}/{t}.parquet" for t in TVM_TABLES] + [f"{TVM_MODELS}/summary.json"]


def tvm_dataset_tables(directory=TVM_BUILT):
    return [f"{directory}/{t}.parquet" for t in TVM_TABLES]


rule tvm_generate:
    """Write one TVM program entry: a seeded random spec or a zoo layer."""
    output:
        f"{TVM_WORK}/{{tprog}}/entry.json",
    params:
        args=tvm_generate_args,
    log:
        "results/logs/tvm_generate/{tprog}.log",
    shell:
        "perfgraph tvm-generate --program-id {wildcards.tprog} {params.args} "
        "--out {output} > {log} 2>&1"


rule tvm_sample:
    """MetaSchedule: ReplayTrace + evolutionary candidates, compiled and featurized (may run in parallel)."""
    input:
        rules.tvm_generate.output,
    output:
        candidates=f"{TVM_WORK}/{{tprog}}/candidates.parquet",
        program=f"{TVM_WORK}/{{tprog}}/program.json",
    params:
        sampling=tvm_json(TVM["sampling"]),
        parallelism=SCHEDULE_THREADS,
    threads: 1
    log:
        "results/logs/tvm_sample/{tprog}.log",
    shell:
        "perfgraph tvm-sample --entry {input} --out-dir {TVM_WORK}/{wildcards.tprog} "
        "--sampling '{params.sampling}' --parallelism {params.parallelism} --threads {threads} > {log} 2>&1"


rule tvm_bench:
    """Time one program's candidates alone on the machine (all cores, one bench_slot)."""
    input:
        rules.tvm_sample.output.candidates,
    output:
        measurements=f"{TVM_WORK}/{{tprog}}/measurements.parquet",
        samples=f"{TVM_WORK}/{{tprog}}/timing_samples.parquet",
        machine=f"{TVM_WORK}/{{tprog}}/machine.json",
    params:
        timing=timing_json(),
    threads: timing_threads()
    resources:
        bench_slot=1,
    log:
        "results/logs/tvm_bench/{tprog}.log",
    shell:
        "perfgraph tvm-bench --work-dir {TVM_WORK}/{wildcards.tprog} --out {output.measurements} "
        "--samples {output.samples} --machine {output.machine} --timing '{params.timing}' "
        "--calibration-dir {CALIBRATION} > {log} 2>&1"


rule tvm_retime:
    """Drift: re-time a fixed share of the TVM schedules in a separate, later pass."""
    input:
        expand(rules.tvm_bench.output.measurements, tprog=TVM_PROGRAMS),
    output:
        measurements=f"{TVM_WORK}/retime.parquet",
        samples=f"{TVM_WORK}/retime_samples.parquet",
    params:
        timing=timing_json(),
        fraction=config["noise"]["fraction"],
        dirs=expand(f"{TVM_WORK}/{{tprog}}", tprog=TVM_PROGRAMS),
    threads: timing_threads()
    resources:
        bench_slot=1,
    log:
        "results/logs/tvm_retime.log",
    shell:
        "perfgraph tvm-retime --out {output.measurements} --samples {output.samples} "
        "--timing '{params.timing}' --fraction {params.fraction} "
        "--calibration-dir {CALIBRATION} {params.dirs} > {log} 2>&1"


rule tvm_featurize:
    """Join the TVM work directories into the dataset's Parquet graph tables (compiler = tvm)."""
    input:
        expand(rules.tvm_bench.output.measurements, tprog=TVM_PROGRAMS),
        expand(rules.tvm_bench.output.samples, tprog=TVM_PROGRAMS),
        expand(rules.tvm_sample.output.program, tprog=TVM_PROGRAMS),
        retime=rules.tvm_retime.output.measurements,
        retime_samples=rules.tvm_retime.output.samples,
    output:
        tvm_dataset_tables(),
    params:
        dirs=expand(f"{TVM_WORK}/{{tprog}}", tprog=TVM_PROGRAMS),
    log:
        "results/logs/tvm_featurize.log",
    shell:
        "perfgraph tvm-featurize --out {TVM_BUILT} --retime {input.retime} {params.dirs} > {log} 2>&1"


rule publish_tvm_dataset:
    """Copy the TVM dataset built here to datasets/<dataset>/ with its config and its card (README.md)."""
    input:
        tvm_dataset_tables(),
        config=ancient(f"{DATA}/config.json"),
    output:
        [f"datasets/{DS}/{t}" for t in ("README.md", "card.json", "config.json")],
        tvm_dataset_tables(f"datasets/{DS}"),
    params:
        command=lambda wildcards: " ".join(
            ["snakemake publish_tvm_dataset", f"--cores {CORES}"]
            + [f"--configfile {os.path.relpath(f)}" for f in workflow.configfiles if os.path.relpath(f) != "config/config.yaml"]
        ),
    log:
        "results/logs/publish_tvm_dataset.log",
    shell:
        "perfgraph publish --dataset {TVM_BUILT} --config {input.config} --work-dir {TVM_WORK} "
        "--command '{params.command}' --out datasets/{DS} > {log} 2>&1"


rule tvm_split:
    """Train / val / test by a hash of program_id; zoo layers are the 'zoo' split."""
    input:
        f"{TVM_DATA}/programs.parquet",
    output:
        TVM_SPLIT,
    params:
        train=config["models"]["split"]["train"],
        val=config["models"]["split"]["val"],
    log:
        "results/logs/tvm_split.log",
    shell:
        "perfgraph split --dataset {TVM_DATA} --out {output} "
        "--train {params.train} --val {params.val} > {log} 2>&1"


rule tvm_train:
    """Train a model's runs (TVM's XGBModel or a GNN; seeds models.seed, +1, ...) on the TVM
    training programs, in one process as on the Halide side. A model's first run is
    <TVM_MODELS>/<model>/, run k <model>/seeds/<k>/."""
    input:
        tvm_dataset_tables(TVM_DATA),
        split=rules.tvm_split.output,
    output:
        meta=[f"{TVM_MODELS}/{{tmodel}}/{r}meta.json" for r in RUN_SUBDIRS],
    params:
        epochs=config["models"]["epochs"],
        seed=config["models"]["seed"],
        runs=config["models"]["seeds"],
    threads: config["models"]["threads"]
    log:
        "results/logs/tvm_train/{tmodel}.log",
    shell:
        "perfgraph tvm-train --dataset {TVM_DATA} --split {input.split} "
        "--model {wildcards.tmodel} --out {TVM_MODELS}/{wildcards.tmodel} --epochs {params.epochs} "
        "--seed {params.seed} --runs {params.runs} --threads {threads} > {log} 2>&1"


rule tvm_evaluate:
    """Predict the TVM test and zoo programs with every run of a model (one process: the imports once)."""
    input:
        lambda wildcards: [f"{TVM_MODELS}/{r}/meta.json" for r in runs_of(wildcards.tmodel)],
        split=rules.tvm_split.output,
    output:
        metrics=[f"{TVM_MODELS}/{{tmodel}}/{r}metrics.json" for r in RUN_SUBDIRS],
        predictions=[f"{TVM_MODELS}/{{tmodel}}/{r}predictions.parquet" for r in RUN_SUBDIRS],
    params:
        dirs=lambda wildcards: run_dirs(TVM_MODELS, wildcards.tmodel),
    log:
        "results/logs/tvm_evaluate/{tmodel}.log",
    shell:
        "perfgraph tvm-evaluate --dataset {TVM_DATA} --split {input.split} "
        "--model-dir {params.dirs} > {log} 2>&1"


rule tvm_summarize:
    """TVM models (averaged over seeds) beside the TVM noise floor; XGBModel / best-GNN error ratios."""
    input:
        expand(rules.tvm_evaluate.output.metrics, tmodel=TVM["models"]),
        split=rules.tvm_split.output,
    output:
        json=f"{TVM_MODELS}/summary.json",
        md=f"{TVM_MODELS}/summary.md",
    params:
        seeds=config["models"]["seeds"],
    log:
        "results/logs/tvm_summarize.log",
    shell:
        "perfgraph tvm-summarize --models-dir {TVM_MODELS} --dataset {TVM_DATA} "
        "--split {input.split} --seeds {params.seeds} --out {output.json} > {log} 2>&1"
