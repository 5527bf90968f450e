package config

import (
	"fmt"
	"time"
)

// P2PUplink gossips records over libp2p to collectors, acked by their signed receipts.
type P2PUplink struct {
	Enabled      bool     `toml:"enabled"`
	Network      string   `toml:"network"`      // topic namespace: edge-agent/<network>/att/1
	Listen       []string `toml:"listen"`       // multiaddrs; [] = dial out only
	Bootstrap    []string `toml:"bootstrap"`    // multiaddrs ending in /p2p/<peer id>
	Collectors   []string `toml:"collectors"`   // trusted collector peer ids
	MinReceipts  int      `toml:"min_receipts"` // 1..len(collectors)
	Window       int      `toml:"window"`       // records in flight
	ResendAfter  Duration `toml:"resend_after"` // first re-send, doubling up to resend_max
	ResendMax    Duration `toml:"resend_max"`
	MaxPeers     int      `toml:"max_peers"`
	MaxClockSkew Duration `toml:"max_clock_skew"` // peers' records further ahead are not relayed
}

func defaultP2P() P2PUplink {
	return P2PUplink{
		Network: "mainnet", MinReceipts: 1, Window: 256,
		ResendAfter: D(30 * time.Second), ResendMax: D(10 * time.Minute),
		MaxPeers: 32, MaxClockSkew: D(10 * time.Minute),
	}
}

func (p P2PUplink) check(k string) []*KeyError {
	var out []*KeyError
	if !p.Enabled {
		return nil
	}
	if len(p.Bootstrap) == 0 {
		out = append(out, missing(k+".bootstrap", `add bootstrap = ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…"]`))
	}
	if len(p.Collectors) == 0 {
		out = append(out, missing(k+".collectors", `add collectors = ["12D3KooW…"] (the collectors' peer ids)`))
	}
	if p.MinReceipts < 1 || p.MinReceipts > max(len(p.Collectors), 1) {
		out = append(out, invalid(k+".min_receipts", p.MinReceipts, "must be between 1 and the number of collectors"))
	}
	if p.Window < 1 || p.Window > 65536 {
		out = append(out, invalid(k+".window", p.Window, "must be 1..65536"))
	}
	if p.ResendAfter.Duration < time.Second {
		out = append(out, invalid(k+".resend_after", p.ResendAfter, "must be at least 1s"))
	}
	return out
}

// p2pTOML is the [uplinks.p2p] block of DefaultTOML.
func p2pTOML(p P2PUplink) string {
	return fmt.Sprintf(`
[uplinks.p2p]
# Gossip records over libp2p (TCP + Noise + Yamux) to collectors; a record leaves the outbox once
# min_receipts of the trusted collectors sent a signed receipt for it. The device key is the libp2p identity.
enabled = %t
network = %q
# Addresses to listen on; [] = only dial out (typical behind NAT).
listen = []
# Peers to stay connected to (redialled with backoff), e.g. "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…".
bootstrap = []
# Peer ids of the collectors whose receipts count.
collectors = []
min_receipts = %d
# Records published but not yet receipted.
window = %d
# Re-send un-receipted records after this long (directly to each connected collector still missing them),
# doubling up to resend_max.
resend_after = %q
resend_max = %q
max_peers = %d
# Records from peers stamped further than this ahead of our clock are not relayed.
max_clock_skew = %q
`, p.Enabled, p.Network, p.MinReceipts, p.Window, p.ResendAfter.String(), p.ResendMax.String(), p.MaxPeers, p.MaxClockSkew.String())
}
