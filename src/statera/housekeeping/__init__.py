"""Housekeeping: purge expired DELETED rows, rotate amphora server certificates before they
expire, keep a pool of spare amphorae ready, and remove what nothing owns any more.

Each task is a function of (database, drivers, settings, now) doing one pass, so tests call
them directly; ``Housekeeper`` runs them on their intervals in background threads
(``statera housekeeping`` and ``statera up``).
"""
