"""UNSW-NB15 as data: the reader and cleaner of both public formats, and the synthetic flow generator.

Used by the replay producer and by training; imports only nids_common.
"""
