"""Private building blocks of :mod:`changedetect.coregister` (pure numpy / dask)."""
