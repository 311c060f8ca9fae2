"""ONNX export of the redirection model: one graph (encode -> rotate gaze / head -> decode -> eye composite)
for ONNX Runtime and other runtimes, its provenance in the file's metadata, and its parity with PyTorch.

    onnx_graph.py   RedirectionGraph (the graph's interface as a module), the export to bytes, atomic writing
    onnx_export.py  a run directory, checkpoint or the shipped reference -> FILE.onnx with its metadata
    onnx_parity.py  ONNX Runtime sessions, the metadata read back, ONNX Runtime vs Redirector.redirect

Needs the `export` extra (onnx, onnxruntime), imported only when called: a missing one is a RegazeError.
Imports the leaves (errors, checkpoint) and model/ only; commands/ imports it, nothing else does.
"""
from regaze.export.onnx_export import export_checkpoint, export_redirector, interface_metadata
from regaze.export.onnx_graph import INPUT_NAMES, OUTPUT_NAMES, RedirectionGraph, example_inputs
from regaze.export.onnx_parity import onnx_session, parity_report, read_metadata, run_onnx, to_uint8

__all__ = ["export_checkpoint", "export_redirector", "interface_metadata", "INPUT_NAMES", "OUTPUT_NAMES",
           "RedirectionGraph", "example_inputs", "onnx_session", "parity_report", "read_metadata", "run_onnx",
           "to_uint8"]
