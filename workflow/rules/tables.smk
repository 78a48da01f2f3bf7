# Tables and plots from exactly the metrics files of this configuration, beside the paper's numbers.
# `snakemake --report` gathers them.


rule tables:
    input:
        evaluations=GRID.eval_outputs(RESULTS),
        pretrain=pretrain_outputs(),
    output:
        tables=[
            report(f"{RESULTS}/tables/{name}.csv", caption=f"../report/{name}.rst", category="Tables")
            for name in TABLE_NAMES
        ],
        markdown=[f"{RESULTS}/tables/{name}.md" for name in TABLE_NAMES],
        sources=[f"{RESULTS}/tables/{name}.sources.csv" for name in TABLE_NAMES],
    params:
        logs=lambda wc, input: [p for p in input.pretrain if p.endswith("metrics.jsonl")],
        out_dir=lambda wc, output: os.path.dirname(output.tables[0]),
    log:
        f"{LOGS}/tables.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench tables --eval {input.evaluations:q} --pretrain {params.logs:q}"
        " --out-dir {params.out_dir:q} 2> >(tee {log:q} >&2)"


rule plots:
    input:
        evaluations=GRID.eval_outputs(RESULTS),
        pretrain=pretrain_outputs(),
    output:
        [
            report(f"{RESULTS}/plots/{name}.png", caption=f"../report/{name}.rst", category="Plots")
            for name in PLOT_NAMES
        ],
    params:
        logs=lambda wc, input: [p for p in input.pretrain if p.endswith("metrics.jsonl")],
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/plots.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench plots --eval {input.evaluations:q} --pretrain {params.logs:q}"
        " --out-dir {params.out_dir:q} 2> >(tee {log:q} >&2)"
