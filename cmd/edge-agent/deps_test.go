package main

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/edge-agent/edge-agent"

// goPackage is what `go list -json` says of one package of the module.
type goPackage struct {
	ImportPath string
	Doc        string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T, args ...string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json", "-tags", "nethttpomithttp2"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// local is an import path inside the module without the module prefix, or
// "" for one outside it.
func local(path string) string {
	if path == module {
		return "."
	}
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	return rest
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// TestEveryPackageHasADocComment holds every package to a package comment
// that says what it is for (STYLE.md 14).
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t, "./...") {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package comment: say what it is for and its concurrency rules", p.ImportPath)
		}
	}
}

// sharedLeaves are the packages of one shared concept each (STYLE.md: one
// home per concept, named for it), importing nothing of the module but each
// other (backoff uses clock), that any package may use.
var sharedLeaves = []string{"seqrange", "ratelog", "atomicfile", "clock", "backoff"}

// TestImportRules holds the tree to the data flow README.md draws:
// drivers → pipeline → store → uplink, wired only in agent and cmd.
func TestImportRules(t *testing.T) {
	rules := []struct {
		pkg     string   // a directory of the module and everything under it
		mayUse  []string // the only directories of the module it may import; "=dir" is that package alone
		because string
	}{
		{"drivers", nil, "drivers only emit Observations; signing, storing and shipping are not theirs"},
		{"attest", nil, "the record format stands alone, so any verifier can take it"},
		{"atomicfile", nil, "writing a file whole or not at all is a leaf every part may share"},
		{"pipeline", []string{"attest", "drivers", "status", "store"}, "the signing stage takes Observations and hands signed records to the outbox; it builds no driver and knows no uplink"},
		{"store", nil, "the outbox knows records as bytes"},
		{"config", nil, "the config is a leaf every other part reads"},
		{"status", nil, "the status schema is a leaf the daemon, doctor and metrics share"},
		{"uplink", []string{"store", "attest"}, "transports read the outbox and know the record format, nothing else"},
		{"metrics", []string{"status"}, "metrics are the status document in Prometheus form"},
		{"doctor", []string{"attest", "config", "=drivers", "status", "store"}, "doctor checks from outside the daemon; it probes the drivers the daemon builds (agent.BuildDrivers, wired in cmd), never builds one itself"},
		{"collect", []string{"attest", "config", "store", "uplink/mqtt", "uplink/p2p"}, "the network side never links the device's drivers or daemon"},
		{"seqrange", nil, "seq range arithmetic is a leaf every part may share"},
		{"ratelog", nil, "the rate-limited logger is a leaf every part may share"},
		{"clock", nil, "time for timers and backoffs is a leaf every part may share"},
		{"backoff", nil, "retry delays are a leaf every part may share"},
		{"procs", nil, "the core governor only reads the process's CPU time; the daemon tells it of backlogs"},
	}
	for _, p := range listPackages(t, "./...") {
		lp := local(p.ImportPath)
		for _, r := range rules {
			if !under(lp, r.pkg) {
				continue
			}
			for _, imp := range p.Imports {
				li := local(imp)
				if li == "" || under(li, r.pkg) { // outside the module, or its own tree
					continue
				}
				if !slices.Contains(sharedLeaves, li) && !slices.ContainsFunc(r.mayUse, func(d string) bool {
					if exact, ok := strings.CutPrefix(d, "="); ok {
						return li == exact
					}
					return under(li, d)
				}) {
					t.Errorf("%s imports %s: %s", lp, li, r.because)
				}
			}
		}
	}
}

// TestDeviceBinaryLinksNoNetworkStore: the PostgreSQL store and its driver
// are for edge-collector; the device binary has a size budget.
func TestDeviceBinaryLinksNoNetworkStore(t *testing.T) {
	for _, p := range listPackages(t, "-deps", "./cmd/edge-agent") {
		if strings.HasPrefix(p.ImportPath, "github.com/jackc/") || local(p.ImportPath) == "collect/pgstore" {
			t.Errorf("edge-agent links %s: it belongs to cmd/edge-collector only", p.ImportPath)
		}
	}
}

// TestDeviceBinaryLinksNoTestHelpers: the fakes in …test packages
// (clocktest, driverstest, storetest, attesttest, …) and condtest are for
// tests. Each imports package testing, so the device binary links neither
// testing nor any package of the module that imports it.
func TestDeviceBinaryLinksNoTestHelpers(t *testing.T) {
	for _, p := range listPackages(t, "-deps", "./cmd/edge-agent") {
		if p.ImportPath == "testing" || (local(p.ImportPath) != "" && slices.Contains(p.Imports, "testing")) {
			t.Errorf("edge-agent links %s: test helpers stay out of the device binary", p.ImportPath)
		}
	}
}

// TestDeviceBinaryLinksNoCollector: the network side is edge-collector's
// (docs/collector.md); `edge-agent collect` and the demo run that binary,
// which keeps the device binary in its size budget.
func TestDeviceBinaryLinksNoCollector(t *testing.T) {
	for _, p := range listPackages(t, "-deps", "./cmd/edge-agent") {
		if under(local(p.ImportPath), "collect") {
			t.Errorf("edge-agent links %s: the collector belongs to cmd/edge-collector only", p.ImportPath)
		}
	}
}
