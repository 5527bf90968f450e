package store

import (
	"encoding/binary"
	"hash/crc32"
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
