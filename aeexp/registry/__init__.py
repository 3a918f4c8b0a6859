"""Names and what each owns: metrics and statuses (vocab), losses, optimizers, published numbers.

A registry entry owns everything about its name; the config schema, the CLI's choices and
the tables derive from the entries. Nothing here imports above io/ and env/.
"""
