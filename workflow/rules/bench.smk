# Timing rules: no `benchmark:` directive here. Snakemake's benchmark polls the job's processes
# (2 Hz for its first 15 s), which would sit beside the timed code; the windows' own start
# times (timing_samples.started_s) say how long each job took.


rule bench:
    """Time one program's candidates by the protocol, alone on the machine (all cores, one bench_slot)."""
    input:
        rules.compile.output.candidates,
        rules.refine.output.refined,
    output:
        measurements=f"{WORK}/{{prog}}/measurements.parquet",
        samples=f"{WORK}/{{prog}}/timing_samples.parquet",
        machine=f"{WORK}/{{prog}}/machine.json",
    params:
        timing=timing_json(),
    threads: timing_threads()
    resources:
        bench_slot=1,
    log:
        f"results/logs/bench/{{prog}}.log",
    shell:
        "perfgraph bench --candidates {input} --out {output.measurements} --samples {output.samples} "
        "--machine {output.machine} --timing '{params.timing}' "
        "--calibration-dir {CALIBRATION} > {log} 2>&1"


rule retime:
    """Drift: re-time a fixed share of the featurized schedules in a separate, later pass."""
    input:
        candidates=expand(f"{WORK}/{{prog}}/{{table}}.parquet", prog=PROGRAMS, table=("candidates", "refined")),
        first_pass=expand(f"{WORK}/{{prog}}/measurements.parquet", prog=PROGRAMS),
    output:
        measurements=f"{WORK}/retime.parquet",
        samples=f"{WORK}/retime_samples.parquet",
    params:
        timing=timing_json(),
        fraction=config["noise"]["fraction"],
    threads: timing_threads()
    resources:
        bench_slot=1,
    log:
        "results/logs/retime.log",
    shell:
        "perfgraph retime --out {output.measurements} --samples {output.samples} "
        "--timing '{params.timing}' --fraction {params.fraction} "
        "--calibration-dir {CALIBRATION} {input.candidates} > {log} 2>&1"
