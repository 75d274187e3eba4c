"""The reliability suite (`make reliability`): poison files, crashes, overlapping runs, the
outbox after a kill, a lost or corrupt store, and who may reach the server, each reproduced
against the real `baocao` command line. See reliability/run.py."""
