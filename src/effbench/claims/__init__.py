"""Claim cards: a paper's published speed claim, re-measured side by side on your devices and runtimes.

schema (what a card says) -> library (where cards come from) -> plan (the cells a claim needs here,
and which published settings could not apply) -> verify (interleaved runs, stored tagged) ->
verdict (measured ratio, its bootstrap CI, holds / does not hold / inconclusive).
"""
