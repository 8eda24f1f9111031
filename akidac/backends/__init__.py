"""Code generators: the Akida program binary, and the hybrid model that embeds the programs.

`akida/` lowers regions to program binaries and holds the hardware model; `hybrid` is the emit
step that joins those programs and the CPU ops (as ONNX nodes) into one hybrid ONNX model.
"""
