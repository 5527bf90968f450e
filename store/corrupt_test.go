package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/store"
	bolt "go.etcd.io/bbolt"
)

// healthyFile builds an outbox big enough for a branch page over the record
// leaves, and returns its bytes and chain.
func healthyFile(tb testing.TB) (data []byte, chain [16]byte) {
	tb.Helper()
	path := dbPath(tb)
	opts, _ := testOptions(tb, 42)
	s, err := store.Open(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 10 {
		mustAppend(tb, s, entries(tb, uint64(i*200), 200, 300), nil)
	}
	chain = s.Head().Chain
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	data, err = os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data, chain
}

// pageLayout locates reachable pages of the records bucket by reading bbolt's
// on-disk format (page header: id u64, flags u16, count u16, overflow u32;
// branch element: pos u32, ksize u32, pgid u64; leaf element: flags u32,
// pos u32, ksize u32, vsize u32; all native little-endian).
type pageLayout struct {
	pageSize int
	root     int   // the records bucket's root page (a branch here)
	leaves   []int // its children
}

func layoutOf(tb testing.TB, data []byte) pageLayout {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "layout.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var l pageLayout
	l.pageSize = db.Info().PageSize
	if err := db.View(func(tx *bolt.Tx) error {
		l.root = int(tx.Bucket([]byte("records")).Root())
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	p := data[l.root*l.pageSize:]
	if flags := binary.LittleEndian.Uint16(p[8:]); flags != 0x01 {
		tb.Fatalf("records root page %d has flags %#x, want a branch page (0x01)", l.root, flags)
	}
	for i := range int(binary.LittleEndian.Uint16(p[10:])) {
		l.leaves = append(l.leaves, int(binary.LittleEndian.Uint64(p[16+16*i+8:])))
	}
	if len(l.leaves) < 3 {
		tb.Fatalf("only %d leaves under the records root", len(l.leaves))
	}
	return l
}

// leafElem returns the file offsets of a leaf element's key and value.
func leafElem(l pageLayout, data []byte, leaf, i int) (key, val int) {
	off := leaf*l.pageSize + 16 + 16*i
	pos := int(binary.LittleEndian.Uint32(data[off+4:]))
	ksize := int(binary.LittleEndian.Uint32(data[off+8:]))
	return off + pos, off + pos + ksize
}

func TestCorruptFileRecovery(t *testing.T) {
	healthy, oldChain := healthyFile(t)
	l := layoutOf(t, healthy)
	ps := l.pageSize
	garbage := make([]byte, len(healthy))
	_, _ = rand.NewChaCha8([32]byte{7}).Read(garbage)

	tests := []struct {
		name      string
		damage    func(b []byte) []byte
		chainKept bool // the old chain id is still readable
	}{
		{"zero-length", func(b []byte) []byte { return nil }, false},
		{"random garbage", func(b []byte) []byte { return garbage[:64<<10] }, false},
		{"truncated to 100 bytes", func(b []byte) []byte { return b[:100] }, false},
		{"truncated to 3 pages", func(b []byte) []byte { return b[:3*ps] }, false},
		{"truncated to half", func(b []byte) []byte { return b[:len(b)/2] }, false},
		{"valid meta pages then garbage", func(b []byte) []byte {
			return append(b[:2*ps:2*ps], garbage[:len(b)-2*ps]...)
		}, false},
		{"both meta pages flipped", func(b []byte) []byte { b[40] ^= 0x10; b[ps+40] ^= 0x10; return b }, false},
		{"flipped byte in a record value", func(b []byte) []byte {
			_, v := leafElem(l, b, l.leaves[1], 3)
			b[v+100] ^= 0x01
			return b
		}, true},
		{"flipped byte in a record key", func(b []byte) []byte {
			k, _ := leafElem(l, b, l.leaves[1], 3)
			b[k+7] ^= 0x01
			return b
		}, true},
		{"leaf page type flipped", func(b []byte) []byte { b[l.leaves[2]*ps+8] ^= 0x02; return b }, true},
		{"leaf element count flipped", func(b []byte) []byte { b[l.leaves[2]*ps+11] ^= 0x40; return b }, true},
		{"branch pointer beyond the file", func(b []byte) []byte {
			b[l.root*ps+16+16*1+8+4] ^= 0x01 // bit 32 of the second child's pgid
			return b
		}, true},
		{"branch pointer to another page", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[l.root*ps+16+16*1+8:], uint64(l.leaves[2]))
			return b
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tt.damage(bytes.Clone(healthy))
			dir := t.TempDir()
			path := filepath.Join(dir, "outbox.db")
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}

			ro, _ := testOptions(t, 1)
			ro.ReadOnly = true
			if s, err := store.Open(path, ro); !errors.Is(err, store.ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("read-only Open = %v, want ErrCorrupt", err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
				t.Fatal("read-only Open changed the file")
			}

			opts, _ := testOptions(t, 2)
			s, err := store.Open(path, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			rec := s.Recovery()
			if rec == nil {
				t.Fatal("Recovery() = nil after replacing a corrupt file")
			}
			if got, err := os.ReadFile(rec.MovedTo); err != nil || !bytes.Equal(got, bad) {
				t.Errorf("moved-aside file %s: %v, same bytes %v", rec.MovedTo, err, bytes.Equal(got, bad))
			}
			if !strings.HasPrefix(filepath.Base(rec.MovedTo), "outbox.db.corrupt-20260301T120000Z") || rec.Reason == "" {
				t.Errorf("Recovery = %+v", rec)
			}
			t.Logf("reason: %s", rec.Reason)
			if tt.chainKept && rec.OldChain != oldChain {
				t.Errorf("Recovery.OldChain = %x, want %x", rec.OldChain, oldChain)
			}
			h := s.Head()
			if h.Seq != 0 || h.Chain == oldChain || h.Chain == ([16]byte{}) {
				t.Errorf("head after recovery = seq %d chain %x, want a new empty chain", h.Seq, h.Chain)
			}
			if err := s.Check(); err != nil {
				t.Errorf("Check of the new store: %v", err)
			}
			mustAppend(t, s, entries(t, 0, 2, 10), nil)
			s.Close()

			s = openStore(t, path, opts)
			if got := s.Recovery(); got == nil || got.MovedTo != rec.MovedTo || s.Head().Seq != 2 {
				t.Errorf("after reopen: Recovery = %+v, head %d; want the same note and head 2", got, s.Head().Seq)
			}
		})
	}
}

// TestOneMetaPageFlipped: bbolt keeps two meta pages so that a torn write of
// one falls back to the other. That is not corruption and must not cost the
// records.
func TestOneMetaPageFlipped(t *testing.T) {
	healthy, chain := healthyFile(t)
	ps := layoutOf(t, healthy).pageSize
	// The newer meta (higher txid, at meta offset 48) is the one a torn commit would damage.
	newer := 0
	if binary.LittleEndian.Uint64(healthy[ps+16+48:]) > binary.LittleEndian.Uint64(healthy[16+48:]) {
		newer = 1
	}
	bad := bytes.Clone(healthy)
	bad[newer*ps+40] ^= 0x10
	path := filepath.Join(t.TempDir(), "outbox.db")
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, _ := testOptions(t, 3)
	s := openStore(t, path, opts)
	if s.Recovery() != nil {
		t.Fatalf("recovered a file bbolt can read: %+v", s.Recovery())
	}
	if h := s.Head(); h.Chain != chain || h.Seq != 1800 {
		t.Errorf("head = %d on chain %x, want 1800 (the commit before the damaged one) on %x", h.Seq, h.Chain, chain)
	}
}

func TestNewerFormatRefused(t *testing.T) {
	path := dbPath(t)
	opts, _ := testOptions(t, 4)
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("format"), binary.BigEndian.AppendUint64(nil, 2))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(path, opts)
	if err == nil || errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a format-2 file = %v, want a 'newer format' error that is not ErrCorrupt", err)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Errorf("a newer file was moved aside: %v", m)
	}
}

