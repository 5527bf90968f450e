package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/status/statustest"
)

// TestEveryCommandHelps walks the whole command tree: each command and
// subcommand answers -h and --help with its own usage on stdout and exit 0,
// and a flag it does not know is a usage error (exit 2), never a run.
func TestEveryCommandHelps(t *testing.T) {
	tree := walkTree(context.Background())
	if len(tree) < 15 {
		t.Fatalf("the tree has %d commands; the walk is broken", len(tree))
	}
	for _, l := range tree {
		t.Run(l.path, func(t *testing.T) {
			args := strings.Fields(l.path)
			for _, h := range []string{"-h", "--help"} {
				code, out, errOut := cli(t, append(args, h)...)
				if code != 0 || !strings.Contains(out, "usage: edge-agent "+l.path) {
					t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want exit 0 and its usage", l.path, h, code, out, errOut)
				}
				if l.summary != "" && !strings.Contains(out, l.summary) {
					t.Errorf("%s %s: usage lacks the summary %q", l.path, h, l.summary)
				}
			}
			code, out, errOut := cli(t, append(args, "--no-such-flag")...)
			if code != 2 || !strings.Contains(errOut, "usage: edge-agent") || out != "" {
				t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr %q; want exit 2 and the usage on stderr", l.path, code, out, errOut)
			}
		})
	}
}

func TestCLIUsageAndVersion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{"--version", []string{"--version"}, 0, "edge-agent " + version, ""},
		{"no command", nil, 2, "", "usage: edge-agent COMMAND"},
		{"unknown command", []string{"frob"}, 2, "", `unknown command "frob"`},
		{"unknown subcommand", []string{"queue", "frob"}, 2, "", `edge-agent queue: unknown command "frob"`},
		{"group without subcommand", []string{"keys"}, 2, "", "usage: edge-agent keys SUBCOMMAND"},
		{"sibling's flag", []string{"queue", "stats", "--out", "x"}, 2, "", "flag provided but not defined: -out"},
		{"stray argument", []string{"config", "default", "extra"}, 2, "", "takes no arguments"},
		{"verify typo is not bad records", []string{"verify", "--jsn", "x"}, 2, "", "not defined"},
		{"help word", []string{"help"}, 0, "usage: edge-agent COMMAND", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) {
				t.Errorf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tt.code, out, tt.out, errOut, tt.err)
			}
		})
	}
}

// TestConfigFlagEverywhere: each command that reads the daemon's config
// takes -c and --config.
func TestConfigFlagEverywhere(t *testing.T) {
	readers := []string{"run", "doctor", "status", "keys init", "keys show", "queue stats", "queue export",
		"config check", "config show", "collect run", "collect status", "collect export"}
	got := map[string][]string{}
	for _, l := range walkTree(context.Background()) {
		if l.fs != nil {
			for _, f := range l.fs.flags() {
				got[l.path] = append(got[l.path], f.names...)
			}
		}
	}
	for _, p := range readers {
		if !slices.Contains(got[p], "c") || !slices.Contains(got[p], "config") {
			t.Errorf("%s: flags %v, want -c and --config", p, got[p])
		}
	}
}

// TestStatusFindsSocketFromConfig: a daemon on a non-default socket is found
// through its config, as doctor already did.
func TestStatusFindsSocketFromConfig(t *testing.T) {
	sock := serveStatus(t, statustest.Sample(sampleNow))
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(data), dir+"/status.sock", sock, 1)), 0o600)
	for _, c := range []string{"-c", "--config"} {
		if code, out, errOut := cli(t, "status", c, cfg); code != 0 || !strings.Contains(out, "pipeline") {
			t.Errorf("status %s: exit %d\n%s%s", c, code, out, errOut)
		}
	}
	if code, _, errOut := cli(t, "status", "-c", filepath.Join(dir, "missing.toml")); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("status -c missing: exit %d, %s", code, errOut)
	}
}

// TestManAndCompletion: the generated man page and completions name every
// command, and the shells accept the scripts.
func TestManAndCompletion(t *testing.T) {
	tree := walkTree(context.Background())
	// The generators are linked only with -tags docgen (deb.sh); the test
	// runs them directly.
	code, man, errOut := runCmd(context.Background(), t, cmdMan)
	if code != 0 || !strings.HasPrefix(man, ".TH EDGE\\-AGENT 1") {
		t.Fatalf("man: exit %d %s", code, errOut)
	}
	for _, l := range tree {
		if !strings.Contains(man, ".B edge\\-agent "+strings.ReplaceAll(l.path, "-", "\\-")) {
			t.Errorf("the man page lacks %q", l.path)
		}
	}
	render := exec.Command("man", "--warnings", "-l", writeTemp(t, "edge-agent.1", man))
	var warnings bytes.Buffer
	render.Stderr = &warnings
	if out, err := render.Output(); err != nil || warnings.Len() > 0 || !strings.Contains(string(out), "edge-agent queue stats") {
		t.Errorf("man -l: %v\nwarnings: %s\n%.500s", err, warnings.String(), out)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, script, errOut := runCmd(context.Background(), t, cmdCompletion, sh)
		if code != 0 {
			t.Fatalf("completion %s: exit %d %s", sh, code, errOut)
		}
		for _, l := range tree {
			last := l.path[strings.LastIndexByte(" "+l.path, ' '):]
			if !strings.Contains(script, last) {
				t.Errorf("%s completion lacks %q", sh, l.path)
			}
		}
		path := writeTemp(t, "edge-agent."+sh, script)
		if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
	// bash: the function really completes: "edge-agent queue st" → stats.
	script := filepath.Join(t.TempDir(), "c.bash")
	_, comp, _ := runCmd(context.Background(), t, cmdCompletion, "bash")
	os.WriteFile(script, []byte(comp), 0o600)
	out, err := exec.Command("bash", "-c", `. `+script+`; COMP_WORDS=(edge-agent queue st); COMP_CWORD=2; _edge_agent; echo "${COMPREPLY[@]}"`).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "stats" {
		t.Errorf("bash completion of 'queue st': %v %q", err, out)
	}
}

func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
