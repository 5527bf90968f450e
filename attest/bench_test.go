package attest

import (
	"testing"

	"github.com/edge-agent/edge-agent/drivers"
)

func benchClaims(b *testing.B) *Claims {
	b.Helper()
	c := knownClaims()[2].c // lora.rx with loc and boot: the busiest real record
	return &c
}

func BenchmarkEncodePayload(b *testing.B) {
	c := benchClaims(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodePayload(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePayloadCounter(b *testing.B) {
	c := &Claims{Seq: 7, Time: 1, Kind: drivers.KindCounter, Source: "sim0", Obs: drivers.Counter{N: 7}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodePayload(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignPayload(b *testing.B) {
	s := testSigner(b, 0)
	p, err := EncodePayload(benchClaims(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignPayload(s, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	raw, _ := signClaims(b, testSigner(b, 0), benchClaims(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	raw, _ := signClaims(b, testSigner(b, 0), benchClaims(b))
	r, err := Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}
