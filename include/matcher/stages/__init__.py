"""The pipeline's stages, one module per concept, each a function from input URIs to output URIs.

They import foundations and each other, never serving or pages.
"""
