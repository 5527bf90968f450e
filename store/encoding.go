package store

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
)

// formatVersion is the layout described in the package comment. Bump it and
// add a migration in Open when the layout changes.
const formatVersion = 1

const (
	bucketMeta    = "meta"
	bucketRecords = "records"
	bucketAcks    = "acks"

	keyFormat        = "format"
	keyChain         = "chain"
	keyHead          = "head"
	keyCount         = "count"
	keyBytes         = "bytes"
	keyEvicted       = "evicted"
	keyEvictedRanges = "evictedRanges"
	keyGaps          = "gaps"
	keyRecovery      = "recovery"
)

// valueHeader is the crc32c and the append time in front of each record.
const valueHeader = 4 + 8

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// recordCRC covers the key as well as the value, so a flipped bit in a key
// (which would silently move a record) is caught too.
func recordCRC(key, body []byte) uint32 {
	t := crc32.MakeTable(crc32.Castagnoli) // cached by the crc32 package
	return crc32.Update(crc32.Update(0, t, key), t, body)
}

// putRecordValue writes the stored form of data into dst, which must be
// valueHeader+len(data) long.
func putRecordValue(dst, key []byte, appended int64, data []byte) {
	binary.BigEndian.PutUint64(dst[4:12], uint64(appended))
	copy(dst[valueHeader:], data)
	binary.BigEndian.PutUint32(dst[0:4], recordCRC(key, dst[4:]))
}

func encodeHead(h Head) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 40), h.Seq)
	return append(b, h.Hash[:]...)
}

func encodeRanges(rs []Range) []byte {
	b := make([]byte, 0, 16*len(rs))
	for _, r := range rs {
		b = binary.BigEndian.AppendUint64(b, r.From)
		b = binary.BigEndian.AppendUint64(b, r.To)
	}
	return b
}

func decodeRanges(b []byte) []Range {
	rs := make([]Range, 0, len(b)/16)
	for ; len(b) >= 16; b = b[16:] {
		rs = append(rs, Range{From: binary.BigEndian.Uint64(b), To: binary.BigEndian.Uint64(b[8:])})
	}
	return rs
}

// mergeRanges returns the union of a and b as sorted, disjoint, non-adjacent
// ranges.
func mergeRanges(a, b []Range) []Range {
	all := slices.Concat(a, b)
	slices.SortFunc(all, func(x, y Range) int {
		switch {
		case x.From < y.From:
			return -1
		case x.From > y.From:
			return 1
		}
		return 0
	})
	var out []Range
	for _, r := range all {
		if n := len(out); n > 0 && r.From <= out[n-1].To+1 {
			out[n-1].To = max(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtractRanges returns the seqs of rs not covered by any of cut.
func subtractRanges(rs, cut []Range) []Range {
	out := slices.Clone(rs)
	for _, c := range cut {
		var next []Range
		for _, r := range out {
			if c.To < r.From || c.From > r.To {
				next = append(next, r)
				continue
			}
			if c.From > r.From {
				next = append(next, Range{From: r.From, To: c.From - 1})
			}
			if c.To < r.To {
				next = append(next, Range{From: c.To + 1, To: r.To})
			}
		}
		out = next
	}
	return out
}
