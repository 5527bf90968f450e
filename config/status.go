package config

import (
	"fmt"
	"net"
	"strconv"
)

// Status is the local status API and the Prometheus endpoint.
type Status struct {
	Socket        string `toml:"socket"`         // unix socket of the status API; "" = none
	Group         string `toml:"group"`          // group given to the socket; "" = the daemon's own
	MetricsListen string `toml:"metrics_listen"` // Prometheus host:port; "" = off
}

func defaultStatus() Status {
	return Status{Socket: "/run/edge-agent/status.sock", MetricsListen: "127.0.0.1:9477"}
}

func (s Status) check(k string) []*KeyError {
	p := absPath(k+".socket", s.Socket, true)
	if len(s.Socket) >= 108 { // sun_path
		p = append(p, invalid(k+".socket", s.Socket, "a unix socket path must be shorter than 108 bytes"))
	}
	if s.MetricsListen != "" {
		_, port, err := net.SplitHostPort(s.MetricsListen)
		if _, perr := strconv.Atoi(port); err != nil || perr != nil {
			p = append(p, invalid(k+".metrics_listen", s.MetricsListen, `a host:port such as "127.0.0.1:9477", or "" to turn metrics off`))
		}
	}
	return p
}

// statusTOML is the [status] block of DefaultTOML.
func statusTOML(s Status) string {
	return fmt.Sprintf(`
[status]
# Unix socket of the local status API, read by `+"`edge-agent status`"+` and `+"`edge-agent doctor`"+`.
# "" disables it (then doctor can only check what it sees from outside).
socket = %q
# Group given to the socket (mode 0660); "" = the daemon's own group. Add field techs to it.
group = %q
# Prometheus metrics, host:port; localhost by default. "" disables.
metrics_listen = %q
`, s.Socket, s.Group, s.MetricsListen)
}
