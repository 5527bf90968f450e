package main

import (
	"context"
	"fmt"
	"io"

	"github.com/edge-agent/edge-agent/config"
)

func cmdConfig(_ context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("config needs a subcommand: default or check FILE")
	}
	switch args[0] {
	case "default":
		if len(args) > 1 {
			return usagef("config default takes no arguments")
		}
		_, err := io.WriteString(env.stdout, config.DefaultTOML())
		return err
	case "check":
		if len(args) != 2 {
			return usagef("usage: edge-agent config check FILE")
		}
		c, err := config.Load(args[1])
		if err != nil {
			return err
		}
		for _, w := range configWarnings(args[1], c) {
			fmt.Fprintf(env.stdout, "%s: warning: %s\n", args[1], w)
		}
		fmt.Fprintf(env.stdout, "%s: ok\n", args[1])
		return nil
	}
	return usagef("unknown config subcommand %q: use default or check", args[0])
}
