"""Statistics and measurements the reports rest on: intervals, corrections, protocol noise."""
