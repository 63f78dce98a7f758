"""Extraction: pending rows of the DB in, stored features out.

- run.py: the driver loop every run shares (model, stamp, storing, finishing);
- progress.py: its progress bar, and how Ctrl-C or `kill` stop it cleanly;
- exif_backfill.py / keypoints_backfill.py: what older DBs lack, read from the files;
- local.py: decode worker processes (workers.py) beside the network, on this machine;
- dask.py / dask_worker.py: the same loop with shards computed on a Dask cluster.
"""
