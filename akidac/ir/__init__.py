"""The IR: types, values, ops, graph, verifier, text form, akida dialect, reference interpreter."""
