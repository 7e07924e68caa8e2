"""Online experiments analysed in batch: A/B statistics and the analysis step."""
