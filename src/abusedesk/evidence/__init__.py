"""Proof: content-addressed evidence blobs, the hash-chained audit log, evidence bundles for officials."""
