# Downstream stage: every checkpoint (and random init) x task x dataset x split; one metrics JSON per result.
# results/eval/<run>/<task>_<dataset>.json holds the mean over the configured splits (and each split's numbers).


rule features:
    input:
        unpack(eval_inputs),
    output:
        f"{RESULTS}/eval/{{run}}/features/{{dataset}}_split{{split}}.npz",
    params:
        checkpoint=eval_checkpoint,
        model=settings_json(config["model"]),
        settings=settings_json(config["downstream"]["features"]),
    wildcard_constraints:
        dataset="ucf101|hmdb51",
    log:
        f"{LOGS}/features_{{run}}_{{dataset}}_split{{split}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench features --checkpoint {params.checkpoint:q} --manifest {input.manifest:q}"
        " --model {params.model:q} --settings {params.settings:q} --out {output:q} 2> >(tee {log:q} >&2)"


rule probe_or_retrieval:
    input:
        f"{RESULTS}/eval/{{run}}/features/{{dataset}}_split{{split}}.npz",
    output:
        f"{RESULTS}/eval/{{run}}/splits/{{task}}_{{dataset}}_split{{split}}.json",
    params:
        meta=eval_meta,
        model=settings_json(config["model"]),
        settings=lambda wc: settings_json(task_settings(config, wc.task, wc.dataset)),
    wildcard_constraints:
        task="probe|retrieval",
        dataset="ucf101|hmdb51",
    log:
        f"{LOGS}/{{task}}_{{run}}_{{dataset}}_split{{split}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench {wildcards.task} --features {input:q} --model {params.model:q} --meta {params.meta:q}"
        " --settings {params.settings:q} --out {output:q} 2> >(tee {log:q} >&2)"


rule finetune:
    input:
        unpack(eval_inputs),
    output:
        f"{RESULTS}/eval/{{run}}/splits/{{task}}_{{dataset}}_split{{split}}.json",
    params:
        checkpoint=eval_checkpoint,
        meta=eval_meta,
        model=settings_json(config["model"]),
        settings=lambda wc: settings_json(task_settings(config, wc.task, wc.dataset)),
    wildcard_constraints:
        task="ft|lft",
        dataset="ucf101|hmdb51",
    log:
        f"{LOGS}/{{task}}_{{run}}_{{dataset}}_split{{split}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench finetune {wildcards.task} --checkpoint {params.checkpoint:q} --manifest {input.manifest:q}"
        " --model {params.model:q} --meta {params.meta:q} --settings {params.settings:q} --out {output:q}"
        " 2> >(tee {log:q} >&2)"


rule merge_splits:
    input:
        lambda wc: expand(f"{RESULTS}/eval/{wc.run}/splits/{wc.task}_{wc.dataset}_split{{split}}.json",
                          split=config["downstream"]["splits"]),
    output:
        f"{RESULTS}/eval/{{run}}/{{task}}_{{dataset}}.json",
    wildcard_constraints:
        task="ft|lft|probe|retrieval",
        dataset="ucf101|hmdb51",
    log:
        f"{LOGS}/merge_splits_{{run}}_{{task}}_{{dataset}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench merge-splits {input:q} --out {output:q} 2> {log:q}"


rule export_features:
    input:
        unpack(lambda wc: {"manifest": manifest_path("activitynet"),
                           **({"checkpoint": EVAL_RUNS[wc.run]["checkpoint"]} if EVAL_RUNS[wc.run]["checkpoint"]
                              else {})}),
    output:
        f"{RESULTS}/eval/{{run}}/anet_features/export.json",
    params:
        checkpoint=eval_checkpoint,
        model=settings_json(config["model"]),
        settings=settings_json(config["localization"]["export"]),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/export_features_{{run}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench export-features --checkpoint {params.checkpoint:q} --manifest {input.manifest:q}"
        " --model {params.model:q} --settings {params.settings:q} --out-dir {params.out_dir:q}"
        " 2> >(tee {log:q} >&2)"


rule localize:
    input:
        export=f"{RESULTS}/eval/{{run}}/anet_features/export.json",
        manifest=manifest_path("activitynet"),  # the ground truth JSON is read (or generated) before it
    output:
        predictions=f"{RESULTS}/eval/{{run}}/localization_predictions.json",
        metrics=f"{RESULTS}/eval/{{run}}/localization_activitynet.json",
    params:
        features=lambda wc, input: os.path.dirname(input.export),
        ground_truth=lambda wc: dataset_paths(config, "activitynet")["json"],
        meta=lambda wc: settings_json({"run": wc.run, "checkpoint": EVAL_RUNS[wc.run]["checkpoint"],
                                       "pretrain": EVAL_RUNS[wc.run]["pretrain"], "dataset": "activitynet",
                                       "subset": "validation",
                                       "finetune_input": f"{config['model']['frames']}x{config['model']['size']}"}),
        model=settings_json(config["model"]),
        settings=settings_json(config["localization"]["probe"]),
    log:
        f"{LOGS}/localize_{{run}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench localize --features {params.features:q} --ground-truth {params.ground_truth:q}"
        " --predictions {output.predictions:q} --model {params.model:q} --meta {params.meta:q}"
        " --settings {params.settings:q} --out {output.metrics:q} 2> >(tee {log:q} >&2)"
