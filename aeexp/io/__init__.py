"""Files in and out, bounded and checked: readers, paths, YAML (yamlio).

The floor every layer above stands on: it imports only :mod:`aeexp.errors`.
"""
