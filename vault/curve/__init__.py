"""CurveZMQ on the ZeroMQ links between hosts (dealer -> broker, broker <-> workers, workers
and reconciliation -> collector): key pairs per component and allow-lists of client keys
(keys.py), the ZAP authenticator and the plaintext policy (guard.py).

Imports only the standard library, pyzmq and vault.config: the dealer and the collector on the
mail host use it too.
"""
