"""The Akida hardware description, as data: layer records, limits, device presets.

Imports nothing of akidac, so every other part (and a runtime without the compiler) can read it.
"""
