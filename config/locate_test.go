package config

import "testing"

func TestLocate(t *testing.T) {
	src := `# comment [not.a.table]
version = 1
[device] # trailing comment
key = "a # not a comment"
"data_dir" = 'x'
[[drivers.sim]]
name = """
multi "" line
"""""
kind = "gnss"
[[drivers.sim]]
name = 'b'
inline = { a = 1,
  b = [1, 2, { c = 3 }] }
[drivers.sim.sub]
x = 1
[ "quoted" . 'table' ]
dotted.key = 2
when = 1979-05-27 07:32:00Z
arr = [
  "]", # ] in a comment
  '''
  ''',
]
after = true
`
	li := locate([]byte(src))
	tests := []struct {
		key  string
		line int
	}{
		{"version", 2},
		{"device", 3},
		{"device.key", 4},
		{"device.data_dir", 5},
		{"drivers.sim[0]", 6},
		{"drivers.sim[0].name", 7},
		{"drivers.sim[0].kind", 10},
		{"drivers.sim[1]", 11},
		{"drivers.sim[1].name", 12},
		{"drivers.sim[1].inline", 13},
		{"drivers.sim[1].inline.b", 14},
		{"drivers.sim[1].inline.b[2].c", 14},
		{"drivers.sim[1].sub.x", 16},
		{"quoted.table", 17},
		{"quoted.table.dotted", 18},
		{"quoted.table.dotted.key", 18},
		{"quoted.table.when", 19},
		{"quoted.table.arr", 20},
		{"quoted.table.after", 25},
		{"drivers.sim[1].never.set", 11}, // nearest placed parent
		{"nowhere", 0},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := li.lineOf(tt.key); got != tt.line {
				t.Errorf("lineOf(%q) = %d, want %d", tt.key, got, tt.line)
			}
		})
	}
}
