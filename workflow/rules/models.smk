rule split:
    """Assign programs to train / val / test by a hash of program_id; zoo programs are 'zoo'."""
    input:
        f"{DATA}/programs.parquet",
    output:
        f"{DATA}/split.parquet",
    params:
        train=config["models"]["split"]["train"],
        val=config["models"]["split"]["val"],
        seed=config["models"]["seed"],
    log:
        "results/logs/split.log",
    shell:
        "python -m models split --dataset {DATA} --out {output} "
        "--train {params.train} --val {params.val} --seed {params.seed} > {log} 2>&1"


rule train:
    """Train one model (GNN or baseline) on the training programs; early stop on validation."""
    input:
        dataset_tables(),
        split=rules.split.output,
    output:
        checkpoint=f"{MODELS}/{{model}}/checkpoint.pt",
        history=f"{MODELS}/{{model}}/history.json",
        meta=f"{MODELS}/{{model}}/meta.json",
    params:
        name=model_name,
        epochs=config["models"]["epochs"],
        seed=model_seed,
    threads: config["models"]["threads"]
    resources:
        mem_mb=4000,
    log:
        f"results/logs/train/{{model}}.log",
    shell:
        "python -m models train --dataset {DATA} --split {input.split} --model {params.name} "
        "--out {MODELS}/{wildcards.model} --epochs {params.epochs} --seed {params.seed} "
        "--threads {threads} > {log} 2>&1"


rule evaluate:
    """Predict the test and zoo programs; per-program metrics averaged; prediction table."""
    input:
        rules.train.output.checkpoint,
        split=rules.split.output,
    output:
        metrics=f"{MODELS}/{{model}}/metrics.json",
        predictions=f"{MODELS}/{{model}}/predictions.parquet",
    threads: 1
    log:
        f"results/logs/evaluate/{{model}}.log",
    shell:
        "python -m models evaluate --dataset {DATA} --split {input.split} "
        "--model-dir {MODELS}/{wildcards.model} --threads {threads} > {log} 2>&1"


rule summarize:
    """All models' metrics beside the noise floor, and the headline error ratios."""
    input:
        expand(rules.evaluate.output.metrics, model=model_runs()),
        split=rules.split.output,
    output:
        f"{MODELS}/summary.json",
    log:
        "results/logs/summarize.log",
    shell:
        "python -m models summarize --models-dir {MODELS} --dataset {DATA} "
        "--split {input.split} --out {output} > {log} 2>&1"
