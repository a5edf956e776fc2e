rule compile:
    """Sample candidate schedules of one program and compile each (cores in parallel)."""
    input:
        entry=f"{WORK}/programs/{{prog}}.json",
        weights=sampler_weights_files,
    output:
        candidates=f"{WORK}/{{prog}}/candidates.parquet",
        dag=f"{WORK}/{{prog}}/dag.log",
        program=f"{WORK}/{{prog}}/program.json",
    params:
        sampling=as_json("sampling"),
        parallelism=SCHEDULE_THREADS,
    threads: 1
    resources:
        mem_mb=2000,
    benchmark:
        f"results/benchmarks/{DS}/compile/{{prog}}.tsv"
    log:
        f"results/logs/compile/{{prog}}.log",
    shell:
        "perfgraph compile --entry {input.entry} --out-dir {WORK}/{wildcards.prog} "
        "--sampling '{params.sampling}' --parallelism {params.parallelism} > {log} 2>&1"
