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


rule all:
    input:
        get_final_output(),
        get_tvm_final_output(),
    default_target: True
