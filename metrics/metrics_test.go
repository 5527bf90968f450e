package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edge-agent/edge-agent/metrics"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/status/statustest"
)

var testNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// serve runs a real metrics server on a loopback port and returns its URL.
func serve(tb testing.TB, src status.Source) string {
	tb.Helper()
	reg := metrics.NewRegistry(metrics.NewCollector(src, time.Second, nil))
	srv, err := metrics.Listen("127.0.0.1:0", reg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			tb.Errorf("Run: %v", err)
		}
	}()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	return "http://" + srv.Addr() + "/metrics"
}

func TestScrape(t *testing.T) {
	url := serve(t, statustest.NewSource(statustest.Sample(testNow)))
	tests := []struct {
		name   string
		metric string
		want   string
	}{
		{"build info", "edge_agent_build_info", `
# HELP edge_agent_build_info Always 1; the labels say which edge-agent runs.
# TYPE edge_agent_build_info gauge
edge_agent_build_info{commit="abc1234",device_id="12D3KooWSampleDevice",goversion="go1.26.8",version="1.0.0"} 1
`},
		{"observations by kind and source", "edge_agent_observations_total", `
# HELP edge_agent_observations_total Observations emitted by drivers, by kind and source (driver instance).
# TYPE edge_agent_observations_total counter
edge_agent_observations_total{kind="env.sample",source="bme"} 200
edge_agent_observations_total{kind="gnss.fix",source="gps"} 5000
edge_agent_observations_total{kind="lora.rx",source="lora"} 4200
edge_agent_observations_total{kind="lora.stat",source="lora"} 190
`},
		{"uplink backlog", "edge_agent_uplink_backlog_records", `
# HELP edge_agent_uplink_backlog_records Stored records each uplink has not had acknowledged.
# TYPE edge_agent_uplink_backlog_records gauge
edge_agent_uplink_backlog_records{uplink="mqtt"} 12
`},
		{"delivered", "edge_agent_records_delivered_total", `
# HELP edge_agent_records_delivered_total Records acknowledged by each uplink since start.
# TYPE edge_agent_records_delivered_total counter
edge_agent_records_delivered_total{uplink="mqtt"} 9388
`},
		{"lora packets by gateway and outcome", "edge_agent_lora_packets_total", `
# HELP edge_agent_lora_packets_total LoRa packets by receiving driver, gateway EUI and outcome.
# TYPE edge_agent_lora_packets_total counter
edge_agent_lora_packets_total{driver="lora",gateway="b827ebfffe6e3c01",outcome="crc_error"} 35
edge_agent_lora_packets_total{driver="lora",gateway="b827ebfffe6e3c01",outcome="ok"} 4200
`},
		{"gnss", "edge_agent_gnss_fix_age_seconds", `
# HELP edge_agent_gnss_fix_age_seconds Seconds since the last GNSS epoch with a position (since start when there was none).
# TYPE edge_agent_gnss_fix_age_seconds gauge
edge_agent_gnss_fix_age_seconds{driver="gps"} 1
`},
		{"store quota", "edge_agent_store_quota_bytes", `
# HELP edge_agent_store_quota_bytes Outbox quota; 0 means none.
# TYPE edge_agent_store_quota_bytes gauge
edge_agent_store_quota_bytes 2.68435456e+08
`},
		{"connected", "edge_agent_uplink_connected", `
# HELP edge_agent_uplink_connected 1 when the uplink is connected.
# TYPE edge_agent_uplink_connected gauge
edge_agent_uplink_connected{uplink="mqtt"} 1
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := testutil.ScrapeAndCompare(url, strings.NewReader(tt.want), tt.metric); err != nil {
				t.Error(err)
			}
		})
	}
	body := get(t, url)
	for _, name := range []string{
		"edge_agent_driver_state{driver=\"gps\",family=\"gnss\",state=\"loaded\"} 1",
		"edge_agent_driver_state{driver=\"gps\",family=\"gnss\",state=\"failed\"} 0",
		"edge_agent_gnss_satellites{driver=\"gps\"} 9", "edge_agent_gnss_hdop{driver=\"gps\"} 0.9",
		"edge_agent_gnss_sentences_total{driver=\"gps\"} 558000",
		"edge_agent_gnss_rejected_total{driver=\"gps\",reason=\"bad_checksum\"} 3",
		"edge_agent_records_signed_total 9400", "edge_agent_records_stored_total 9400",
		"edge_agent_store_bytes 4800", "edge_agent_store_evictions_total 0", "edge_agent_store_append_errors_total 0",
		"edge_agent_lora_socket_drops_total{driver=\"lora\"} 0", "edge_agent_uptime_seconds 93600",
		"edge_agent_clock_synchronized 1", "edge_agent_status_up 1", "go_goroutines", "process_start_time_seconds",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("scrape lacks %q", name)
		}
	}
}

func TestLint(t *testing.T) {
	requireLintClean(t, statustest.Sample(testNow))
}

// requireLintClean fails t for every complaint of Prometheus's metric
// linter about what doc's scrape exposes.
func requireLintClean(t *testing.T, doc *status.Doc) {
	t.Helper()
	problems, err := testutil.CollectAndLint(metrics.NewCollector(statustest.NewSource(doc), time.Second, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestSourceFails(t *testing.T) {
	src := statustest.NewSource(nil)
	src.Set(nil, errors.New("store: stats: outbox is closed"))
	body := get(t, serve(t, src))
	if !strings.Contains(body, "edge_agent_status_up 0") {
		t.Errorf("a failed document should scrape as edge_agent_status_up 0:\n%s", body)
	}
	if strings.Contains(body, "edge_agent_records_signed_total") {
		t.Error("a failed document still produced pipeline metrics")
	}
}

func TestListenErrors(t *testing.T) {
	url := serve(t, statustest.NewSource(statustest.Sample(testNow)))
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	_, err := metrics.Listen(addr, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "metrics_listen") {
		t.Errorf("Listen on a busy port: err = %v, want one naming metrics_listen", err)
	}
}

func get(tb testing.TB, url string) string {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

// TestLoRaMultiplexerMetrics: refusals by reason, the gateway table and each
// upstream are exported.
func TestLoRaMultiplexerMetrics(t *testing.T) {
	doc := statustest.Sample(testNow)
	l := doc.Drivers[1].LoRa
	l.Mode, l.Malformed, l.MaxGateways, l.GatewaysRefused, l.TxRecords = "udp", map[string]uint64{"json": 3, "gateway_table_full": 9}, 64, 9, 5
	l.Upstreams = []status.LoRaUpstream{{Name: "helium", State: "ok", Sent: 10, Acks: 9, DownlinksRelayed: 5}, {Name: "ttn", State: "unreachable", Unsent: 2}}
	body := get(t, serve(t, statustest.NewSource(doc)))
	for _, want := range []string{
		`edge_agent_lora_malformed_total{driver="lora",reason="json"} 3`,
		`edge_agent_lora_malformed_total{driver="lora",reason="gateway_table_full"} 9`,
		`edge_agent_lora_gateways{driver="lora"} 1`, `edge_agent_lora_gateways_max{driver="lora"} 64`,
		`edge_agent_lora_gateways_refused_total{driver="lora"} 9`, `edge_agent_lora_tx_records_total{driver="lora"} 5`,
		`edge_agent_lora_upstream_up{driver="lora",upstream="helium"} 1`, `edge_agent_lora_upstream_up{driver="lora",upstream="ttn"} 0`,
		`edge_agent_lora_upstream_acks_total{driver="lora",upstream="helium"} 9`,
		`edge_agent_lora_upstream_downlinks_total{driver="lora",outcome="relayed",upstream="helium"} 5`,
		`edge_agent_lora_upstream_unsent_total{driver="lora",upstream="ttn"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

// TestHardwareKeyMetrics: a daemon on a hardware key whose last session
// rotation failed says so in its metrics (and they lint).
func TestHardwareKeyMetrics(t *testing.T) {
	doc := statustest.Sample(testNow)
	doc.Identity.Key = &status.Key{Backend: "tpm", Algorithm: "ES256", Hardware: true, Where: "TPM 2.0 at tpm:/dev/tpmrm0",
		SessionBindings: 3, SessionValidUntil: testNow.Add(time.Hour), RotationError: "tpmkey: open /dev/tpmrm0: no such device"}
	body := get(t, serve(t, statustest.NewSource(doc)))
	for _, want := range []string{
		`edge_agent_device_key_info{algorithm="ES256",backend="tpm",hardware="true"} 1`,
		"edge_agent_session_bindings_total 3",
		"edge_agent_session_rotation_failing 1",
		"edge_agent_session_valid_until_timestamp_seconds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	requireLintClean(t, doc)
}

func TestCPUMetrics(t *testing.T) {
	doc := statustest.Sample(testNow)
	if body := get(t, serve(t, statustest.NewSource(doc))); strings.Contains(body, "edge_agent_cpus_in_use") {
		t.Error("cpus metrics from a document without cpus (an agent that does not choose them)")
	}
	doc.CPUs = &status.CPUs{InUse: 1, Max: 4, Switches: 6}
	body := get(t, serve(t, statustest.NewSource(doc)))
	for _, want := range []string{"edge_agent_cpus_in_use 1", "edge_agent_cpus_max 4", "edge_agent_cpu_switches_total 6"} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	requireLintClean(t, doc)
}
