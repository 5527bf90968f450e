package verifiers_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/edge-agent/edge-agent/attest"
)

// verifier is one reference implementation, run as a child process.
type verifier struct {
	name string
	argv []string
}

func verifiers(t *testing.T) []verifier {
	t.Helper()
	if _, err := os.Stat("js/node_modules/cborg/package.json"); err != nil {
		t.Fatalf("the JavaScript verifier's dependency is not installed: run scripts/install-test-deps.sh (npm ci in verifiers/js): %v", err)
	}
	for _, bin := range []string{"/usr/bin/python3", "node"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is missing: run scripts/install-test-deps.sh", bin)
		}
	}
	return []verifier{
		{"python", []string{"/usr/bin/python3", "python/edge_verify.py"}},
		{"javascript", []string{"node", "js/edge-verify.mjs"}},
	}
}

// result is one line a verifier printed.
type result struct {
	Device, Chain, Prev, Kind, Source, Error string
	Seq                                      uint64
	TimeNS                                   string `json:"time_ns"`
	PayloadSHA256                            string `json:"payload_sha256"`
}

func (v verifier) run(t *testing.T, args ...string) (int, []result, string) {
	t.Helper()
	cmd := exec.Command(v.argv[0], append(v.argv[1:], args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", v.name, err)
	}
	var rs []result
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s printed a line that is not JSON: %q", v.name, line)
		}
		rs = append(rs, r)
	}
	return code, rs, errb.String()
}

// want is what package attest says about a record.
func want(t *testing.T, raw []byte) result {
	t.Helper()
	r, err := attest.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	c := r.Claims
	h := sha256.Sum256(r.Payload)
	return result{Device: r.DeviceID, Chain: hex.EncodeToString(c.Chain[:]), Prev: hex.EncodeToString(c.Prev[:]), Kind: c.Kind,
		Source: c.Source, Seq: c.Seq, TimeNS: strconv.FormatInt(c.Time, 10), PayloadSHA256: hex.EncodeToString(h[:])}
}

func kats(t *testing.T) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob("../attest/testdata/*.cose.hex")
	if len(files) < 6 {
		t.Fatalf("known-answer records missing: %v", files)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		raw, err := hex.DecodeString(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = raw
	}
	return out
}

// TestKnownAnswers: every known-answer record verifies, with the claims Go reads.
func TestKnownAnswers(t *testing.T) {
	for _, v := range verifiers(t) {
		for f, raw := range kats(t) {
			t.Run(v.name+"/"+filepath.Base(f), func(t *testing.T) {
				code, rs, stderr := v.run(t, "--hex", f)
				if code != 0 || len(rs) != 1 || rs[0] != want(t, raw) {
					t.Errorf("exit %d, got %+v\nwant %+v\n%s", code, rs, want(t, raw), stderr)
				}
			})
		}
	}
}

