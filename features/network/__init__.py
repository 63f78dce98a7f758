"""The network: a verified ImageNet CNN that turns centre crops into embedding vectors.

- base: model specs, the model/runtime/precision choices, weights verification, Embedder (no runtime imports)
- loader: chooses a runtime and imports it (load_embedder, embedder_from_network)
- onnx: the ONNX Runtime embedder (the default); cache: where exported ONNX files live and are trusted
- export: torch -> ONNX, once; int8: the quantised ONNX model
- torch: the architectures and the PyTorch embedder
"""
