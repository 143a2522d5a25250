"""The static results site: data files per cell history, pages per device, model and cell, change points
and a regressions feed (`bench site build|serve`)."""