// The RFC 8032 §7.1 TEST 1 key signed the known-answer records; re-signing
// with it makes records whose signature is good but whose encoding is not.
var testKey = ed25519.NewKeyFromSeed(mustHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// resign replaces the payload of a record and signs it again.
func resign(t *testing.T, raw, payload []byte) []byte {
	t.Helper()
	var msg cbor.Tag
	if err := cbor.Unmarshal(raw, &msg); err != nil {
		t.Fatal(err)
	}
	parts := msg.Content.([]any)
	prot := parts[0].([]byte)
	tbs, _ := cbor.Marshal([]any{"Signature1", prot, []byte{}, payload})
	out, err := cbor.Marshal(cbor.Tag{Number: 18, Content: []any{prot, map[any]any{}, payload, ed25519.Sign(testKey, tbs)}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func payloadOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	r, err := attest.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), r.Payload...)
}

// TestRejects: a bad signature, and well-signed records whose encoding is
// not the deterministic one (a long integer head, a float wider than it
// needs), are refused by both verifiers, as by attest.
func TestRejects(t *testing.T) {
	env := kats(t)["../attest/testdata/env.cose.hex"]
	p := payloadOf(t, env)
	if !bytes.Contains(p, []byte{0x02, 0x04}) || !bytes.Contains(p, mustHex("fa47c5e6c0")) {
		t.Fatal("the env known-answer record changed; update the byte patterns of this test")
	}
	if r, err := attest.Decode(resign(t, env, p)); err != nil || r.Verify() != nil {
		t.Fatalf("re-signing the unchanged payload broke it: %v", err)
	}
	wide := bytes.Replace(p, mustHex("fa47c5e6c0"), mustHex("fb40f8bcd800000000"), 1) // the same float as float64
	long := bytes.Replace(p, []byte{0x02, 0x04}, []byte{0x02, 0x18, 0x04}, 1)         // seq 4 in a two-byte head
	badSig := append([]byte(nil), env...)
	badSig[len(badSig)-1] ^= 1
	cases := []struct {
		name, says string
		raw        []byte
	}{
		{"bad signature", "bad signature", badSig},
		{"float64 where float32 is exact", "deterministic", resign(t, env, wide)},
		{"long integer head", "deterministic", resign(t, env, long)},
	}
	for _, c := range cases {
		if _, err := attest.Decode(c.raw); err == nil {
			if r, _ := attest.Decode(c.raw); r.Verify() == nil {
				t.Fatalf("%s: attest accepts it; the case tests nothing", c.name)
			}
		}
		path := filepath.Join(t.TempDir(), "rec.cbor")
		os.WriteFile(path, c.raw, 0o600)
		for _, v := range verifiers(t) {
			code, rs, _ := v.run(t, path)
			if code != 1 || len(rs) != 1 || !strings.Contains(rs[0].Error, c.says) {
				t.Errorf("%s, %s: exit %d %+v, want exit 1 and an error saying %q", c.name, v.name, code, rs, c.says)
			}
		}
	}
}

// TestLiveDemo: what a real demo delivered (CBOR sequences, a full chain)
// verifies in both, record for record as package attest reads it; a
// well-signed record with a wrong prev is a broken link.
func TestLiveDemo(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "edge-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/edge-agent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "demo", "--duration", "3s", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.cbor"))
	if len(files) == 0 {
		t.Fatal("the demo delivered nothing")
	}
	var all []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	var expect []result
	rest := all
	for len(rest) > 0 {
		var raw cbor.RawMessage
		var err error
		if rest, err = cbor.UnmarshalFirst(rest, &raw); err != nil {
			t.Fatal(err)
		}
		expect = append(expect, want(t, raw))
	}
	seqFile := filepath.Join(dir, "all.cbor")
	os.WriteFile(seqFile, all, 0o600)
	key := func(r result) string { return fmt.Sprintf("%s/%s/%020d/%s", r.Device, r.Chain, r.Seq, r.PayloadSHA256) }
	sortRs := func(rs []result) { sort.Slice(rs, func(i, j int) bool { return key(rs[i]) < key(rs[j]) }) }
	sortRs(expect)
	if len(expect) < 20 {
		t.Fatalf("only %d records from the demo", len(expect))
	}
	// Re-sign one record from the middle with the device's own key and a
	// wrong prev: its signature is good, its link to the one before is not.
	signer, err := attest.OpenSigner("file:" + filepath.Join(dir, "device.key"))
	if err != nil {
		t.Fatal(err)
	}
	var cut []byte
	rest = all
	for i := 0; len(rest) > 0; i++ {
		var raw cbor.RawMessage
		rest, _ = cbor.UnmarshalFirst(rest, &raw)
		if i == len(expect)/2 {
			r, _ := attest.Decode(raw)
			c := r.Claims
			c.Prev[0] ^= 1
			payload, err := attest.EncodePayload(&c)
			if err != nil {
				t.Fatal(err)
			}
			if raw, err = attest.SignPayload(signer, payload); err != nil {
				t.Fatal(err)
			}
		}
		cut = append(cut, raw...)
	}
	cutFile := filepath.Join(dir, "cut.cbor")
	os.WriteFile(cutFile, cut, 0o600)
	for _, v := range verifiers(t) {
		code, rs, stderr := v.run(t, seqFile)
		sortRs(rs)
		if code != 0 || len(rs) != len(expect) {
			t.Fatalf("%s: exit %d, %d results for %d records\n%s", v.name, code, len(rs), len(expect), stderr)
		}
		for i := range rs {
			if rs[i] != expect[i] {
				t.Errorf("%s: record %d: got %+v\nwant %+v", v.name, i, rs[i], expect[i])
			}
		}
		code, rs, _ = v.run(t, cutFile)
		broken := 0
		for _, r := range rs {
			if r.Error == "broken link" {
				broken++
			}
		}
		// Both links of the forged record break: its prev, and the next
		// record's prev, which hashes the payload it replaced.
		if code != 1 || broken != 2 {
			t.Errorf("%s with a forged link: exit %d, %d broken links, want 1 and 2", v.name, code, broken)
		}
	}
}
