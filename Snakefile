# hico-bench: the whole benchmark as one DAG.
#   snakemake --cores all                               the tiny synthetic benchmark (config/config.yaml)
#   snakemake --cores all --configfile config/paper.yaml   the paper's recipe on your copies of the datasets
# Each rule runs one `hico-bench <verb>` command; see README.md for the stages and config/README.md for every key.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/tables.smk"


rule all:
    default_target: True
    input:
        all_targets(),
