"""Code generators: the Akida program binary and the CPU fallback."""
