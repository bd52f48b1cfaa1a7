"""interview-tracking feedback: metrics back to feeders.json, placement history, reports."""
