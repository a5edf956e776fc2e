rule featurize:
    """Join every program's work directory into the dataset's Parquet graph tables."""
    input:
        candidates=expand(rules.compile.output.candidates, prog=PROGRAMS),
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
        "python -m featurize build --out {DATA} --retime {input.retime} --retime-samples {input.retime_samples} "
        "{params.work_dirs} > {log} 2>&1"
