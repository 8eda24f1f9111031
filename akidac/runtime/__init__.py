"""Running hybrid models: `HybridSession`, its comparison with the float model, bisection.

`HybridSession` imports only the AkidaOp node format, the program decoder, the hardware model and
onnxruntime: a hybrid model runs without the compiler. Hybrid models are built at compile time by
`akidac.backends.hybrid`.
"""
