"""The data layer: reading, montages, preprocessing, the window corpus and labelled tasks.

Never imports :mod:`neuript.model`.
"""
