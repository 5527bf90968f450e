package drivers_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/camera"
	"github.com/edge-agent/edge-agent/drivers/energy"
	"github.com/edge-agent/edge-agent/drivers/env"
	"github.com/edge-agent/edge-agent/drivers/gnss"
	"github.com/edge-agent/edge-agent/drivers/obd"
	"github.com/edge-agent/edge-agent/drivers/sim"
)

// Sentinels are unprefixed (bbolt's errors package): the error that wraps
// one names the package, so a prefix in the sentinel would print twice
// ("gnss: open /x: gnss: no device").
func TestSentinelsAreUnprefixed(t *testing.T) {
	found := 0
	err := filepath.WalkDir(".", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == "testdata" || path == filepath.Join("lora", "gwmp")) {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					call, ok := v.(*ast.CallExpr)
					if !ok || len(call.Args) != 1 {
						continue
					}
					if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "New" {
						continue
					}
					lit, ok := call.Args[0].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					text, _ := strconv.Unquote(lit.Value)
					found++
					if strings.HasPrefix(text, f.Name.Name+": ") {
						t.Errorf("%s: sentinel %q repeats the package name: wrap it with the operation instead", path, text)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 30 {
		t.Fatalf("found only %d sentinels under drivers/: the scan is broken", found)
	}
}

// Error text names each layer once, from the drivers' constructors and
// probes through to what doctor and status show.
func TestErrorTextNamesEachPackageOnce(t *testing.T) {
	dir := t.TempDir()
	notTTY := filepath.Join(dir, "not-a-tty")
	if err := os.WriteFile(notTTY, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	// Each case builds a driver and probes it: the error is New's, else Probe's.
	cases := []struct {
		name string
		dev  func() (drivers.Prober, error)
	}{
		{"gnss probe, no device", func() (drivers.Prober, error) {
			return gnss.New("g", &gnss.Opts{Source: gnss.SourceSerial, Device: missing})
		}},
		{"gnss probe, not a tty", func() (drivers.Prober, error) {
			return gnss.New("g", &gnss.Opts{Source: gnss.SourceSerial, Device: notTTY})
		}},
		{"camera new, no dir", func() (drivers.Prober, error) { return camera.New("c", &camera.Opts{StateDir: dir}) }},
		{"camera probe, no dir", func() (drivers.Prober, error) {
			return camera.New("c", &camera.Opts{Dir: missing, StateDir: dir})
		}},
		{"energy probe, no device", func() (drivers.Prober, error) { return energy.New("m", &energy.Opts{Device: missing}) }},
		{"obd probe, no device", func() (drivers.Prober, error) { return obd.New("o", &obd.Opts{Device: missing}) }},
		{"obd probe, not a tty", func() (drivers.Prober, error) { return obd.New("o", &obd.Opts{Device: notTTY}) }},
		{"env probe, no bus", func() (drivers.Prober, error) { return env.New("e", &env.Opts{Bus: missing}) }},
		{"sim new, unknown kind", func() (drivers.Prober, error) {
			_, err := sim.New("s", sim.Opts{Kind: "radar", Interval: time.Second})
			return nil, err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.dev()
			if err == nil {
				err = probeErr(d)
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, pkg := range []string{"gnss", "camera", "energy", "obd", "env", "sim", "lora"} {
				if n := strings.Count(err.Error(), pkg+": "); n > 1 {
					t.Errorf("%q names %s %d times", err, pkg, n)
				}
			}
		})
	}
}

func probeErr(p drivers.Prober) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.Probe(ctx)
	return err
}
