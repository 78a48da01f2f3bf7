# Tables and plots: every metrics file of the run, beside the paper's numbers. `snakemake --report` gathers them.

rule tables:
    input:
        eval_targets(),
        [f"{RESULTS}/pretrain/{run}/metrics.jsonl" for run in PRETRAIN_RUNS],
    output:
        tables=[
            report(f"{RESULTS}/tables/{name}.csv", caption=f"../report/{name}.rst", category="Tables")
            for name in TABLE_NAMES
        ],
        markdown=[f"{RESULTS}/tables/{name}.md" for name in TABLE_NAMES],
        sources=[f"{RESULTS}/tables/{name}.sources.csv" for name in TABLE_NAMES],
    log:
        f"{LOGS}/tables.log",
    shell:
        "hico-bench tables --eval-dir {RESULTS}/eval --pretrain-dir {RESULTS}/pretrain"
        " --out-dir {RESULTS}/tables 2> >(tee {log:q} >&2)"


rule plots:
    input:
        eval_targets(),
        [f"{RESULTS}/pretrain/{run}/metrics.jsonl" for run in PRETRAIN_RUNS],
    output:
        [
            report(f"{RESULTS}/plots/{name}.png", caption=f"../report/{name}.rst", category="Plots")
            for name in PLOT_NAMES
        ],
    log:
        f"{LOGS}/plots.log",
    shell:
        "hico-bench plots --eval-dir {RESULTS}/eval --pretrain-dir {RESULTS}/pretrain"
        " --out-dir {RESULTS}/plots 2> >(tee {log:q} >&2)"