// Salvage reads every intact record of a damaged file: a flipped record
// costs that record, a destroyed leaf page the records on it, never the rest.
func TestSalvage(t *testing.T) {
	healthy, chain := healthyFile(t) // seqs 1-2000
	l := layoutOf(t, healthy)
	ps := l.pageSize
	tests := []struct {
		name       string
		damage     func(b []byte)
		minIntact  int
		wantDamage bool
	}{
		{"healthy", func([]byte) {}, 2000, false},
		{"flipped byte in a record value", func(b []byte) {
			_, v := leafElem(l, b, l.leaves[1], 3)
			b[v+100] ^= 0x01
		}, 1999, true},
		{"leaf page type flipped", func(b []byte) { b[l.leaves[2]*ps+8] ^= 0x02 }, 1500, true},
		{"leaf element count flipped", func(b []byte) { b[l.leaves[2]*ps+11] ^= 0x40 }, 1500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := bytes.Clone(healthy)
			tt.damage(bad)
			path := filepath.Join(t.TempDir(), "outbox.db.corrupt-x")
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			var last uint64
			rep, err := store.Salvage(path, func(r store.Record) error {
				if r.Seq <= last || binary.BigEndian.Uint64(r.Data) != r.Seq {
					t.Fatalf("record %d after %d, or holding another record's data", r.Seq, last)
				}
				last = r.Seq
				return nil
			})
			if err != nil {
				t.Fatalf("Salvage: %v", err)
			}
			t.Logf("%d intact, damaged %v", rep.Intact, rep.Damaged)
			if rep.Intact < tt.minIntact || rep.Intact+countRanges(rep.Damaged) < 2000 && !tt.wantDamage {
				t.Errorf("report %+v: want at least %d intact", rep, tt.minIntact)
			}
			if (len(rep.Damaged) > 0) != tt.wantDamage || rep.Chain != chain || rep.HeadSeq != 2000 {
				t.Errorf("report %+v: damage reported %v, want %v; chain and head of the file", rep, len(rep.Damaged) > 0, tt.wantDamage)
			}
		})
	}
}

func countRanges(rs []store.Range) int {
	n := 0
	for _, r := range rs {
		n += int(r.To - r.From + 1)
	}
	return n
}
