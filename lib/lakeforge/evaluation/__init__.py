"""Model evaluation against business objectives: costs and constraints, slices, champion/challenger gate."""
