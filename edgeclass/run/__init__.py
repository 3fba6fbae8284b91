"""Running and writing results: the pipeline, the runner, output files, resume journal, lock, stopping."""
