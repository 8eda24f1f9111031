"""Hybrid models: building them from the compiled IR, and running them (`HybridSession`).

`HybridSession` imports only the program decoder, the hardware model and onnxruntime: a hybrid
model runs without the compiler.
"""
