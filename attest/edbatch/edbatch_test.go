package edbatch

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestSameAsStandardLibrary signs random messages in batches of every size
// up to 70 and requires each signature to be the one crypto/ed25519 makes.
func TestSameAsStandardLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for keyN := range 20 {
		seed := make([]byte, ed25519.SeedSize)
		for i := range seed {
			seed[i] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		k, err := NewKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 70; n += 1 + keyN {
			msgs := make([][]byte, n)
			for i := range msgs {
				msgs[i] = make([]byte, rng.IntN(600))
				for j := range msgs[i] {
					msgs[i][j] = byte(rng.Uint32())
				}
			}
			sigs := k.Sign(msgs)
			if len(sigs) != n {
				t.Fatalf("key %d: %d signatures for %d messages", keyN, len(sigs), n)
			}
			for i, m := range msgs {
				if want := ed25519.Sign(priv, m); !bytes.Equal(sigs[i], want) {
					t.Fatalf("key %d, batch of %d, message %d (%d bytes):\n got %x\nwant %x", keyN, n, i, len(m), sigs[i], want)
				}
				if !ed25519.Verify(priv.Public().(ed25519.PublicKey), m, sigs[i]) {
					t.Fatalf("key %d, batch of %d, message %d: does not verify", keyN, n, i)
				}
			}
		}
	}
}

// TestRFC8032Vectors checks the first three test vectors of RFC 8032 §7.1,
// signed together in one batch.
func TestRFC8032Vectors(t *testing.T) {
	vectors := []struct{ secret, public, msg, sig string }{
		{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
			"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
			"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
		{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
			"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
			"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
		{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
			"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
			"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
	}
	for _, v := range vectors {
		priv := append(unhex(t, v.secret), unhex(t, v.public)...)
		k, err := NewKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		// The vector's message twice, and a foreign message between, so
		// the shared inversion mixes three points.
		sigs := k.Sign([][]byte{unhex(t, v.msg), []byte("another record"), unhex(t, v.msg)})
		for _, i := range []int{0, 2} {
			if got := hex.EncodeToString(sigs[i]); got != v.sig {
				t.Errorf("secret %s…, message %q, position %d:\n got %s\nwant %s", v.secret[:8], v.msg, i, got, v.sig)
			}
		}
	}
}

func TestNewKeyRefusesAMismatchedKey(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	bad := append([]byte(nil), priv...)
	bad[40] ^= 1
	if _, err := NewKey(bad); err == nil {
		t.Error("a key whose public half is not its seed's was accepted")
	}
	if _, err := NewKey(priv[:32]); err == nil {
		t.Error("a 32-byte key was accepted")
	}
	k, err := NewKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if k.Sign(nil) != nil {
		t.Error("no messages gave signatures")
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkSign is the CPU of one signature in batches of 1, 16 and 64,
// against crypto/ed25519.Sign.
func BenchmarkSign(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	k, _ := NewKey(priv)
	msg := make([]byte, 300)
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(priv, msg)
		}
	})
	for _, n := range []int{1, 16, 64} {
		msgs := make([][]byte, n)
		for i := range msgs {
			msgs[i] = msg
		}
		b.Run("batch"+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				k.Sign(msgs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/signature")
		})
	}
}
