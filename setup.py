"""The one compiled part: edgeclass/media/_resample.c (see edgeclass/media/resample_native.py).

Optional: without a C compiler the install still succeeds and the resampler uses its NumPy
fallback (the same bytes, 4.3-4.8x the compiled pass's CPU per resize: docs/benchmarks.md).
Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "edgeclass.media._resample",
            sources=["edgeclass/media/_resample.c"],
            extra_compile_args=["-O3", "-fno-strict-aliasing"],
            optional=True,
        )
    ]
)
