"""The steps flows are made of, grouped by what they touch."""
