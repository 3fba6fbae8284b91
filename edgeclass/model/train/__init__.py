"""``edgeclass train``: your own classes from a folder of folders, on a CPU.

One job per module: :mod:`.dataset` (ImageFolder layout, checks, split), :mod:`.backbone`
(timm backbone -> IR, torch side), :mod:`.features` (OpenVINO features through the run
decode path), :mod:`.head` (linear head, temperature, threshold), :mod:`.graft` (head ->
OpenVINO ops), :mod:`.finetune` (torch fine-tuning), :mod:`.evaluate_report` (held-out
metrics, report.json), :mod:`.html` (report.html), :mod:`.trainer` (the stages in order).
"""
