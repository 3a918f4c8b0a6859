"""Files in and out, bounded and checked: readers, paths, YAML (yamlio), atomic writes.

The floor every layer above stands on: it imports only :mod:`aeexp.errors`.
"""
