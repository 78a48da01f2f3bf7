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
    params:
        eval_dir=lambda wc: EVAL_DIR,
        pretrain_dir=lambda wc: PRETRAIN_DIR,
        out_dir=lambda wc, output: os.path.dirname(output.tables[0]),
    log:
        f"{LOGS}/tables.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench tables --eval-dir {params.eval_dir:q} --pretrain-dir {params.pretrain_dir:q}"
        " --out-dir {params.out_dir:q} 2> >(tee {log:q} >&2)"


rule plots:
    input:
        eval_targets(),
        [f"{RESULTS}/pretrain/{run}/metrics.jsonl" for run in PRETRAIN_RUNS],
    output:
        [
            report(f"{RESULTS}/plots/{name}.png", caption=f"../report/{name}.rst", category="Plots")
            for name in PLOT_NAMES
        ],
    params:
        eval_dir=lambda wc: EVAL_DIR,
        pretrain_dir=lambda wc: PRETRAIN_DIR,
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/plots.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench plots --eval-dir {params.eval_dir:q} --pretrain-dir {params.pretrain_dir:q}"
        " --out-dir {params.out_dir:q} 2> >(tee {log:q} >&2)"
