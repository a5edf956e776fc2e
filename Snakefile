# perfgraph: random programs -> schedules -> timed -> Parquet graph tables -> models -> report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/compile.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/featurize.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/tvm.smk"
include: "workflow/rules/report.smk"


# Both publish rules write datasets/<dataset>/: a file asked for is the Halide dataset's; the TVM
# one is published by naming its rule (snakemake publish_tvm_dataset).
ruleorder: publish_dataset > publish_tvm_dataset


rule all:
    input:
        get_final_output(),
        get_tvm_final_output(),
    default_target: True
