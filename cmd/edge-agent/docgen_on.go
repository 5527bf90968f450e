//go:build docgen

package main

// docCommands are the generators of the man page and the completions. They
// are built into the binary the package build runs (deb.sh: -tags docgen),
// not into the one it ships: a device has no use for them, and they cost
// its size budget.
func docCommands() map[string]command {
	return map[string]command{
		"man":        {summary: "print the edge-agent(1) man page (roff)", run: cmdMan, hidden: true},
		"completion": {summary: "print shell completion: completion bash|zsh|fish", run: cmdCompletion, hidden: true},
	}
}
