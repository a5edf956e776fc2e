rule generate:
    """Write one program's entry: its seed and spec, zoo name or user file."""
    input:
        user_program_file,
    output:
        f"{WORK}/programs/{{prog}}.json",
    params:
        source=generate_args,
    benchmark:
        f"results/benchmarks/{DS}/generate/{{prog}}.tsv"
    log:
        f"results/logs/generate/{{prog}}.log",
    shell:
        "perfgraph generate --program-id {wildcards.prog} {params.source} "
        "--out {output} > {log} 2>&1"
