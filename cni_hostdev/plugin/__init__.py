"""The CNI plugin: one module per verb, dispatched from one command table (dispatch.py).

Which device a call may take, and why not, is claims.py (and pool.py for `devices`); giving a
recorded device back, which DEL, GC, a failed ADD and the repair loop all do, is release.py.
"""
