"""Model files: what a model folder holds and how it is read, written and swapped.

``folder`` (the folder layout, locks, model ids), ``metadata`` (rt_info: labels, preprocessing,
provenance, Model API keys), ``ir`` (reading and writing IR pairs), ``records`` (the INT8
calibration and gate records and the training report, as typed data; ``provenance``: the CPUs an
INT8 model was made for and measured on), ``verdicts`` (what `compare` decided, read by
`promote`), ``promote`` (the live link, swap and rollback). Below the engine and model building;
imports nothing of theirs.
"""
