rule merge_train_data:
    """The published datasets of models.dataset, timed on several machines, as one to train on."""
    input:
        [dataset_tables(d) for d in MODEL_DATASETS],
    output:
        dataset_tables(MERGED_TRAIN_DATA),
    log:
        "results/logs/merge_train_data.log",
    shell:
        "perfgraph merge --out {MERGED_TRAIN_DATA} {MODEL_DATASETS} > {log} 2>&1"


rule split:
    """Assign programs to train / val / test by a hash of program_id; zoo programs are 'zoo'."""
    input:
        f"{TRAIN_DATA}/programs.parquet",
    output:
        SPLIT,
    params:
        train=config["models"]["split"]["train"],
        val=config["models"]["split"]["val"],
        seed=config["models"]["seed"],
    log:
        "results/logs/split.log",
    shell:
        "perfgraph split --dataset {TRAIN_DATA} --out {output} "
        "--train {params.train} --val {params.val} --seed {params.seed} > {log} 2>&1"


import shlex

SEARCH = config["models"]["search"]


rule search:
    """Hyperparameter search for one model: models.search.trials configurations, chosen on validation."""
    input:
        dataset_tables(TRAIN_DATA),
        split=rules.split.output,
    output:
        f"{MODELS}/search/{{name}}.json",
    wildcard_constraints:
        name=r"[a-z0-9_]+",
    params:
        trials=SEARCH["trials"],
        epochs=config["models"]["epochs"],
        seed=config["models"]["seed"],
    threads: config["models"]["threads"]
    log:
        "results/logs/search/{name}.log",
    shell:
        "perfgraph search --dataset {TRAIN_DATA} --split {input.split} --model {wildcards.name} "
        "--out {output} --trials {params.trials} --epochs {params.epochs} --seed {params.seed} "
        "--threads {threads} > {log} 2>&1"


def search_result(wildcards):
    return [f"{MODELS}/search/{wildcards.model}.json"] if SEARCH["enabled"] else []


def hparams_args(wildcards):
    """The search's choice when it runs, else the config's models.hparams for this model."""
    if SEARCH["enabled"]:
        return f"--search {MODELS}/search/{wildcards.model}.json"
    return "--config " + shlex.quote(json.dumps(config["models"]["hparams"].get(wildcards.model, {}), sort_keys=True))


rule train:
    """Train a model's runs (GNN or baseline; seeds models.seed, +1, ...) on the training programs,
    each early-stopped on validation. One process for the runs: a run's own start-up (Python,
    PyTorch Geometric, the tables) was 8 s of its 60-90 on 2 cores."""
    input:
        dataset_tables(TRAIN_DATA),
        split=rules.split.output,
        search=search_result,
    output:
        checkpoint=[f"{MODELS}/{{model}}/{r}checkpoint.pt" for r in RUN_SUBDIRS],
        history=[f"{MODELS}/{{model}}/{r}history.json" for r in RUN_SUBDIRS],
        meta=[f"{MODELS}/{{model}}/{r}meta.json" for r in RUN_SUBDIRS],
    wildcard_constraints:
        model=r"[a-z0-9_]+",
    params:
        epochs=config["models"]["epochs"],
        seed=config["models"]["seed"],
        runs=config["models"]["seeds"],
        hparams=hparams_args,
    threads: config["models"]["threads"]
    resources:
        mem_mb=4000,
    log:
        f"results/logs/train/{{model}}.log",
    shell:
        "perfgraph train --dataset {TRAIN_DATA} --split {input.split} --model {wildcards.model} "
        "--out {MODELS}/{wildcards.model} --epochs {params.epochs} --seed {params.seed} --runs {params.runs} "
        "--threads {threads} {params.hparams} > {log} 2>&1"


rule evaluate:
    """Predict the test and zoo programs with every training run of a model (one process: the
    imports and the dataset once); per-program metrics averaged; prediction tables."""
    input:
        lambda wildcards: checkpoints(MODELS, wildcards.name),
        split=rules.split.output,
    output:
        metrics=[f"{MODELS}/{{name}}/{r}metrics.json" for r in RUN_SUBDIRS],
        predictions=[f"{MODELS}/{{name}}/{r}predictions.parquet" for r in RUN_SUBDIRS],
    wildcard_constraints:
        name=r"[a-z0-9_]+",
    params:
        dirs=lambda wildcards: run_dirs(MODELS, wildcards.name),
    threads: 1
    log:
        "results/logs/evaluate/{name}.log",
    shell:
        "perfgraph evaluate --dataset {TRAIN_DATA} --split {input.split} "
        "--model-dir {params.dirs} --threads {threads} > {log} 2>&1"


rule held_out_split:
    """The dataset built here, every program held out: models trained elsewhere are scored on it."""
    input:
        f"{DATA}/programs.parquet",
    output:
        f"{DATA}/split_held_out.parquet",
    params:
        adapt_on="--adapt-on random" if ADAPT_ON_BUILT else "",
    log:
        "results/logs/split_held_out.log",
    shell:
        "perfgraph split --dataset {DATA} --out {output} --held-out {params.adapt_on} > {log} 2>&1"


