package file

import (
	"bytes"
	"testing"

	"github.com/edge-agent/edge-agent/uplink/uplinktest"
)

// FuzzScanRecords checks the repair's reader on the spool format: whatever
// the bytes, the prefix it keeps is exactly the records it counted, and a
// sequence of records followed by any tail keeps at least those records.
func FuzzScanRecords(f *testing.F) {
	rec := uplinktest.Record(1, 120).Data
	f.Add(2, []byte{})
	f.Add(1, rec[:30])
	f.Add(3, []byte{0, 0, 0, 0})
	f.Add(0, []byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x41, 0x01})
	f.Fuzz(func(t *testing.T, n int, tail []byte) {
		n = min(max(n, 0), 5)
		var data []byte
		for i := range n {
			data = append(data, uplinktest.Record(uint64(i+1), 100+10*i).Data...)
		}
		prefixLen := int64(len(data))
		data = append(data, tail...)
		good, items, _ := scanRecords(bytes.NewReader(data))
		if good < prefixLen || items < n || good > int64(len(data)) {
			t.Fatalf("kept %d bytes / %d items of %d records (%d bytes)", good, items, n, prefixLen)
		}
		again, items2, _ := scanRecords(bytes.NewReader(data[:good]))
		if again != good || items2 != items {
			t.Fatalf("rescanning the kept prefix gives %d bytes / %d items, want %d / %d", again, items2, good, items)
		}
	})
}
