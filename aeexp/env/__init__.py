"""What a process runs on and with: the host, the framework backend, the locked versions, extras.

Below every layer that trains or reads: it imports only :mod:`aeexp.errors`, and no framework
until a function asks for one.
"""
