"""Fine-tuning on your own data: load and lint a dataset, train LoRA / QLoRA / full, then
merge, export to GGUF and compare with the base model.

Modules: :mod:`.data` (formats, loading), :mod:`.formatting` (chat template + loss mask),
:mod:`.lint` (``llmlab data check``), :mod:`.config` / :mod:`.train` (``llmlab finetune``),
:mod:`.runcard`, :mod:`.merge`, :mod:`.export` / :mod:`.gguf_lora`, :mod:`.compare`,
:mod:`.job` (training as a background job, for the server and the web UI).
Importing this package imports neither torch nor transformers.
"""
