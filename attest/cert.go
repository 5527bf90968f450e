package attest

// KindCert is the record an agent writes right after agent.boot when a
// manufacturer certificate is installed. It is a kind of its own, not a
// field of agent.boot, so verifiers built before it still accept the
// records (they check agent.boot's fields strictly; other kinds' obs are
// free-form maps).
const KindCert = "agent.cert"

// Cert is the obs of an agent.cert record.
type Cert struct {
	DER []byte `cbor:"der"` // the X.509 certificate the factory CA issued for the device key
}
