"""``edgeclass compare OLD NEW``: what a candidate model would change before it goes live.

One job per module: :mod:`.pairs` (each image read and decoded once, both models on its
crops, pipelined like ``run``), :mod:`.stats` (agreement, flips, per-class changes, accuracies
and the verdict, with the INT8 gate's bootstrap statistics), :mod:`.html` (``report.html``),
:mod:`.verdicts` (the record of the last verdict per pair of models, which ``promote`` reads),
:mod:`.run` (the stages in order, and ``report.json``).
"""
