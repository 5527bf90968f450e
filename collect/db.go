package collect

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/fxamacker/cbor/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/seqrange"
)

// Bucket layout of collector.db (format 1):
//
//	meta     format → uint64 BE
//	records  kid[32] ‖ chain[16] ‖ seq u64 BE → payload SHA-256[32] ‖ COSE bytes
//	forks    kid ‖ chain ‖ seq ‖ payload SHA-256 → COSE bytes of the conflicting record
//	chains   kid ‖ chain → chainState (CBOR)
//
// The key order makes an export come out per device, per chain, in seq
// order, which is what `edge-agent verify` reads best.
var (
	bucketMeta    = []byte("meta")
	bucketRecords = []byte("records")
	bucketForks   = []byte("forks")
	bucketChains  = []byte("chains")
	keyFormat     = []byte("format")
)

const dbFormat = 1

// chainState is the running summary of one device chain, updated in the
// same transaction as the records it counts, so it is rebuilt from the DB
// after any crash.
type chainState struct {
	Device     string      `cbor:"1,keyasint"`
	Records    uint64      `cbor:"2,keyasint"`
	Duplicates uint64      `cbor:"3,keyasint"`
	Forks      uint64      `cbor:"4,keyasint"`
	Held       [][2]uint64 `cbor:"5,keyasint"` // seqs stored, merged ranges
	Announced  [][2]uint64 `cbor:"6,keyasint"` // seqs named by agent.gap records
	Boots      uint64      `cbor:"7,keyasint"`
	FirstSeen  int64       `cbor:"8,keyasint"` // collector clock, Unix ns
	LastSeen   int64       `cbor:"9,keyasint"`
	Bytes      uint64      `cbor:"10,keyasint,omitempty"` // COSE bytes stored (admission quota)
	Broken     []uint64    `cbor:"11,keyasint,omitempty"` // seqs whose prev is not the stored seq-1's hash
}

func recordKey(kid []byte, chain [16]byte, seq uint64) []byte {
	k := make([]byte, 0, 56)
	k = append(k, devKey(kid)...)
	k = append(k, chain[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func openDB(path string, readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("collect: open %s: %w (is a collector running on this data_dir? stop it first)", path, err)
	}
	if readOnly {
		return db, nil
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketRecords, bucketForks, bucketChains} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyFormat); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("format marker: %w", ErrCorrupt)
			}
			if f := binary.BigEndian.Uint64(v); f > dbFormat {
				return fmt.Errorf("format %d: %w", f, ErrFormat)
			}
			return nil
		}
		return meta.Put(keyFormat, binary.BigEndian.AppendUint64(nil, dbFormat))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("collect: open %s: %w", path, err)
	}
	return db, nil
}

func getChain(b *bolt.Bucket, key []byte) (*chainState, error) {
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	var cs chainState
	if err := cbor.Unmarshal(v, &cs); err != nil {
		return nil, fmt.Errorf("chain %x: %w: %w", key, ErrCorrupt, err)
	}
	return &cs, nil
}

