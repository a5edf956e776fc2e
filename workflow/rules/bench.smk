rule bench:
    """Time one program's candidates, alone on the machine (all cores, one bench_slot)."""
    input:
        rules.compile.output.candidates,
    output:
        measurements=f"{WORK}/{{prog}}/measurements.parquet",
        machine=f"{WORK}/{{prog}}/machine.json",
    params:
        timing=as_json("timing"),
    threads: timing_threads()
    resources:
        bench_slot=1,
    benchmark:
        f"results/benchmarks/{DS}/bench/{{prog}}.tsv"
    log:
        f"results/logs/bench/{{prog}}.log",
    shell:
        "python -m pipelines bench --candidates {input} --out {output.measurements} "
        "--machine {output.machine} --timing '{params.timing}' --threads {threads} > {log} 2>&1"


rule retime:
    """Noise floor: re-time a fixed share of all schedules in a separate, later pass."""
    input:
        candidates=expand(f"{WORK}/{{prog}}/candidates.parquet", prog=PROGRAMS),
        first_pass=expand(f"{WORK}/{{prog}}/measurements.parquet", prog=PROGRAMS),
    output:
        f"{WORK}/retime.parquet",
    params:
        timing=as_json("timing"),
        fraction=config["noise"]["fraction"],
    threads: timing_threads()
    resources:
        bench_slot=1,
    benchmark:
        f"results/benchmarks/{DS}/retime.tsv"
    log:
        "results/logs/retime.log",
    shell:
        "python -m pipelines retime --out {output} --timing '{params.timing}' "
        "--fraction {params.fraction} --threads {threads} {input.candidates} > {log} 2>&1"
