rule report:
    """The prediction-error comparison as a self-contained HTML page and a Markdown summary."""
    input:
        dataset_tables(),
        summary=rules.summarize.output,
    output:
        html="results/report/index.html",
        markdown="results/report/summary.md",
    params:
        configfile=workflow.overwrite_configfiles[-1] if workflow.overwrite_configfiles else "config/config.yaml",
    log:
        "results/logs/report.log",
    shell:
        "python -m report --dataset {DATA} --models {MODELS} --config {params.configfile} "
        "--out results/report > {log} 2>&1"