func putChain(b *bolt.Bucket, key []byte, cs *chainState) error {
	v, err := cbor.Marshal(cs)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

// addRange adds [from, to] to merged ranges rs.
func addRange(rs [][2]uint64, from, to uint64) [][2]uint64 {
	return seqrange.Pairs(seqrange.Union(ranges(rs), []seqrange.Range{{From: from, To: to}}))
}

// ranges is the seqrange form of the [from, to] pairs collector.db, the
// summaries and receipts carry.
func ranges(ps [][2]uint64) []seqrange.Range { return seqrange.FromPairs[seqrange.Range](ps) }

// ChainSummary is what the collector holds of one chain.
type ChainSummary struct {
	Chain           string      `json:"chain"` // hex
	Records         uint64      `json:"records"`
	Duplicates      uint64      `json:"duplicates"`
	Forks           uint64      `json:"forks"`
	Boots           uint64      `json:"boots"`
	FirstSeq        uint64      `json:"first_seq"`
	LastSeq         uint64      `json:"last_seq"`
	AnnouncedGaps   [][2]uint64 `json:"announced_gaps,omitempty"`
	UnannouncedGaps [][2]uint64 `json:"unannounced_gaps,omitempty"`
	BrokenLinks     []uint64    `json:"broken_links,omitempty"`
	Bytes           uint64      `json:"bytes"` // COSE bytes stored
	LastSeen        time.Time   `json:"last_seen"`
}

// DeviceSummary groups the chains of one device.
type DeviceSummary struct {
	Device   string         `json:"device"`
	Identity *Identity      `json:"identity,omitempty"` // with admission.trusted_manufacturers: genuine or not
	Chains   []ChainSummary `json:"chains"`
}

func summarize(chain []byte, cs *chainState) ChainSummary {
	s := Gaps(cs.Held, cs.Announced)
	s.Chain, s.Records, s.Duplicates = hex.EncodeToString(chain), cs.Records, cs.Duplicates
	s.Forks, s.Boots, s.Bytes = cs.Forks, cs.Boots, cs.Bytes
	s.LastSeen = time.Unix(0, cs.LastSeen).UTC()
	if len(cs.Broken) > 0 {
		s.BrokenLinks = slices.Sorted(slices.Values(cs.Broken))
	}
	return s
}

// Gaps derives the first and last seq and the announced and unannounced
// gaps of a chain from the seqs held and the seqs named by its agent.gap
// records (both merged, sorted ranges): the same answer whatever order the
// records arrived in, and the same as attest.Audit's. Stores fill in the
// rest of the summary.
func Gaps(held, announced [][2]uint64) ChainSummary {
	var s ChainSummary
	if len(held) == 0 {
		return s
	}
	s.FirstSeq, s.LastSeq = held[0][0], held[len(held)-1][1]
	// Missing seqs in 1..LastSeq, split by what agent.gap records announced.
	missing := seqrange.Missing(seqrange.Union(ranges(held), nil), 1)
	ann := seqrange.Union(ranges(announced), nil)
	s.AnnouncedGaps = seqrange.Pairs(seqrange.Intersect(missing, ann))
	s.UnannouncedGaps = seqrange.Pairs(seqrange.Subtract(missing, ann))
	return s
}

// MergeRanges sorts inclusive ranges and joins those that overlap or touch.
func MergeRanges(rs [][2]uint64) [][2]uint64 {
	return seqrange.Pairs(seqrange.Union(ranges(rs), nil))
}

func readSummaries(tx *bolt.Tx) ([]DeviceSummary, error) {
	var out []DeviceSummary
	err := tx.Bucket(bucketChains).ForEach(func(k, v []byte) error {
		var cs chainState
		if err := cbor.Unmarshal(v, &cs); err != nil || len(k) != 48 {
			return fmt.Errorf("chain %x: %w", k, ErrCorrupt)
		}
		s := summarize(k[32:], &cs)
		if n := len(out); n > 0 && out[n-1].Device == cs.Device {
			out[n-1].Chains = append(out[n-1].Chains, s)
			return nil
		}
		out = append(out, DeviceSummary{Device: cs.Device, Chains: []ChainSummary{s}})
		return nil
	})
	slices.SortFunc(out, func(a, b DeviceSummary) int { return bytes.Compare([]byte(a.Device), []byte(b.Device)) })
	return out, err
}

// ReadStatus opens collector.db read-only and returns the per-device
// summary. A running collector holds the file's lock, so this fails after a
// second with the open error; its periodic status log line is the live view.
func ReadStatus(dbPath string) ([]DeviceSummary, error) {
	db, err := openDB(dbPath, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var out []DeviceSummary
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketChains) == nil {
			return nil
		}
		var err error
		out, err = readSummaries(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("collect: status of %s: %w", dbPath, err)
	}
	return out, nil
}

// exportTx writes every stored record (not fork evidence) to w as a CBOR
// sequence, the format `edge-agent verify` reads.
func exportTx(tx *bolt.Tx, w io.Writer) (int, error) {
	b := tx.Bucket(bucketRecords)
	if b == nil {
		return 0, nil
	}
	n := 0
	err := b.ForEach(func(k, v []byte) error {
		if len(v) <= 32 {
			return fmt.Errorf("record %x: %w", k, ErrCorrupt)
		}
		if _, err := w.Write(v[32:]); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// ExportDB exports collector.db (opened read-only) to w.
func ExportDB(dbPath string, w io.Writer) (int, error) {
	db, err := openDB(dbPath, true)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = exportTx(tx, w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("collect: export %s: %w", dbPath, err)
	}
	return n, nil
}

// GapOf extracts an agent.gap record's announced range (false for other kinds).
func GapOf(rec *attest.Record) (attest.Gap, bool) {
	if rec.Claims.Kind != attest.KindGap {
		return attest.Gap{}, false
	}
	raw, ok := rec.Claims.Obs.(cbor.RawMessage)
	if !ok {
		return attest.Gap{}, false
	}
	var g attest.Gap
	if cbor.Unmarshal(raw, &g) != nil || g.From == 0 || g.From > g.To {
		return attest.Gap{}, false
	}
	return g, true
}

// PrintSummary writes the per-device summary as a table for people.
func PrintSummary(w io.Writer, sum []DeviceSummary) {
	if len(sum) == 0 {
		fmt.Fprintln(w, "no records yet")
		return
	}
	if sum[0].Identity != nil {
		printIdentities(w, sum)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tCHAIN\tRECORDS\tSEQS\tDUPS\tFORKS\tGAPS (announced/unannounced)\tBROKEN LINKS\tLAST SEEN")
	for _, d := range sum {
		for _, c := range d.Chains {
			warn := ""
			if c.Forks > 0 || len(c.UnannouncedGaps) > 0 || len(c.BrokenLinks) > 0 {
				warn = "  <-- check"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d-%d\t%d\t%d\t%d/%d\t%d\t%s%s\n", d.Device, c.Chain[:8], c.Records, c.FirstSeq, c.LastSeq,
				c.Duplicates, c.Forks, len(c.AnnouncedGaps), len(c.UnannouncedGaps), len(c.BrokenLinks), c.LastSeen.Format("2006-01-02 15:04:05Z"), warn)
		}
	}
	tw.Flush()
}

// devKey is the fixed-width key of a device in collector.db: an Ed25519 kid
// as it is (32 bytes, so databases written before ES256 read the same), any
// other kid (a 33-byte compressed P-256 key, #13) by its SHA-256.
func devKey(kid []byte) []byte {
	if len(kid) == 32 {
		return kid
	}
	h := sha256.Sum256(kid)
	return h[:]
}
