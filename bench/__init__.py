"""Benchmarks of the engine host against its peers: bench/run starts them."""
