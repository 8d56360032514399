"""Training on the workstation: soft prompt, adapters (through peft), losses, the two stages.

Read top-down:

- ``stages``: ``train(TrainConfig)``: the source stage (English) and the target stage (one language),
  the source stage first when it is missing; writes the run directory.
- ``config``: ``TrainConfig``, every setting (serialised into ``run.json``).
- ``data``: gathers a stage's data (specs -> examples -> windows; synthetic data; parallel pairs).
- ``features``: QA examples -> windows with span labels (through ``runtime.features``).
- ``lexicon`` / ``synthetic``: Dice lexicon from parallel pairs; pluggable synthetic generators.
- ``models``: the trainable model of each stage (peft LoRA, soft prompt init, frozen shared head).
- ``model``: ``PromptedQAModel`` (prompt in front, logits of the prompt dropped).
- ``objective``: ``L_task + lambda L_align + beta ||theta - theta_0||^2`` as one module.
- ``batches``: deterministic batches from the seed and the step.
- ``loop``: the accelerate loop, progress, metrics, Ctrl-C; ``checkpoint``: safetensors + JSON.
- ``runs``: the run-directory contract read by evaluation and export.
- ``report``: curves PNG and loss summaries.
"""
