"""Pictures people look at: result grids, mode comparisons, embedding maps."""
