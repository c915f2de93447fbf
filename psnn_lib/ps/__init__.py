"""The PS core: Algorithm 1 of paper 1 (fit, grid, inverse) and the fit cache."""
