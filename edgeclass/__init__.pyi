# The types of edgeclass/__init__.py's names, which it imports on first use.
from edgeclass.errors import EdgeclassError as EdgeclassError
from edgeclass.results import Prediction as Prediction, Result as Result, Status as Status
from edgeclass.run.plan import (
    Reporter as Reporter,
    RunPlan as RunPlan,
    RunStart as RunStart,
    classify as classify,
    plan_run as plan_run,
)
from edgeclass.run.context import RunSummary as RunSummary

__version__: str
__all__: list[str]
