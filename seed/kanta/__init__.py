"""Kanta as kanta-seed meets it: the contract (paths, payloads, the event code rule; docs/kanta-contract.md)
and the client of the coordinating process (lists, images, blobs, deletes, clusters)."""
