"""What to train: run configs (run), sweep files and their plans (sweep), the bundled files.

YAML and ``--set`` in, validated and fully resolved configs, run ids and lock-step groups
out; no framework is imported, so planning and ``--dry-run`` answer at once.
"""
