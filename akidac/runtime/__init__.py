"""Running hybrid models: `HybridSession` and its comparison with the float model.

`HybridSession` imports only the AkidaOp node format, the program decoder, the hardware model and
onnxruntime: a hybrid model runs without the compiler. Hybrid models are built at compile time by
`akidac.backends.hybrid`; the layer-by-layer comparison of `akidac bisect`, which reads the
compiled graph, is `akidac.bisect`.
"""
