rule featurize:
    """Join every program's work directory into the dataset's Parquet graph tables."""
    input:
        candidates=expand(rules.compile.output.candidates, prog=PROGRAMS),
        refined=expand(rules.refine.output.refined, prog=PROGRAMS),
        program=expand(rules.compile.output.program, prog=PROGRAMS),
        measurements=expand(rules.bench.output.measurements, prog=PROGRAMS),
        samples=expand(rules.bench.output.samples, prog=PROGRAMS),
        retime=rules.retime.output.measurements,
        retime_samples=rules.retime.output.samples,
    output:
        dataset_tables(),
    params:
        work_dirs=expand(f"{WORK}/{{prog}}", prog=PROGRAMS),
    benchmark:
        f"results/benchmarks/{DS}/featurize.tsv"
    log:
        "results/logs/featurize.log",
    shell:
        "perfgraph featurize --out {DATA} --retime {input.retime} --retime-samples {input.retime_samples} "
        "{params.work_dirs} > {log} 2>&1"


rule publish_dataset:
    """Copy the dataset built here to datasets/<dataset>/ with its config and its card (README.md)."""
    input:
        dataset_tables(),
        # ancient: a change to the models' or the report's settings rewrites config.json, but not the dataset
        config=ancient(f"{DATA}/config.json"),
    output:
        [f"datasets/{DS}/{t}" for t in ("README.md", "card.json", "config.json")],
        dataset_tables(f"datasets/{DS}"),
    params:
        command=lambda wildcards: " ".join(
            ["snakemake publish_dataset", f"--cores {CORES}"]
            + [f"--configfile {os.path.relpath(f)}" for f in workflow.configfiles if os.path.relpath(f) != "config/config.yaml"]
        ),
    log:
        "results/logs/publish_dataset.log",
    shell:
        "perfgraph publish --dataset {DATA} --config {input.config} --work-dir {WORK} "
        "--command '{params.command}' --out datasets/{DS} > {log} 2>&1"
