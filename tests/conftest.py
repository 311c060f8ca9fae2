"""Test-suite plumbing. The `isolated` marker lives in tests/isolation.py: a marked test runs in a child
process with a timeout, so that a segfault or an abort inside a native library (torch 2.13.0's oneDNN on
AVX2 did both, see regaze/model/layers.py:PointwiseConv2d) or a hang fails that test alone.
"""
pytest_plugins = ["isolation"]
