rule config_used:
    """The validated config (with defaults filled in), kept beside the dataset it built."""
    output:
        f"{DATA}/config.json",
    params:
        config=json.dumps(config, sort_keys=True),
    run:
        from featurize.schema import write_json

        write_json(json.loads(params.config), output[0])


rule report:
    """The prediction-error comparison as a self-contained HTML page and a Markdown summary."""
    input:
        dataset_tables(TRAIN_DATA),
        summary=rules.summarize.output,
        split=rules.split.output,
        tvm=[p for p in get_tvm_final_output() if p.endswith("summary.json")],
        config=rules.config_used.output,
    output:
        html=report("results/report/index.html", caption="../report/report.rst", category="Report"),
        markdown=report("results/report/summary.md", caption="../report/summary.rst", category="Report"),
        figures=report(
            directory("results/report/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        "results/logs/report.log",
    shell:
        "perfgraph report --dataset {TRAIN_DATA} --split {input.split} --models {MODELS} --config {input.config} "
        "--out results/report > {log} 2>&1"
