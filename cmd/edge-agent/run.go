package main

import (
	"context"
	"os"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/agent/sdnotify"
	"github.com/edge-agent/edge-agent/config"
)

const defaultConfigPath = "/etc/edge-agent/config.toml"

func cmdRun(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "run", "run [-c FILE]")
	path := fs.configFlag(defaultConfigPath, "config `file`; drop-ins in config.d/ beside it are merged over it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log, err := newLogger(env.stderr, cfg.Log.Level, cfg.Log.Format, env.getenv)
	if err != nil {
		return err
	}
	notifier, err := sdnotify.FromEnv(env.getenv, os.Getpid())
	if err != nil {
		log.Warn("not talking to systemd", "err", err)
	}
	a, err := agent.New(agent.Options{
		Config:    cfg,
		Version:   version,
		Commit:    commit,
		Logger:    log,
		Notifier:  notifier,
		CreateKey: true,
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
