// Package verifiers holds no Go: it is the home of the reference verifiers
// for people who consume the record stream (docs/consumers.md), in Python
// (python/edge_verify.py: cbor2 and cryptography) and JavaScript
// (js/edge-verify.mjs: Node's crypto and cborg, pinned by js/package-lock.json).
// Its test runs both against the Go known-answer records, against records
// re-signed with a non-deterministic encoding, and against a live demo's
// output, and compares what they report with package attest.
package verifiers
