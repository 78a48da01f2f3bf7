# Pretraining stage: one job per run of the grid (variants x pretraining sets x seeds, see config.yaml).


rule pretrain:
    input:
        manifest=lambda wc: manifest_path(pretrain_job(wc).identity.set),
    output:
        checkpoint=f"{RESULTS}/pretrain/{{run}}/checkpoint_last.pt",
        metrics=f"{RESULTS}/pretrain/{{run}}/metrics.jsonl",
        identity=f"{RESULTS}/pretrain/{{run}}/run.json",
    params:
        settings=lambda wc: settings_json(pretrain_job(wc).settings),
        identity=lambda wc: settings_json(pretrain_job(wc).identity.as_dict()),
        launcher=lambda wc: launcher(pretrain_job(wc).gpus),
        out_dir=lambda wc, output: os.path.dirname(output.checkpoint),
    wildcard_constraints:
        run="|".join(PRETRAIN_RUNS) or "no-run",
    resources:
        gpu=lambda wc: pretrain_job(wc).gpus,
    threads: 1
    log:
        f"{LOGS}/pretrain_{{run}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "trap '' TERM; {params.launcher} pretrain --manifest {input.manifest:q} --out-dir {params.out_dir:q}"
        " --settings {params.settings:q} --run {params.identity:q} 2> >(tee {log:q} >&2)"
