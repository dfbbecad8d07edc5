"""Tools for developing and demonstrating the pipeline, not part of it: the embedded S3 server
(SeaweedFS ``weed mini``) and the generated demo data."""
