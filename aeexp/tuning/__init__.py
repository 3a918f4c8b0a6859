"""Adaptive search for ``aeexp tune`` and ``aeexp.tune``: Optuna, lock-step batches, pruning.

``search`` reads and checks a search file, ``space`` its search spaces, ``stop`` is the
pruning rule a job carries to its worker, ``driver`` the loop over batches, ``best`` the sweep
file of the best points, ``figure`` the trials' figure. Nothing here imports Optuna or
TensorFlow at import time: ``aeexp tune --help`` and a bad search file answer at once.
(Not named ``tune``: ``aeexp.tune`` is the notebook's function.)
"""
