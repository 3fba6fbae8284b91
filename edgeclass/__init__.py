"""edgeclass: MobileViTv2 image classification on CPU-only edge boxes with OpenVINO.

The library (docs/library.md)::

    import edgeclass

    plan = edgeclass.plan_run("photos/", model="models/current", output="results.csv")
    summary = edgeclass.classify(plan)          # a RunSummary; rows in results.csv

``plan_run`` checks everything and resolves every default before any work, ``classify`` runs the
plan (here or on Ray); a :class:`Reporter` receives each row as a typed :class:`Result`. Errors
are :class:`EdgeclassError` s, whose ``exit_code`` is the CLI's. The names below are imported on
first use, so ``import edgeclass`` (and the CLI's start) stays cheap; their types are in
``__init__.pyi``.
"""

import importlib

__version__ = "0.2.0"

_HOMES = {
    "plan_run": "edgeclass.run.plan", "classify": "edgeclass.run.plan", "RunPlan": "edgeclass.run.plan",
    "RunStart": "edgeclass.run.plan", "Reporter": "edgeclass.run.plan", "RunSummary": "edgeclass.run.context",
    "Result": "edgeclass.results", "Prediction": "edgeclass.results", "Status": "edgeclass.results",
    "EdgeclassError": "edgeclass.errors",
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'edgeclass' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
