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


# With nothing to draw, refine only writes empty tables: on a cluster that is not worth a job.
if not REFINE:

    localrules:
        refine,


rule refine:
    """Probe-time one program's Adams2019 candidates, then draw and compile more near the fastest
    (sampling.refine; with count 0 it writes empty tables and takes no bench slot)."""
    input:
        entry=rules.compile.input.entry,
        candidates=rules.compile.output.candidates,
        weights=sampler_weights_files,
    output:
        refined=f"{WORK}/{{prog}}/refined.parquet",
        probe=f"{WORK}/{{prog}}/probe.parquet",
    params:
        sampling=as_json("sampling"),
        timing=timing_json(),
    # The probe times alone, like bench; the draws after it compile on every core it holds.
    threads: timing_threads() if REFINE else 1
    resources:
        bench_slot=1 if REFINE else 0,
    log:
        f"results/logs/refine/{{prog}}.log",
    shell:
        "perfgraph refine --entry {input.entry} --candidates {input.candidates} --out {output.refined} "
        "--probe {output.probe} --sampling '{params.sampling}' --timing '{params.timing}' "
        "--calibration-dir {CALIBRATION} > {log} 2>&1"
