package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The man page and the shell completions are generated from the command
// tree and the commands' own flag sets (each leaf is run with -h and its
// flag set recorded), so they cannot drift from the code. The package build
// runs `edge-agent man` and `edge-agent completion SHELL` from a binary built
// with -tags docgen (docgen_on.go); the shipped one does not link them.

// leaf is one runnable command with its flags.
type leaf struct {
	path    string // "queue stats"
	summary string
	fs      *flagSet
}

// walkTree lists every visible command, groups before their subcommands.
func walkTree(ctx context.Context) []leaf {
	var out []leaf
	var walk func(path string, c command)
	walk = func(path string, c command) {
		if c.subs == nil || c.run != nil {
			var got *flagSet
			env := &cliEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
				getenv: func(string) string { return "" }, onFlags: func(fs *flagSet) { got = fs }}
			c.run(ctx, env, []string{"-h"})
			out = append(out, leaf{path, c.summary, got})
		} else if path != "" {
			out = append(out, leaf{path: path, summary: c.summary})
		}
		for _, n := range visible(c.subs) {
			walk(strings.TrimSpace(path+" "+n), c.subs[n])
		}
	}
	walk("", command{subs: commands()})
	return out
}

func cmdMan(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "man", "man")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w := env.stdout
	esc := func(s string) string {
		s = strings.ReplaceAll(s, `\`, `\e`)
		s = strings.ReplaceAll(s, "-", `\-`)
		if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
			s = `\&` + s
		}
		return s
	}
	fmt.Fprintf(w, ".TH EDGE\\-AGENT 1 \"\" \"edge-agent %s\" \"User Commands\"\n", esc(version))
	fmt.Fprintln(w, ".SH NAME\nedge\\-agent \\- sign and ship proofs of physical observations from edge hardware")
	fmt.Fprintln(w, ".SH SYNOPSIS\n.B edge\\-agent\n.I COMMAND\n.RI [ flags ]\n.br\n.B edge\\-agent \\-\\-version")
	fmt.Fprintln(w, ".SH DESCRIPTION\nedge\\-agent reads GNSS, LoRa, environmental sensors and camera files, signs a")
	fmt.Fprintln(w, "COSE_Sign1 record of each observation with the device key, keeps it in a durable outbox until the")
	fmt.Fprintln(w, "network has acknowledged it, and ships it over MQTT or libp2p. Every command answers")
	fmt.Fprintln(w, ".B \\-h\nwith its own usage.")
	fmt.Fprintln(w, ".SH COMMANDS")
	for _, l := range walkTree(ctx) {
		fmt.Fprintf(w, ".TP\n.B edge\\-agent %s\n%s\n", esc(l.path), esc(l.summary))
		if l.fs == nil {
			continue
		}
		fmt.Fprintf(w, ".br\nUsage: edge\\-agent %s\n", esc(l.fs.synopsis))
		for _, f := range l.fs.flags() {
			fmt.Fprintf(w, ".RS\n.TP\n.B %s\n%s", esc(f.spelled()), esc(f.usage))
			if f.def != "" {
				fmt.Fprintf(w, " (default %s)", esc(f.def))
			}
			fmt.Fprintln(w, "\n.RE")
		}
	}
	fmt.Fprintln(w, `.SH FILES
.TP
.I /etc/edge\-agent/config.toml
the config; `+"`edge\\-agent config default`"+` prints every key with its comment
.TP
.I /etc/edge\-agent/config.d/*.toml
drop\-ins, merged over config.toml in lexical order; `+"`edge\\-agent config show`"+` prints the result and where each value came from
.TP
.I /var/lib/edge\-agent
the outbox and the device key
.TP
.I /run/edge\-agent/status.sock
the status API
.SH SIGNALS
SIGHUP re\-reads and checks the config and restarts the drivers and uplinks with it; a bad config is
refused and logged, and the daemon goes on with the old one. SIGTERM and SIGINT stop the daemon in order.
.SH EXIT STATUS
0 done, 1 failed, 2 a mistake in the command line. doctor: 1 warnings, 2 failures. verify: 1 bad records.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1)`)
	return nil
}

func cmdCompletion(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "completion", "completion bash|zsh|fish")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("name the shell: bash, zsh or fish")
	}
	tree := walkTree(ctx)
	// children: path → subcommand names; flags: path → flag spellings.
	children := map[string][]string{}
	flags := map[string][]string{}
	for _, l := range tree {
		parent := ""
		if i := strings.LastIndexByte(l.path, ' '); i >= 0 {
			parent = l.path[:i]
		}
		children[parent] = append(children[parent], l.path[len(parent):])
		if l.fs != nil {
			for _, f := range l.fs.flags() {
				for _, n := range f.names {
					if len(n) > 1 {
						flags[l.path] = append(flags[l.path], "--"+n)
					} else {
						flags[l.path] = append(flags[l.path], "-"+n)
					}
				}
			}
		}
	}
	for k, v := range children {
		for i := range v {
			v[i] = strings.TrimSpace(v[i])
		}
		sort.Strings(v)
		children[k] = v
	}
	paths := make([]string, 0, len(children)+len(flags))
	for _, l := range tree {
		paths = append(paths, l.path)
	}
	// Longest first: a shell case takes the first pattern that matches.
	sort.SliceStable(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	words := func(p string) string {
		return strings.Join(append(append([]string{}, children[p]...), flags[p]...), " ")
	}
	w := env.stdout
	switch fs.Arg(0) {
	case "bash":
		fmt.Fprintln(w, "# bash completion for edge-agent (generated by `edge-agent completion bash`)")
		fmt.Fprintln(w, "_edge_agent() {\n\tlocal cur path i\n\tcur=${COMP_WORDS[COMP_CWORD]}\n\tpath=")
		fmt.Fprintln(w, "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n\t\tcase ${COMP_WORDS[i]} in -*) ;; *) path=\"${path:+$path }${COMP_WORDS[i]}\" ;; esac\n\tdone")
		fmt.Fprintln(w, "\tcase $path in")
		fmt.Fprintf(w, "\t\"\") COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", words("")+" --version --help")
		for _, p := range paths {
			fmt.Fprintf(w, "\t%q*) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", p, words(p)+" --help")
		}
		fmt.Fprintln(w, "\tesac\n\t# a flag taking a value: complete file names\n\t[ ${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- \"$cur\"))\n}\ncomplete -F _edge_agent edge-agent")
	case "zsh":
		fmt.Fprintln(w, "#compdef edge-agent\n# zsh completion for edge-agent (generated by `edge-agent completion zsh`)")
		fmt.Fprintln(w, "local -a words_; local path_ w\nfor w in ${words[2,CURRENT-1]}; do [[ $w == -* ]] || path_=\"${path_:+$path_ }$w\"; done\ncase $path_ in")
		fmt.Fprintf(w, "'') words_=(%s) ;;\n", words("")+" --version --help")
		for _, p := range paths {
			fmt.Fprintf(w, "%q*) words_=(%s) ;;\n", p, words(p)+" --help")
		}
		fmt.Fprintln(w, "esac\ncompadd -a words_\n_files")
	case "fish":
		fmt.Fprintln(w, "# fish completion for edge-agent (generated by `edge-agent completion fish`)\ncomplete -c edge-agent -f")
		fmt.Fprintln(w, "complete -c edge-agent -l version -d 'print the version'")
		for _, l := range tree {
			parent := ""
			if i := strings.LastIndexByte(l.path, ' '); i >= 0 {
				parent = l.path[:i]
			}
			name := strings.TrimSpace(l.path[len(parent):])
			cond := "__fish_use_subcommand"
			if parent != "" {
				cond = "__fish_seen_subcommand_from " + parent + "; and not __fish_seen_subcommand_from " + strings.Join(children[parent], " ")
			}
			fmt.Fprintf(w, "complete -c edge-agent -n '%s' -a %s -d %q\n", cond, name, l.summary)
			if l.fs == nil {
				continue
			}
			last := l.path[strings.LastIndexByte(" "+l.path, ' '):]
			for _, f := range l.fs.flags() {
				var opt string
				for _, n := range f.names {
					if len(n) == 1 {
						opt += " -s " + n
					} else {
						opt += " -l " + n
					}
				}
				if f.arg != "" {
					opt += " -r -F"
				}
				fmt.Fprintf(w, "complete -c edge-agent -n '__fish_seen_subcommand_from %s'%s -d %q\n", strings.TrimSpace(last), opt, f.usage)
			}
		}
	default:
		return usagef("unknown shell %q: use bash, zsh or fish", fs.Arg(0))
	}
	return nil
}
