"""What training left: run directories (rundir), the ledger of statuses and runs.csv, locks.

Only the driver writes here; tables, reports and DataFrames read it, never the training
process.
"""
