"""Extraction: pending rows of the DB in, stored features out.

- run.py: the driver loop every run shares (model, stamp, progress, storing, finishing);
- local.py: decode worker processes (workers.py) beside the network, on this machine;
- dask.py / dask_worker.py: the same loop with shards computed on a Dask cluster.
"""