rule evaluate_fresh:
    """Cross-machine check: every run of a model trained on models.dataset scored on the dataset built here."""
    input:
        dataset_tables(),
        lambda wildcards: checkpoints(MODELS, wildcards.name),
        split=rules.held_out_split.output,
    output:
        metrics=[f"{MODELS}/{{name}}/{r}{FRESH_SCORES}/metrics.json" for r in RUN_SUBDIRS],
        predictions=[f"{MODELS}/{{name}}/{r}{FRESH_SCORES}/predictions.parquet" for r in RUN_SUBDIRS],
    wildcard_constraints:
        name=r"[a-z0-9_]+",
    params:
        dirs=lambda wildcards: run_dirs(MODELS, wildcards.name),
        out_dirs=lambda wildcards: run_dirs(MODELS, wildcards.name, f"/{FRESH_SCORES}"),
    threads: 1
    log:
        "results/logs/evaluate_fresh/{name}.log",
    shell:
        "perfgraph evaluate --dataset {DATA} --split {input.split} --no-strict "
        "--model-dir {params.dirs} --out-dir {params.out_dirs} --threads {threads} > {log} 2>&1"


rule adapt:
    """Fine-tune the trained models on this machine's timings: the random programs built here
    (adapt.on_built), or programs adapt times itself within adapt.budget_min."""
    input:
        checkpoints(MODELS, *ADAPT_MODELS),
        dataset_tables(TRAIN_DATA),
        built=(dataset_tables() + rules.held_out_split.output) if ADAPT_ON_BUILT else [],
    output:
        record=f"{ADAPTED}/adapt.json",
        checkpoints=expand(f"{ADAPTED}/{{run}}/checkpoint.pt", run=adapted_runs()),
    params:
        names=" ".join(ADAPT_MODELS),
        settings=shlex.quote(as_json("adapt")),
        timing=shlex.quote(timing_json()),
        seeds=config["models"]["seeds"],
        data=f"--data {DATA} --data-split {rules.held_out_split.output[0]}" if ADAPT_ON_BUILT else "",
    # Timing programs of its own holds the machine, as bench does; fine-tuning alone, two threads.
    threads: 2 if ADAPT_ON_BUILT else timing_threads
    resources:
        bench_slot=0 if ADAPT_ON_BUILT else 1,
    log:
        "results/logs/adapt.log",
    shell:
        "perfgraph adapt --models-dir {MODELS} --models {params.names} --out {ADAPTED} --seeds {params.seeds} "
        "--jobs {threads} --threads {threads} --settings {params.settings} --timing {params.timing} "
        "{params.data} > {log} 2>&1"


rule evaluate_adapted:
    """The adapted runs of a model scored on the dataset built here, as the models trained elsewhere are."""
    input:
        dataset_tables(),
        lambda wildcards: [f"{ADAPTED}/{r}/checkpoint.pt" for r in runs_of(wildcards.name)],
        split=rules.held_out_split.output,
    output:
        metrics=[f"{ADAPTED}/{{name}}/{r}{FRESH_SCORES}/metrics.json" for r in RUN_SUBDIRS],
        predictions=[f"{ADAPTED}/{{name}}/{r}{FRESH_SCORES}/predictions.parquet" for r in RUN_SUBDIRS],
    wildcard_constraints:
        name=r"[a-z0-9_]+",
    params:
        dirs=lambda wildcards: run_dirs(ADAPTED, wildcards.name),
        out_dirs=lambda wildcards: run_dirs(ADAPTED, wildcards.name, f"/{FRESH_SCORES}"),
    threads: 1
    log:
        "results/logs/evaluate_adapted/{name}.log",
    shell:
        "perfgraph evaluate --dataset {DATA} --split {input.split} --no-strict "
        "--model-dir {params.dirs} --out-dir {params.out_dirs} --threads {threads} > {log} 2>&1"


def fresh_inputs():
    if not EXTERNAL_TRAIN_DATA:
        return []
    adapted = expand(rules.evaluate_adapted.output.metrics, name=ADAPT_MODELS) if ADAPT else []
    return dataset_tables() + expand(rules.evaluate_fresh.output.metrics, name=config["models"]["names"]) + adapted


def fresh_args():
    """The fresh dataset's scores, and the models' picks on its zoo and user programs."""
    if EXTERNAL_TRAIN_DATA:
        adapted = f" --adapted-dir {ADAPTED}" if ADAPT else ""
        return (f"--fresh-dataset {DATA} --fresh-dir {FRESH_SCORES} --selection-dataset {DATA} "
                f"--selection-dir {FRESH_SCORES}{adapted}")
    return f"--selection-dataset {DATA}"


rule summarize:
    """All models' metrics beside the noise floor, and the headline error ratios."""
    input:
        expand(rules.evaluate.output.metrics, name=config["models"]["names"]),
        fresh_inputs(),
        split=rules.split.output,
    output:
        f"{MODELS}/summary.json",
    params:
        fresh=fresh_args(),
        names=" ".join(config["models"]["names"]),
        seeds=config["models"]["seeds"],
    log:
        "results/logs/summarize.log",
    shell:
        "perfgraph summarize --models-dir {MODELS} --dataset {TRAIN_DATA} "
        "--split {input.split} --out {output} --models {params.names} --seeds {params.seeds} "
        "{params.fresh} > {log} 2>&1"
