package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
)

// cmdKeysSub is `keys init` or `keys show`: one flag set each.
func cmdKeysSub(sub string) func(context.Context, *cliEnv, []string) error {
	return func(ctx context.Context, env *cliEnv, args []string) error { return cmdKeys(ctx, env, sub, args) }
}

func cmdKeys(_ context.Context, env *cliEnv, sub string, args []string) error {
	fs := newFlags(env, "keys "+sub, "keys "+sub+" [-c FILE | --key URI] [--json]")
	cfgPath := fs.configFlag("", "config `file` naming the key (default: "+defaultConfigPath+" if present)")
	keyURI := fs.String("key", "", "key `URI`, e.g. file:/var/lib/edge-agent/device.key")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	uri, err := resolveKeyURI(*cfgPath, *keyURI)
	if err != nil {
		return err
	}
	var s attest.Signer
	switch sub {
	case "init":
		s, err = attest.CreateKey(uri, rand.Reader)
		if errors.Is(err, attest.ErrKeyExists) {
			return fmt.Errorf("%w\n(the device already has an identity: `edge-agent keys show` prints it; delete the file only if you mean to replace the device's identity)", err)
		}
	case "show":
		s, err = attest.OpenSigner(uri)
	default:
		return usagef("unknown keys subcommand %q: use init or show", sub)
	}
	if err != nil {
		return err
	}
	info := struct {
		DeviceID  string `json:"device_id"`
		PublicKey string `json:"public_key"`
		Algorithm string `json:"algorithm"`
		Key       string `json:"key"`
	}{s.DeviceID(), hex.EncodeToString(s.KeyID()), s.Algorithm().String(), uri}
	if *asJSON {
		return json.NewEncoder(env.stdout).Encode(info)
	}
	if sub == "init" {
		fmt.Fprintf(env.stdout, "created %s\n", uri)
	}
	fmt.Fprintf(env.stdout, "device id:  %s\npublic key: %s (%s)\n", info.DeviceID, info.PublicKey, info.Algorithm)
	return nil
}

// resolveKeyURI picks the key: --key, else the config's, else the default
// config's if it exists, else the built-in default.
func resolveKeyURI(cfgPath, keyURI string) (string, error) {
	if keyURI != "" {
		return keyURI, nil
	}
	if cfgPath == "" {
		if _, err := os.Stat(defaultConfigPath); err != nil {
			return config.Default().Device.Key, nil
		}
		cfgPath = defaultConfigPath
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return "", err
	}
	return cfg.Device.Key, nil
}
