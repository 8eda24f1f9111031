"""The Akida backend: lowering to layer records and the program binary."""
