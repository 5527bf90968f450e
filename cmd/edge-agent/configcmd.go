package main

import (
	"context"
	"fmt"
	"io"

	"github.com/edge-agent/edge-agent/config"
)

func cmdConfigDefault(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "config default", "config default")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("config default takes no arguments")
	}
	_, err := io.WriteString(env.stdout, config.DefaultTOML())
	return err
}

func cmdConfigCheck(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "config check", "config check [-c FILE | FILE]")
	path := fs.configFlag(defaultConfigPath, "config `file`; its drop-ins in config.d/ beside it are checked too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 1:
		*path = fs.Arg(0)
	case fs.NArg() > 1:
		return usagef("config check takes one FILE")
	}
	l, err := config.LoadLayers(*path, env.getenv)
	if err != nil {
		return err
	}
	for _, w := range configWarnings(*path, l.Config) {
		fmt.Fprintf(env.stdout, "%s: warning: %s\n", *path, w)
	}
	for _, f := range l.Files {
		fmt.Fprintf(env.stdout, "%s: ok\n", f)
	}
	return nil
}

func cmdConfigShow(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "config show", "config show [-c FILE]")
	path := fs.configFlag(defaultConfigPath, "config `file`; its drop-ins in config.d/ beside it are merged over it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	l, err := config.LoadLayers(*path, env.getenv)
	if err != nil {
		return err
	}
	return l.Show(env.stdout)
}
