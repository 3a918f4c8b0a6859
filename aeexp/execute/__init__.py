"""Execution: pending runs -> lock-step groups -> an executor -> run directories.

driver (the only writer of the output folder), executors (the registry: what an executor
is and which exist), local and ray (where groups train), runner (what a worker does with a
group: train, evaluate, hand back each run's files), tracking (MLflow), progress, reach.
"""
