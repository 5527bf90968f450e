// Package attest is the device's identity and the attestation record format:
// the Signer (an Ed25519 key file now; secure elements later, chosen by URI),
// the claim set, its deterministic CBOR payload, the COSE_Sign1 envelope, the
// hash chain that links records, and the verifier side (Decode, Verify,
// Audit). docs/attestation.md is the normative description of the bytes.
//
// The package does no I/O except reading and creating the key file, and
// reading the io.Reader handed to ReadSequence.
//
// Concurrency: a Signer is safe for concurrent use, so the pipeline can sign
// on several cores while it keeps the chain strictly ordered itself (each
// payload names the previous payload's hash, not the previous signature).
// EncodePayload, SignPayload, Decode and PayloadHash are pure functions.
// A Record is a value: reading it from several goroutines is safe, changing
// it is not. Audit is safe for concurrent use; Add verifies outside its lock.
package attest
