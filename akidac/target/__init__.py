"""The Akida hardware description, as data: layer records, limits, device presets, and the
arithmetic over them alone (footprints, hardware passes, the performance estimate).

Imports nothing of akidac, so every other part (and a runtime without the compiler) can read it.
"""
